"""`tierctl --help` and the command list must not pay for pandas, numpy or pyarrow (issue 2: --help <= 0.5 s).

Measured by what gets imported, not by the clock: a fresh interpreter builds the whole CLI and prints the help;
the heavy libraries must still be absent from ``sys.modules`` afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "numpy", "pyarrow", "sqlalchemy", "psycopg", "openpyxl", "jinja2")

PROBE = """
import json, sys
from tierctl.cli import main
sys.argv = ["tierctl", "--help"]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%r))), file=sys.stderr)
"""


def test_help_imports_no_heavy_library():
    # a real process: the test session itself has imported pandas long ago
    proc = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, timeout=120)
    assert "Usage" in proc.stdout or "用法" in proc.stdout, proc.stdout + proc.stderr
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert loaded == [], f"tierctl --help imported {loaded}"
