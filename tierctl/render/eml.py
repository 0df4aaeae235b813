"""The SPEC e-mail as an unsent .eml draft."""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import hashlib
from collections.abc import Sequence
from email.message import EmailMessage


# -- the e-mail ---------------------------------------------------------------------------------
def build_eml(*, subject: str, body: str, to: Sequence[str], cc: Sequence[str] = (), sender: str | None = None,
              date: dt.datetime | None = None, attachments: Sequence[tuple[str, bytes, str]] = (),
              html: str | None = None) -> bytes:
    """An unsent draft (``X-Unsent: 1``): Outlook and Foxmail open it ready to edit and
    send.  Headers in UTF-8 encoded words, body base64, CRLF line ends.  With ``html``
    the body is multipart/alternative (plain text and HTML), the attachments beside it."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Subject"] = subject
    if sender:
        msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if date is not None:
        msg["Date"] = email.utils.format_datetime(date)
    msg["X-Unsent"] = "1"
    msg.set_content(body, subtype="plain", charset="utf-8", cte="base64")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    for filename, data, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    # stable boundaries keep re-renders byte-identical
    seed = hashlib.sha1((body + (html or "")).encode("utf-8")).hexdigest()[:24]
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"tierctl-{i}-{seed}")
    return msg.as_bytes()


XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


