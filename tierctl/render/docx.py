"""Word copies (.docx) of the Markdown documents: call scripts, the transfer request, the
SMS list and the downgrade letters (issue 17), with the centre's name as letterhead.

The Markdown tierctl renders is small and regular, so it is converted line by line:
``#``/``##``/``###`` headings, ``-`` bullets, ``1.`` numbered items, ``>`` quoted lines
(what to say on the phone), ``~~~`` fences (an SMS as sent, kept line by line), ``|``
tables, ``**bold**`` and ``---`` rules (a blank line).  Every text is written as it was
rendered: names, phones and amounts stay exactly as in the .md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tierctl.render.values import _missing

FONTS = {"zh": ("Microsoft YaHei", "Microsoft YaHei"), "en": ("Calibri", "Microsoft YaHei")}
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_NUMBERED = re.compile(r"^(\d+)\.\s+(.*)$")


def letterhead(config: Any) -> str:
    """The centre's name (``centre.name``), required: a letter without it is not sent."""
    name = str(config.get("centre.name") or "").strip()
    if not name:
        raise _missing(config, "centre.name", hint="填写服务中心名称：Word 文件以它作为信头")
    return name


def _fonts(doc: Any, lang: str) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    latin, east = FONTS.get(lang, FONTS["zh"])
    for style_name in ("Normal", "Heading 1", "Heading 2", "Heading 3", "List Bullet", "List Number", "Quote"):
        style = doc.styles[style_name]
        style.font.name = latin
        rpr = style.element.get_or_add_rPr()
        fonts = rpr.get_or_add_rFonts()
        fonts.set(qn("w:eastAsia"), east)
    doc.styles["Normal"].font.size = Pt(10.5)


def _runs(par: Any, text: str) -> None:
    """``text`` into ``par``, **bold** parts as bold runs."""
    pos = 0
    for m in _BOLD.finditer(text):
        if m.start() > pos:
            par.add_run(text[pos:m.start()])
        par.add_run(m.group(1)).bold = True
        pos = m.end()
    if pos < len(text):
        par.add_run(text[pos:])


def _table(doc: Any, rows: list[str]) -> None:
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows
             if not re.fullmatch(r"\|?[\s:|-]+\|?", r.strip())]
    if not cells:
        return
    width = max(len(r) for r in cells)
    table = doc.add_table(rows=len(cells), cols=width)
    table.style = "Table Grid"
    for i, r in enumerate(cells):
        for j, v in enumerate(r):
            cell = table.cell(i, j)
            _runs(cell.paragraphs[0], v.replace("**", "") if i == 0 else v)
            if i == 0:
                for run in cell.paragraphs[0].runs:
                    run.bold = True


def _paragraphs(doc: Any) -> Any:
    """``add(text, style)``: python-docx's ``doc.add_paragraph(text, style)``, with each
    style's id looked up once per document.  python-docx looks a style name up anew for
    every paragraph, scanning all ~160 styles of its template each time (about 3 ms: a
    second for the call scripts); the paragraph written is the same."""
    from docx.enum.style import WD_STYLE_TYPE

    ids: dict[str, Any] = {}

    def add(text: str = "", style: str | None = None) -> Any:
        par = doc.add_paragraph(text)
        if style is not None:
            if style not in ids:
                ids[style] = doc.part.get_style_id(style, WD_STYLE_TYPE.PARAGRAPH)
            par._p.style = ids[style]  # what Paragraph.style = name sets, without the lookup
        return par

    return add


def markdown_document(text: str, *, letterhead: str, lang: str = "zh") -> Any:
    """A python-docx Document of the Markdown ``text`` under the letterhead."""
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    doc = docx.Document()
    _fonts(doc, lang)
    add = _paragraphs(doc)
    head = doc.sections[0].header.paragraphs[0]
    head.text = letterhead
    head.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for run in head.runs:
        run.bold = True
        run.font.size = Pt(14)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith("~~~") or s.startswith("```"):
            fence = s[:3]
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                add(lines[i], "Quote")
                i += 1
        elif s.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            _table(doc, rows)
            continue
        elif m := re.match(r"^(#{1,3})\s+(.*)$", s):
            add(m.group(2).strip(), f"Heading {len(m.group(1))}")
        elif s in ("---", "***"):
            add()
        elif s.startswith(("- ", "* ")):
            _runs(add(style="List Bullet"), s[2:])
        elif s.startswith(">"):
            quoted = s[1:].strip()
            if quoted:
                _runs(add(style="Quote"), quoted)
        elif s and (m := _NUMBERED.match(s)):
            _runs(add(style="List Number"), m.group(2))
        elif s:
            _runs(add(), s)
        i += 1
    return doc


def write_markdown_docx(text: str, path: Path, *, letterhead: str, lang: str = "zh", force: bool = False) -> Path:
    """Write the Word copy of ``text`` to ``path`` (atomically)."""
    from tierctl.io.writers import atomic_path

    doc = markdown_document(text, letterhead=letterhead, lang=lang)
    with atomic_path(Path(path), force=force) as tmp:
        doc.save(str(tmp))
    return Path(path)


def convert_files(paths: list[Path], config: Any, *, lang: str = "zh", force: bool = False) -> list[Path]:
    """Word copies of Markdown files (a folder: every .md in it, e.g. the day's downgrade
    letters), each beside its .md.  All are checked before any is written: a missing file,
    one that is not .md, or a .docx already there (without ``force``) stops everything."""
    from tierctl.errors import RenderError
    from tierctl.render.catalogue import read_draft

    head = letterhead(config)
    sources: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(x for x in p.glob("*.md") if not x.name.startswith("."))
            if not found:
                raise RenderError(f"文件夹 {p} 中没有 .md 文件")
            sources += found
        elif not p.is_file():
            raise RenderError(f"文件 {p} 不存在")
        elif p.suffix.lower() != ".md":
            raise RenderError(f"{p.name} 不是 Markdown 文件（.md）", hint="只转换 tierctl 生成的 .md 文件")
        else:
            sources.append(p)
    targets = [p.with_suffix(".docx") for p in sources]
    clash = [t for t in targets if t.exists()]
    if clash and not force:
        raise RenderError(f"已有 Word 文件，未覆盖：{'、'.join(t.name for t in clash[:5])}"
                          + (" 等" if len(clash) > 5 else ""), hint="加 --force 覆盖")
    return [write_markdown_docx(read_draft(src), dst, letterhead=head, lang=lang, force=True)
            for src, dst in zip(sources, targets, strict=True)]
