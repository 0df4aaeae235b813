"""Small lists a user keeps by hand: the red list (ids or phone numbers)."""

from __future__ import annotations

from pathlib import Path

from tierctl.errors import InputError
from tierctl.io.readers import read_sheet, sniff_kind


def read_id_list(path: Path | str) -> set[str]:
    """Ids/phones from a .txt (one per line, # comments) or the first column of a
    CSV/xlsx (every cell of every column whose header looks like an id or phone)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("红名单文件不存在", path=p)
    if p.suffix.lower() == ".txt" and sniff_kind(p) == "text":
        raw = p.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gb18030", errors="replace")
        return {ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()}
    keys = ("编号", "id", "手机", "电话", "phone")
    sheet = read_sheet(p, header_score=lambda cells: sum(any(k in c.lower() for k in keys) for c in cells))
    cols = [c for c in sheet.frame.columns if any(k in c.lower() for k in keys)] or list(sheet.frame.columns[:1])
    out: set[str] = set()
    for c in cols:
        out |= {v.strip() for v in sheet.frame[c].astype(str) if v.strip()}
    return out
