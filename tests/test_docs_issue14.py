"""Issue 14, job A's documents: every line a customer, a director or a peer centre reads
is true.

- offers follow the day's stored allocation plan exactly (and are worded as possible,
  not promised, without one); the e-mail's costs come from the plan;
- nothing internal reaches them (rule codes, commands, config keys, optimiser figures):
  reasons are plain phrases from a data file, the codes stay in the evaluation sheet;
- nothing invented (no "cars parked in our workshop", no counts of our own in the
  transfer request: it asks for the configured parts and quantities);
- call scripts fit the cause and speak as the tier's owner;
- ``render`` makes every document it can, says which it could not and why, and honours
  today's manual overrides without a new ``score``.
"""

from __future__ import annotations

import csv
import email
import json
import re
import tomllib
from email import policy
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from conftest import AS_OF, NOW, CliResult, run_cli

from tierctl import render
from tierctl.config import Config
from tierctl.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
CONFIG = ROOT / "tests" / "golden" / "render" / "tierctl.toml"
CLOCK = ["--as-of", "2026-11-24", "--now", "2026-11-24T09:00+08:00"]


# -- helpers ----------------------------------------------------------------------------------------
def scored(path: Path, model: str = "rite"):
    from tierctl.io.ingest import read_export
    from tierctl.shortage import load_model, score

    m = load_model(model)
    ex = read_export(path, m.columns)
    return score(ex.frame, m, AS_OF, NOW, headers=ex.headers, path=path)


def write_rows(tmp_path: Path, rows: list[dict], name: str = "handmade.csv") -> Path:
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    return p


def config_with(tmp_path: Path, extra: str = "", edit=None) -> Config:
    src = CONFIG.read_text(encoding="utf-8")
    if edit:
        src = edit(src)
    p = tmp_path / "tierctl.toml"
    p.write_text(src + extra, encoding="utf-8")
    return Config.load(p)


# A hand-made export: a negative post from a calm customer, a lawyer threat the CRM scored
# calm (E given), a contact spike, a customer who says he understands, unknown usage and
# identity, a ride-hailing driver, and one without a phone.
HANDMADE = [
    {"客户编号": "H1", "客户姓名": "钱多多", "手机号": "13800000001", "等待天数": 9, "缺件名称": "大灯总成",
     "身份": "", "用车场景": "通勤", "沟通记录": "", "社媒负面": "是", "近7天联系次数": 1, "上周联系次数": 1, "E": ""},
    {"客户编号": "H2", "客户姓名": "孙律", "手机号": "13800000002", "等待天数": 20, "缺件名称": "大灯总成",
     "身份": "企业高管", "用车场景": "唯一用车", "沟通记录": "说要找律师", "社媒负面": "否", "近7天联系次数": 1,
     "上周联系次数": 1, "E": "2"},
    {"客户编号": "H3", "客户姓名": "周急", "手机号": "13800000003", "等待天数": 16, "缺件名称": "后视镜总成",
     "身份": "KOL", "粉丝数": 30000, "用车场景": "网约车", "沟通记录": "每天来电", "社媒负面": "否",
     "近7天联系次数": 9, "上周联系次数": 2, "E": ""},
    {"客户编号": "H4", "客户姓名": "吴和", "手机号": "13800000004", "等待天数": 30, "缺件名称": "后视镜总成",
     "身份": "教师", "用车场景": "", "沟通记录": "客户表示理解，不急", "社媒负面": "否", "近7天联系次数": 0,
     "上周联系次数": 0, "E": ""},
    {"客户编号": "H5", "客户姓名": "郑平", "手机号": "", "等待天数": 3, "缺件名称": "前机盖", "身份": "",
     "用车场景": "周末", "沟通记录": "准备投诉", "社媒负面": "否", "近7天联系次数": 0, "上周联系次数": 0, "E": ""},
]


def outward_texts(day: Path) -> dict[str, str]:
    """What customers, the director and peer centres read: the e-mail (draft and copy),
    every SMS, the call scripts and the transfer request."""
    out: dict[str, str] = {}
    if (day / "spec_email.eml").exists():
        msg = email.message_from_bytes((day / "spec_email.eml").read_bytes(), policy=policy.default)
        out["eml"] = msg["Subject"] + "\n" + msg.get_body(("plain",)).get_content()
        out["email_md"] = (day / "spec_email.md").read_text(encoding="utf-8")
    if (day / "sms.csv").exists():
        rows = list(csv.reader((day / "sms.csv").open(encoding="utf-8-sig", newline="")))[1:]
        out["sms"] = "\n".join(r[2] for r in rows)
    for f in ("call_scripts.md", "transfer_request.md"):
        if (day / f).exists():
            out[f] = (day / f).read_text(encoding="utf-8")
    return out


def _config_keys() -> set[str]:
    """Every configuration key a manager could see in tierctl.toml: dotted paths and the
    snake_case leaf names, from the packaged defaults and the starter file."""
    keys: set[str] = set()

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            path = f"{prefix}.{k}" if prefix else k
            if prefix:
                keys.add(path)
            if "_" in k:
                keys.add(k)
            if isinstance(v, dict):
                walk(v, path)

    for f in ("defaults.toml", "init.toml"):
        walk(tomllib.loads((ROOT / "tierctl" / "data" / f).read_text(encoding="utf-8")), "")
    return keys


INTERNAL = [
    (re.compile(r"\b[A-Z]=\d+(?:\.\d+)?\s*:"), "a rule code (R=8:)"),
    (re.compile(r"\bA\d\.\d"), "an escalation rule id (A4.4)"),
    (re.compile(r"tierctl", re.I), "the program's name or a command"),
    (re.compile(r"导出表|in the export|not recorded in the export"), "the export file"),
    (re.compile(r"加权|覆盖风险|weighted risk|risk covered"), "an optimiser figure"),
    (re.compile(r"→|≥"), "a rule's arrow or threshold"),
    (re.compile(r"升一级|立即升为|one level up"), "an escalation rule's text"),
    (re.compile(r"\[(?:costs|offer|request|transfer|progress|parts|render|calls|centre)\]"), "a config section"),
]


def assert_nothing_internal(texts: dict[str, str]) -> None:
    keys = sorted(_config_keys(), key=len, reverse=True)
    assert texts
    for name, text in texts.items():
        for pat, what in INTERNAL:
            m = pat.search(text)
            assert m is None, f"{name}: {what}: …{text[max(0, m.start() - 40):m.end() + 40]}…"
        for k in keys:
            assert not re.search(rf"(?<![\w.]){re.escape(k)}(?![\w])", text), f"{name}: config key {k}"


def sections(calls: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r"## \d+\. (\S+) · .*?(?=\n---|\Z)", calls, re.S)}


def sample_plan(result, loaners=3, premium=1, budget=8000):
    from tierctl import allocate as al

    alloc = al.allocate(al.frame_from_scores(result), "allocate", loaners=loaners, premium_loaners=premium,
                        budget=budget, days_to_eta=21)
    return alloc.to_json()


@pytest.fixture(scope="module")
def sample_result():
    return scored(SAMPLE)


# -- 2. nothing internal reaches customers, the director or peer centres --------------------------------
@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("source", ["sample", "sample+plan", "sample-rite100", "handmade"])
def test_no_internal_text_in_outward_documents(tmp_path, lang, source):
    if source == "handmade":
        res = scored(write_rows(tmp_path, HANDMADE))
    elif source.endswith("rite100"):
        # the sample's 舆情风险 column holds rite (1–10) scores, which rite100 refuses: derived from the facts
        f = tmp_path / "sample_rite100.csv"
        pd.read_excel(SAMPLE, dtype=str, header=2, engine="openpyxl").drop(columns=["舆情风险"]).to_csv(f, index=False)
        res = scored(f, "rite100")
    else:
        res = scored(SAMPLE)
    plan = sample_plan(res) if source.endswith("plan") else None
    rep = render.render_documents(res, Config.load(CONFIG), tmp_path / "out", lang=lang, plan=plan)
    texts = outward_texts(rep.out_dir)
    assert {"eml", "email_md", "sms", "call_scripts.md", "transfer_request.md"} <= set(texts)
    assert_nothing_internal(texts)


def test_reasons_are_plain_phrases_and_codes_stay_in_the_sheet(tmp_path, sample_result):
    rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path)
    md = (rep.out_dir / "spec_email.md").read_text(encoding="utf-8")
    calls = sections((rep.out_dir / "call_scripts.md").read_text(encoding="utf-8"))
    assert "网约车司机" in calls["张先生"]  # I=10: 用车场景含「网约车」
    assert "已在网上发帖投诉" in md and "已在网上发帖投诉" in calls["郭芳"]  # A4.6
    liu = md.split("刘辉（")[1].split("【三")[0]
    assert liu.count("- 已等 33 天") == 1  # 刘辉: T=10, A4.2 and A4.3 all say it: said once
    assert "粉丝 52,000 人" in calls["张先生"]
    # the codes are still where the manager checks the arithmetic: the sheet's 评分依据
    wb = openpyxl.load_workbook(rep.out_dir / "evaluation_sheet.xlsx")
    ws = wb.worksheets[0]
    head = [c.value for c in ws[1]]
    reasons = "\n".join(str(ws.cell(r, head.index("评分依据") + 1).value) for r in range(2, ws.max_row + 1))
    assert "A4.6: 社交媒体出现负面发帖" in reasons and "I=10: 用车场景含「网约车」" in reasons


def test_plain_reasons_in_english(tmp_path, sample_result):
    rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path, lang="en")
    md = (rep.out_dir / "spec_email.md").read_text(encoding="utf-8")
    assert "has already posted a complaint online" in md and "waited 33 days" in md
    assert "ride-hailing driver" in (rep.out_dir / "call_scripts.md").read_text(encoding="utf-8")


def test_plain_reasons_file_is_data_and_validated(tmp_path, sample_result):
    mine = tmp_path / "reasons.toml"
    packaged = (ROOT / "tierctl" / "data" / "plain_reasons.toml").read_text(encoding="utf-8")
    mine.write_text(packaged.replace('zh = "已在网上发帖投诉"', 'zh = "网上已有差评帖"'), encoding="utf-8")
    cfg = config_with(tmp_path, f'\n[render]\nplain_reasons = "{mine.name}"\n')
    texts = render.render_texts(render.prepare(sample_result, cfg), render.make_environment("zh")).texts
    assert "网上已有差评帖" in texts["email_body"] and "已在网上发帖投诉" not in texts["email_body"]
    mine.write_text('[[reason]]\nzh = "没有 match 也没有 id"\nen = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        render.prepare(sample_result, cfg)
    assert "reasons.toml" in str(e.value) and "reason[0]" in str(e.value)


# -- 1. offers follow the stored plan --------------------------------------------------------------------
def test_with_a_plan_each_customer_gets_exactly_what_the_plan_gave(tmp_path, sample_result):
    plan = sample_plan(sample_result)
    rows = {r["name"]: r for r in plan["plan"]}
    covered = [n for n, r in rows.items() if r["covered"] and r["loaner"] != "none"]
    uncovered = [n for n, r in rows.items() if not r["covered"] and r["tier"] in ("P0", "P1")]
    assert covered and uncovered
    rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path, plan=plan)
    calls = sections((rep.out_dir / "call_scripts.md").read_text(encoding="utf-8"))
    sms = {r["客户姓名"]: r["短信内容"] for r in csv.DictReader((rep.out_dir / "sms.csv").open(encoding="utf-8-sig"))}
    for n in uncovered:
        assert "代步车" not in calls[n], n  # no loaner promised (nor asked about) to someone who got none
        assert "代步车" not in sms[n], n
    for n in covered:
        kind = {"premium": "高端代步车", "standard": "标准代步车", "economy": "经济型代步车"}[rows[n]["loaner"]]
        assert f"我们为您安排了：{kind}" in calls[n], n
        assert "代步车用着还方便吗" in calls[n]
    md = (rep.out_dir / "spec_email.md").read_text(encoding="utf-8")
    used = sum(r["cost"] for r in plan["plan"] if r["covered"])
    assert f"按今天的资源安排，小计 {used:,} 元" in md
    assert "500 元/天" not in md  # the config's per-tier loaner cost for every P0–P2 is gone
    for pk in {(r["option_name"], r["cost"]) for r in plan["plan"] if r["covered"]}:
        count = sum(1 for r in plan["plan"] if r["covered"] and (r["option_name"], r["cost"]) == pk)
        assert f"{count} 位 × {pk[1]:,} 元/位 = {count * pk[1]:,} 元" in md, pk


def test_without_a_plan_offers_are_worded_as_possible_not_promised(tmp_path, sample_result):
    rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path)
    calls = (rep.out_dir / "call_scripts.md").read_text(encoding="utf-8")
    sms = outward_texts(rep.out_dir)["sms"]
    md = (rep.out_dir / "spec_email.md").read_text(encoding="utf-8")
    for promise in ("我们为您准备了", "为您准备的补偿", "代步车用着还方便吗", "【您的权益】"):
        assert promise not in calls and promise not in sms, promise
    assert "可为您申请" in sms and "按政策可以为您申请" in calls
    # the cost estimate says what it assumes
    assert "按政策上限测算" in md and "P0、P1、P2 客户每人一辆代步车" in md


def test_render_cli_picks_up_the_stored_plan_for_offers(tmp_path):
    env = {"TIERCTL_DB": str(tmp_path / "t.db")}
    a = run("--config", str(CONFIG), "allocate", str(SAMPLE), "--loaners", "2", "--budget", "5000", *CLOCK,
            "--days-to-eta", "21", "--format", "json", cwd=tmp_path, env=env)
    assert a.returncode == 0, a.stderr
    plan = json.loads(a.stdout)
    p = run("--config", str(CONFIG), "render", str(SAMPLE), *CLOCK, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    day = tmp_path / "out" / "2026-11-24"
    calls = sections((day / "call_scripts.md").read_text(encoding="utf-8"))
    no_car = [r["name"] for r in plan["plan"] if r["loaner"] == "none" and r["name"] in calls]
    assert no_car
    for n in no_car:
        assert "代步车" not in calls[n], n


# -- 3. nothing invented ---------------------------------------------------------------------------------------
def test_no_invented_claims(tmp_path, sample_result):
    for lang in ("zh", "en"):
        rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path / lang, lang=lang)
        texts = outward_texts(rep.out_dir)
        for name, text in texts.items():
            for claim in ("停在店内", "停在店里", "每天都在追", "在我们这里已经等了", "数量按每位", "总部预计",
                          "资源已经用上", "standing in our workshop", "chasing it every day", "has been with us",
                          "one part per waiting customer", "used every resource", "HQ expects"):
                assert claim not in text, (lang, name, claim)


def test_transfer_request_asks_for_the_configured_parts(tmp_path, sample_result):
    rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path)
    t = (rep.out_dir / "transfer_request.md").read_text(encoding="utf-8")
    assert "- 前保险杠总成 × 6 件" in t and "- 大灯总成 × 4 件" in t
    assert "× 8 件" not in t and "后视镜总成 ×" not in t  # not a count of its own
    assert "目前 8 位客户在等这个配件" in t  # the data stays as the reason


def test_transfer_request_without_configured_parts_is_skipped_with_a_reason(tmp_path, sample_result):
    cfg = config_with(tmp_path, edit=lambda s: re.sub(r"\nparts = \[.*?\]\n", "\n", s, flags=re.S))
    rep = render.render_documents(sample_result, cfg, tmp_path / "out")
    assert not (rep.out_dir / "transfer_request.md").exists()
    assert any("跨区调度申请" in w and "transfer.parts" in w for w in rep.warnings), rep.warnings
    assert (rep.out_dir / "spec_email.eml").exists() and (rep.out_dir / "call_scripts.md").exists()


# -- 4. call scripts fit the cause and speak as the owner ----------------------------------------------------------
def test_posted_and_lawyer_customers_are_not_thanked_for_understanding(tmp_path):
    res = scored(write_rows(tmp_path, HANDMADE))
    rep = render.render_documents(res, Config.load(CONFIG), tmp_path / "out")
    calls = sections((rep.out_dir / "call_scripts.md").read_text(encoding="utf-8"))
    assert {"钱多多", "孙律"} <= set(calls)
    for n in ("钱多多", "孙律"):
        assert "体谅" not in calls[n] and "谢谢您的耐心" not in calls[n], n
    assert "您在网上发的帖子" in calls["钱多多"]
    assert "维权" in calls["孙律"]
    # a customer who said he understands is thanked for it
    assert "体谅" in calls["吴和"]


def test_p1_script_speaks_as_the_sa_supervisor(tmp_path, sample_result):
    rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path / "a")
    calls = sections((rep.out_dir / "call_scripts.md").read_text(encoding="utf-8"))
    tiers = dict(zip(sample_result.customers["name"], sample_result.customers["tier"], strict=True))
    p1 = [n for n in calls if tiers[n] == "P1"]
    p0 = [n for n in calls if tiers[n] == "P0"]
    assert p1 and p0
    for n in p1:
        opening = calls[n].split("**开场")[1].split("**进展")[0]
        assert "的SA主管" in opening and "服务经理陈明" not in opening, n
        assert "请直接打我的电话021-5888 1234" not in calls[n]  # that is the manager's own line
    for n in p0:
        assert "服务经理陈明" in calls[n].split("**开场")[1].split("**进展")[0]
    cfg = config_with(tmp_path, '\n[calls.callers.P1]\nname = "王芳"\nphone = "021-5888 1240"\n')
    rep = render.render_documents(sample_result, cfg, tmp_path / "b")
    calls = sections((rep.out_dir / "call_scripts.md").read_text(encoding="utf-8"))
    assert "SA主管王芳" in calls[p1[0]] and "021-5888 1240" in calls[p1[0]]


# -- 5. every document it can; overrides without a new score ------------------------------------------------------
def run(*args: str, cwd: Path, env: dict | None = None) -> CliResult:
    return run_cli(*args, cwd=cwd, env={"TIERCTL_CONFIG": None, **(env or {})})


def test_render_without_a_part_column_writes_the_rest_and_says_why(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "缺件名称"} for r in HANDMADE]
    f = write_rows(tmp_path, rows, "no_part.csv")
    p = run("--config", str(CONFIG), "render", str(f), *CLOCK, cwd=tmp_path, env={"TIERCTL_DB": str(tmp_path / "t.db")})
    assert p.returncode == 0, p.stderr
    day = tmp_path / "out" / "2026-11-24"
    names = sorted(x.name for x in day.iterdir())
    assert names == sorted(["spec_email.eml", "spec_email.md", "evaluation_sheet.xlsx", "sms.csv", "sms.md",
                            "call_scripts.md", "sms_aliyun.xlsx", "sms_tencent.xlsx", "sms_check.xlsx"])
    assert "跨区调度申请" in p.stderr and "缺件名称" in p.stderr
    assert "transfer_request.md" not in p.stdout
    assert_nothing_internal(outward_texts(day))


def test_render_honours_todays_override_without_a_new_score(tmp_path):
    env = {"TIERCTL_DB": str(tmp_path / "t.db")}
    assert run("--config", str(CONFIG), "score", str(SAMPLE), *CLOCK, cwd=tmp_path, env=env).returncode == 0
    o = run("--config", str(CONFIG), "override", "梁丽", "P0", "--reason", "客户已上门投诉", "--now",
            "2026-11-24T10:00+08:00", cwd=tmp_path, env=env)
    assert o.returncode == 0, o.stderr
    p = run("--config", str(CONFIG), "render", "--as-of", "2026-11-24", "--now", "2026-11-24T10:30+08:00",
            cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    calls = (tmp_path / "out" / "2026-11-24" / "call_scripts.md").read_text(encoding="utf-8")
    head = re.search(r"## \d+\. 梁丽 · (P\d)", calls)
    assert head and head.group(1) == "P0"
    assert "人工调整为 P0：客户已上门投诉" in sections(calls)["梁丽"]
    assert "服务经理陈明" in sections(calls)["梁丽"].split("**开场")[1].split("**进展")[0]
    # clearing it before rendering puts the computed tier back
    c = run("--config", str(CONFIG), "override", "梁丽", "--clear", "--reason", "误判", "--now",
            "2026-11-24T11:00+08:00", cwd=tmp_path, env=env)
    assert c.returncode == 0, c.stderr
    p = run("--config", str(CONFIG), "render", "--as-of", "2026-11-24", "--now", "2026-11-24T11:30+08:00",
            "--force", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    calls = (tmp_path / "out" / "2026-11-24" / "call_scripts.md").read_text(encoding="utf-8")
    assert re.search(r"## \d+\. 梁丽 · (P\d)", calls).group(1) == "P1"


def test_the_plan_sheet_the_director_gets_has_no_optimiser_figures(tmp_path, sample_result):
    plan = sample_plan(sample_result)
    rep = render.render_documents(sample_result, Config.load(CONFIG), tmp_path, plan=plan)
    ws = openpyxl.load_workbook(rep.out_dir / "evaluation_sheet.xlsx")["资源分配"]
    head = [str(v) for row in ws.iter_rows(values_only=True) for v in row[:2] if v is not None]
    text = "\n".join(head)
    assert "加权" not in text and "覆盖风险" not in text
    assert "再多 1 辆代步车：" in text
