"""A local SMTP server (aiosmtpd) on a port the system picks, so that tests running side
by side (pytest-xdist) never race for one: aiosmtpd's Controller binds the port it is
given and then connects to it, so port 0 needs the bound port read back in between."""

from __future__ import annotations

from aiosmtpd.controller import Controller


class LocalController(Controller):
    """``Controller(handler, port=0, ...)``: after ``start()``, ``.port`` is the bound port."""

    def __init__(self, handler, **kw) -> None:  # noqa: ANN001 - aiosmtpd's handler object
        kw.setdefault("hostname", "127.0.0.1")
        kw.setdefault("port", 0)
        super().__init__(handler, **kw)

    def _trigger_server(self) -> None:
        assert self.server is not None and self.server.sockets
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
