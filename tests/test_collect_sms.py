"""SMS ready for a platform (issue 16): Aliyun and Tencent Cloud batch-send files with the
phone as text and one column per template variable, the signature counted in length and
segments, a short form that fits one SMS, the opt-out only on marketing messages, and
landlines / malformed numbers listed apart, never sent."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest
from conftest import cli

from tierctl.config import Config
from tierctl.errors import ConfigError
from tierctl.render import sms_platform as sp

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
CONFIG = ROOT / "tests" / "golden" / "render" / "tierctl.toml"
CLOCK = ["--as-of", "2026-11-24", "--now", "2026-11-24T09:00+08:00"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def cfg_with(tmp_path: Path, extra: str = "") -> Config:
    p = tmp_path / "c.toml"
    p.write_text('[centre]\nname = "上海浦东服务中心"\n' + extra, encoding="utf-8")
    return Config.load(p)


@pytest.mark.parametrize("raw, want", [
    ("13812340001", ("13812340001", None)), ("+86 138-1234-0001", ("13812340001", None)),
    ("008613812340001", ("13812340001", None)), ("8613812340001", ("13812340001", None)),
    ("１３８１２３４０００１", ("13812340001", None)),  # full-width digits
    ("021-58881234", (None, "固定电话，不能收短信")), ("58881234", (None, "固定电话，不能收短信")),
    ("4008001234", (None, "固定电话，不能收短信")),
    ("1381234", (None, "不是有效的手机号")), ("12812340001", (None, "不是有效的手机号")),
    ("138123400012", (None, "不是有效的手机号")), ("", (None, "没有手机号")), (None, (None, "没有手机号")),
])
def test_only_mainland_mobiles_are_sent(raw, want):
    assert sp.normalise_phone(raw) == want


def test_the_signature_counts_in_length_and_segments(tmp_path):
    cfg = cfg_with(tmp_path)
    assert sp.signature(cfg) == "【上海浦东服务中心】"  # 10 characters
    text = "您" * 60
    prep = sp.prepare([sp.Message("13812340001", "张", text)], cfg, marketing=False)
    r = prep.rows[0]
    assert r["signed"] == "【上海浦东服务中心】" + text and (r["chars"], r["segments"]) == (70, 1)
    prep = sp.prepare([sp.Message("13812340001", "张", text + "您")], cfg, marketing=False)
    assert (prep.rows[0]["chars"], prep.rows[0]["segments"]) == (71, 2)  # 61 alone would be one SMS
    prep = sp.prepare([sp.Message("13812340001", "张", "您" * 125)], cfg, marketing=False)
    assert (prep.rows[0]["chars"], prep.rows[0]["segments"]) == (135, 3)  # parts of 67
    assert sp.signature(cfg_with(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path,
                                 '[sms]\nsignature = "浦东店"\n')) == "【浦东店】"


def test_opt_out_only_on_marketing_and_per_platform(tmp_path):
    cfg = cfg_with(tmp_path)
    msgs = [sp.Message("13812340001", "张先生", "张先生生日快乐，本月到店保养享 8 折。", "C1")]
    service = sp.prepare(msgs, cfg, marketing=False)
    marketing = sp.prepare(msgs, cfg, marketing=True)
    assert "退订" not in service.rows[0]["signed"] and "拒收" not in service.rows[0]["signed"]
    plats = {p.key: p for p in marketing.platforms}
    assert sp.platform_values(plats["aliyun"], marketing.rows[0], True) == ["张先生", msgs[0].text + "回T退订"]
    assert sp.platform_values(plats["tencent"], marketing.rows[0], True) == ["张先生", msgs[0].text + "拒收请回复R"]
    assert sp.platform_values(plats["tencent"], service.rows[0], False) == ["张先生", msgs[0].text]
    assert marketing.rows[0]["chars"] == service.rows[0]["chars"] + len("拒收请回复R")  # counted


@pytest.mark.parametrize("extra, key", [
    ('[sms.platforms.aliyun]\nvariables = [{ header = "x", field = "nope" }]\n', "sms.platforms.aliyun.variables[0]"),
    ('[sms.platforms.aliyun]\nvariables = []\n', "sms.platforms.aliyun.variables"),
    ('[sms.platforms."my sms"]\nlabel = "x"\nphone_header = "p"\nvariables = [{ header = "a", field = "name" }]\n',
     "sms.platforms.my sms"),
])
def test_platform_settings_are_checked(tmp_path, extra, key):
    with pytest.raises(ConfigError) as e:
        sp.platforms(cfg_with(tmp_path, extra))
    assert key in str(e.value) and "c.toml" in str(e.value)


def test_render_writes_upload_files_with_phones_as_text_and_a_check_sheet(env, capsys):
    src = env / "shortage.xlsx"
    shutil.copy(SAMPLE, src)
    wb = openpyxl.load_workbook(src)
    ws = wb["缺件客户"]
    ws["C5"] = "021-58881234"  # 王女士: a landline
    ws["C6"] = "1381234"  # malformed
    wb.save(src)
    code, out, err = cli(capsys, "--config", str(CONFIG), "render", str(src), *CLOCK)
    assert code == 0, err
    day = env / "out" / "2026-11-24"
    flat = " ".join(err.split())
    assert "2 个号码不是手机号" in flat and "sms_check.xlsx" in flat
    for name in ("sms_aliyun.xlsx", "sms_tencent.xlsx", "sms_check.xlsx"):
        assert f"out/2026-11-24/{name}" in out
    ali = openpyxl.load_workbook(day / "sms_aliyun.xlsx").active
    rows = list(ali.iter_rows())
    assert [c.value for c in rows[0]] == ["手机号码", "name", "content"]
    assert len(rows) - 1 == 38  # 40 customers, two numbers that are not mobiles
    assert all(r[0].data_type == "s" and r[0].number_format == "@" for r in rows[1:])  # text, not numbers
    phones = [r[0].value for r in rows[1:]]
    assert "13812340001" in phones and all(len(p) == 11 and p.isdigit() for p in phones)
    assert "021-58881234" not in phones and "1381234" not in phones and "13912340002" not in phones
    assert all("退订" not in r[2].value and "拒收" not in r[2].value for r in rows[1:])  # service notices
    ten = openpyxl.load_workbook(day / "sms_tencent.xlsx").active
    assert [c.value for c in next(ten.iter_rows())] == ["手机号码", "{1}", "{2}"]
    check = openpyxl.load_workbook(day / "sms_check.xlsx")
    ok = list(check["可发送"].iter_rows(values_only=True))
    head = list(ok[0])
    body = [r for r in ok[1:39]]
    i_signed, i_chars, i_segs = head.index("发出的全文（含签名）"), head.index("字数（含签名）"), head.index("条数")
    i_short, i_short_chars = head.index("短版（含签名）"), head.index("短版字数")
    from tierctl.render import figures as docs

    for r in body:
        assert r[i_signed].startswith("【上海浦东服务中心】")
        assert docs.sms_length(r[i_signed]) == (r[i_chars], r[i_segs])
        assert r[i_short].startswith("【上海浦东服务中心】") and r[i_short_chars] <= 70
        assert docs.sms_length(r[i_short])[0] == r[i_short_chars]
    bad = list(check["不能发送"].iter_rows(values_only=True))
    assert sorted((r[0], r[3]) for r in bad[1:]) == [("021-58881234", "固定电话，不能收短信"),
                                                     ("1381234", "不是有效的手机号")]


def test_the_short_form_falls_back_until_it_fits(env, capsys, tmp_path):
    from tierctl import render

    user = tmp_path / "tpl" / "zh"
    user.mkdir(parents=True)
    (user / "sms_short.txt.j2").write_text(
        "{% if fit == 0 %}{{ c.name }}您好，" + "很长的话" * 20 + "{% else %}{{ c.name }}您好，配件预计"
        "{{ c.eta_date|date }}到店。{% endif %}", encoding="utf-8")
    code, _, err = cli(capsys, "--config", str(CONFIG), "render", str(SAMPLE), *CLOCK, "--templates",
                       str(tmp_path / "tpl"))
    assert code == 0, err
    ok = list(openpyxl.load_workbook(env / "out" / "2026-11-24" / "sms_check.xlsx")["可发送"].iter_rows(values_only=True))
    shorts = [r[6] for r in ok[1:] if r[0] and r[0].isdigit()]
    assert shorts and all("很长的话" not in s and "配件预计" in s for s in shorts)
    assert "sms_short.txt.j2" in render.TEMPLATE_NAMES


def test_touches_write_marketing_upload_files_with_opt_out(env, capsys):
    (env / "tierctl.toml").write_text('[centre]\nname = "浦东服务中心"\nmanager = "王明"\n', encoding="utf-8")
    churn = ROOT / "sample_data" / "churn.csv"
    code, _, err = cli(capsys, "touches", str(churn), "--date", "2026-11-24", "--days", "120", "--now",
                       "2026-11-24T09:00:00+08:00", "--sms-out", str(env / "sms"), "--format", "json")
    assert code == 0, err
    assert "已加退订说明" in err
    ali = list(openpyxl.load_workbook(env / "sms" / "sms_aliyun.xlsx").active.iter_rows(values_only=True))
    ten = list(openpyxl.load_workbook(env / "sms" / "sms_tencent.xlsx").active.iter_rows(values_only=True))
    assert len(ali) > 1 and len(ali) == len(ten)
    assert all(r[2].endswith("回T退订") for r in ali[1:]) and all(r[2].endswith("拒收请回复R") for r in ten[1:])
    check = list(openpyxl.load_workbook(env / "sms" / "sms_check.xlsx")["可发送"].iter_rows(values_only=True))
    assert all(r[3].startswith("【浦东服务中心】") and "拒收请回复R" in r[3] for r in check[1:] if r[0] and r[0].isdigit())
