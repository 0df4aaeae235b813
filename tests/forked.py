"""Many real processes at once, for one interpreter start: ``run_forked`` starts a single
Python process that imports what the writers need (pandas, tierctl.store) and then forks
one child per job — separate processes with their own connections, running at the same
moment, as the old ``subprocess.Popen`` per job did, without 20 interpreter starts and
20 imports of pandas (about a second of CPU each).  Returns each child's exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

LAUNCHER = textwrap.dedent("""
    import json, os, sys, traceback
    import pandas, tierctl.store  # noqa: F401 - imported once, before the forks
    script, jobs = sys.argv[1], json.loads(sys.argv[2])
    with open(script, encoding="utf-8") as fh:
        code = compile(fh.read(), script, "exec")
    pids = []
    for argv in jobs:
        pid = os.fork()
        if pid == 0:  # the child: the script as `python script ARGV...` would run it
            status = 0
            try:
                sys.argv = [script, *argv]
                exec(code, {"__name__": "__main__", "__file__": script})
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
                status = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        pids.append(pid)
    print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]))
""")


def run_forked(script: Path, jobs: list[list[str]], *, cwd: Path, timeout: float = 600) -> list[int]:
    """Run ``python script *argv`` for every ``argv`` in ``jobs``, all at once, each in a
    process of its own (forked from one launcher); the exit codes in the order of ``jobs``."""
    launcher = script.with_name("launcher.py")
    launcher.write_text(LAUNCHER, encoding="utf-8")
    p = subprocess.run([sys.executable, str(launcher), str(script), json.dumps(jobs)], cwd=cwd, timeout=timeout,
                       stdout=subprocess.PIPE, text=True)
    assert p.returncode == 0, f"the launcher failed ({p.returncode})"
    return json.loads(p.stdout.strip().splitlines()[-1])
