"""Word copies of the letters-like documents (issue 17): call scripts, the transfer
request, the SMS list (``render --docx`` / ``render.formats``) and the downgrade letters
(``tierctl docx``), with the centre's name as letterhead.  Each .docx is opened with
python-docx and compared with the Markdown it was made from."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import docx
import pytest

from tierctl import render
from tierctl.config import Config
from tierctl.errors import ConfigError, RenderError

# one worker runs this file: its module fixtures are built once, not once per worker
pytestmark = pytest.mark.xdist_group("render_docx")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
CONFIG = ROOT / "tests" / "golden" / "render" / "tierctl.toml"
AS_OF = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
CENTRE = "上海浦东服务中心"
WORD = ("call_scripts.docx", "transfer_request.docx", "sms.docx")


@pytest.fixture(scope="module")
def sample_result():
    from tierctl.io.ingest import read_export
    from tierctl.shortage import load_model, score

    model = load_model("rite")
    ex = read_export(SAMPLE, model.columns)
    return score(ex.frame, model, AS_OF, NOW, headers=ex.headers, path=SAMPLE)


@pytest.fixture(scope="module")
def zh(sample_result, tmp_path_factory):
    out = tmp_path_factory.mktemp("docx")
    return render.render_documents(sample_result, Config.load(CONFIG), out, formats=["md", "docx"])


def body_text(d) -> str:
    parts = [p.text for p in d.paragraphs]
    for t in d.tables:
        parts += [c.text for row in t.rows for c in row.cells]
    return "\n".join(parts)


def headings(d) -> list[tuple[int, str]]:
    return [(int(p.style.name.split()[-1]), p.text) for p in d.paragraphs if p.style.name.startswith("Heading")]


def md_headings(md: str) -> list[tuple[int, str]]:
    return [(len(m.group(1)), m.group(2).strip()) for m in re.finditer(r"^(#{1,3})\s+(.*)$", md, re.M)]


def test_word_copies_are_written_and_listed_after_their_markdown(zh):
    names = [p.name for p in zh.files]
    for w in WORD:
        assert w in names and (zh.out_dir / w).is_file()
        md = w.replace(".docx", ".md")
        assert names.index(w) == names.index(md) + 1
    assert "spec_email.docx" not in names  # the e-mail stays an .eml draft


@pytest.mark.parametrize("name", WORD)
def test_letterhead_and_headings_follow_the_markdown(zh, name):
    d = docx.Document(str(zh.out_dir / name))
    head = [p.text for p in d.sections[0].header.paragraphs if p.text]
    assert head == [CENTRE]
    md = (zh.out_dir / name.replace(".docx", ".md")).read_text(encoding="utf-8")
    assert headings(d) == md_headings(md) and headings(d)
    assert headings(d)[0][1].startswith(CENTRE) or CENTRE in headings(d)[0][1]


def test_call_scripts_keep_every_customer_row_and_phone_as_written(zh):
    md = (zh.out_dir / "call_scripts.md").read_text(encoding="utf-8")
    text = body_text(docx.Document(str(zh.out_dir / "call_scripts.docx")))
    phones = re.findall(r"电话：([0-9 \-]+)；", md)
    assert len(phones) == 22  # P0 + P1 of the sample
    for ph in phones:
        assert f"电话：{ph}；" in text
    # what to say: the quoted lines are paragraphs of their own, word for word
    quoted = [ln[2:] for ln in md.splitlines() if ln.startswith("> ") and ln[2:].strip()]
    paras = [p.text for p in docx.Document(str(zh.out_dir / "call_scripts.docx")).paragraphs]
    assert [q for q in quoted if q.replace("**", "") not in paras] == []


def test_sms_list_keeps_every_message_line_by_line(zh):
    d = docx.Document(str(zh.out_dir / "sms.docx"))
    paras = [p.text for p in d.paragraphs]
    md = (zh.out_dir / "sms.md").read_text(encoding="utf-8")
    fenced = re.findall(r"~~~text\n(.*?)\n~~~", md, re.S)
    assert len(fenced) == 40
    first = fenced[0].splitlines()
    at = paras.index(first[0])
    assert paras[at:at + len(first)] == first  # the SMS as sent, one paragraph a line
    for m in re.finditer(r"^## \d+\. (.+) · (1\d{10})$", md, re.M):
        assert f"{m.group(1)} · {m.group(2)}" in body_text(d)


def test_chinese_text_gets_an_east_asian_font(zh):
    from docx.oxml.ns import qn

    d = docx.Document(str(zh.out_dir / "transfer_request.docx"))
    fonts = d.styles["Normal"].element.rPr.rFonts
    assert fonts.get(qn("w:eastAsia")) == "Microsoft YaHei"


def test_english(sample_result, tmp_path):
    rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path, lang="en", formats=["md", "docx"])
    d = docx.Document(str(rep.out_dir / "call_scripts.docx"))
    assert [p.text for p in d.sections[0].header.paragraphs if p.text] == [CENTRE]
    md = (rep.out_dir / "call_scripts.md").read_text(encoding="utf-8")
    assert headings(d) == md_headings(md)
    assert re.search(r"[A-Za-z]{4,}", headings(d)[0][1])
    assert "Phone" in body_text(d) or "phone" in body_text(d)


def test_no_word_files_unless_asked(rendered_plain):
    assert not list(rendered_plain.out_dir.glob("*.docx"))


@pytest.fixture
def rendered_plain(sample_result, tmp_path):
    return render.render_documents(sample_result, Config.load(CONFIG), tmp_path)


def config_with(tmp_path: Path, extra: str) -> Config:
    p = tmp_path / "tierctl.toml"
    text = CONFIG.read_text(encoding="utf-8")
    text = text.replace("[render]\n", f"[render]\n{extra}\n") if "[render]\n" in text else text + f"\n[render]\n{extra}\n"
    p.write_text(text, encoding="utf-8")
    return Config.load(p)


def test_render_formats_in_the_configuration(sample_result, tmp_path):
    rep = render.render_documents(sample_result, config_with(tmp_path, 'formats = ["md", "docx"]'), tmp_path / "out")
    assert {p.name for p in rep.files} >= set(WORD)
    with pytest.raises(ConfigError) as e:
        render.render_documents(sample_result, config_with(tmp_path, 'formats = ["md", "pdf"]'), tmp_path / "o2")
    assert e.value.key == "render.formats" and "pdf" in str(e.value)
    assert not (tmp_path / "o2").exists()


def test_word_copies_of_an_earlier_run_are_removed_when_not_asked_again(sample_result, tmp_path):
    cfg = Config.load(CONFIG)
    render.render_documents(sample_result, cfg, tmp_path, formats=["md", "docx"])
    rep = render.render_documents(sample_result, cfg, tmp_path, force=True)
    assert not list(rep.out_dir.glob("*.docx"))  # out of date: the .md were made again without them


def test_missing_centre_name_stops_the_word_copy(sample_result):
    from tierctl.render import docx as rdocx

    cfg = Config.load(CONFIG)
    cfg.data["centre"]["name"] = ""
    with pytest.raises(ConfigError) as e:
        rdocx.letterhead(cfg)
    assert e.value.key == "centre.name"


# -- the CLI: render --docx and tierctl docx (the downgrade letters) ----------------------
def cli(capsys, *args) -> tuple[int, str, str]:
    from tierctl.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_render_docx_option(cwd, capsys):
    code, out, err = cli(capsys, "--config", CONFIG, "render", SAMPLE, "--as-of", "2026-11-24",
                         "--now", "2026-11-24T09:00+08:00", "--docx")
    assert code == 0, err
    listed = [Path(x).name for x in out.split()]
    assert set(WORD) <= set(listed)
    d = docx.Document(str(cwd / "out" / "2026-11-24" / "transfer_request.docx"))
    assert d.sections[0].header.paragraphs[0].text == CENTRE


LETTER = """# 客户等级调整说明

尊敬的张先生：

您好！根据 2026 年 11 月的评估，您的客户等级由「VIP」调整为「核心」。

## 调整依据

| 指标 | 上期 | 本期 |
| --- | --- | --- |
| 近一年到店次数 | 6 | **2** |

## 怎样恢复

- 到店保养一次
- 评分达到 0.83

上海浦东服务中心 王经理 021-5888 0000
"""


def test_docx_command_converts_the_downgrade_letters(cwd, capsys):
    letters = cwd / "out" / "2026-11-24" / "letters"
    letters.mkdir(parents=True)
    (letters / "00000104_张先生.md").write_text(LETTER, encoding="utf-8")
    (letters / "00000105_李女士.md").write_text(LETTER.replace("张先生", "李女士"), encoding="utf-8")
    code, out, err = cli(capsys, "--config", CONFIG, "docx", letters)
    assert code == 0, err
    assert sorted(Path(x).name for x in out.split()) == ["00000104_张先生.docx", "00000105_李女士.docx"]
    d = docx.Document(str(letters / "00000104_张先生.docx"))
    assert d.sections[0].header.paragraphs[0].text == CENTRE
    assert headings(d) == [(1, "客户等级调整说明"), (2, "调整依据"), (2, "怎样恢复")]
    table = d.tables[0]
    assert [c.text for c in table.rows[1].cells] == ["近一年到店次数", "6", "2"]
    assert table.rows[1].cells[2].paragraphs[0].runs[0].bold
    assert "021-5888 0000" in body_text(d) and "尊敬的张先生：" in body_text(d)
    # again: refuses to overwrite without --force, and says so without a traceback
    code, _out, err = cli(capsys, "--config", CONFIG, "docx", letters)
    assert code == 1 and "--force" in err and "Traceback" not in err
    code, _out, err = cli(capsys, "--config", CONFIG, "docx", letters, "--force")
    assert code == 0, err


def test_docx_command_refuses_what_is_not_markdown(cwd, capsys):
    (cwd / "a.txt").write_text("x", encoding="utf-8")
    code, _o, err = cli(capsys, "--config", CONFIG, "docx", cwd / "a.txt")
    assert code == 1 and ".md" in err
    with pytest.raises(RenderError):
        from tierctl.render import docx as rdocx

        rdocx.convert_files([cwd / "missing.md"], Config.load(CONFIG))
