"""`tierctl report`: the dashboard's numbers against the library (SQL aggregates checked
against pandas on the full rows), a self-contained, escaped, printable page whose outline
is kept in a golden file, the PNG charts (not blank, Chinese glyphs really drawn) and the
command line (JSON equal to the library, no overwrite without --force)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CliResult, run_cli

# one worker runs this file: its module fixtures are built once, not once per worker
pytestmark = pytest.mark.xdist_group("report")

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "report"
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
VISITS = ROOT / "sample_data" / "visits.csv"
TZ = dt.timezone(dt.timedelta(hours=8))
DAYS = [dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 23), dt.date(2026, 11, 24)]
DAY = DAYS[-1]
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
EVIL = '<script>alert("x")</script>张&先生'


# -- a store like a month of mornings ----------------------------------------------------------
def build_store(path: Path, *, rfm: bool = True, churn: bool = True) -> Path:
    """Four shortage runs (customers leave, come back, one complains), a logged contact,
    two RFM snapshots and one churn snapshot — everything through the real code."""
    from tierctl.daily import WorkCalendar
    from tierctl.daily.actions import log_contact
    from tierctl.daily.history import record_run
    from tierctl.io.ingest import read_export
    from tierctl.shortage import crisis_level, load_model, score
    from tierctl.store import Store

    model = load_model("rite")
    ex = read_export(SAMPLE, model.columns)
    base = ex.frame
    with Store.open(path) as store:
        for i, day in enumerate(DAYS):
            f = base.copy()
            if i == 1:
                f = f.iloc[3:]
            if i >= 2:
                notes = f["notes"].astype("object")
                notes.iloc[5] = "客户说再不给答复就去投诉"
                f["notes"] = pd.array(notes, dtype=f["notes"].dtype)
            if i == 3:
                f = f.iloc[:-2].copy()
                names = f["name"].astype("object")
                names.iloc[0] = EVIL
                f["name"] = pd.array(names, dtype=f["name"].dtype)
            now = dt.datetime.combine(day, dt.time(9), tzinfo=TZ)
            result = score(f, model, day, now, headers=ex.headers, path=ex.path)
            record_run(store, result, crisis_level(result, 3.5), source_name="shortage.xlsx", source_hash=str(i))
            if i == 2:
                log_contact(store, str(f["customer_id"].iloc[1]), result="已接通", at=now, now=now,
                            cal=WorkCalendar(False))
        if rfm:
            from tierctl.rfm import compute_rfm, load_rfm_model, snapshot_meta
            from tierctl.rfm import snapshot_rows as rfm_rows

            rm = load_rfm_model("rfm")
            vx = read_export(VISITS, rm.columns)
            for d in (dt.date(2026, 10, 31), DAY):
                res = compute_rfm(vx.frame, rm, d)
                store.save_snapshot("rfm", d, rm.name, "visits.csv", None, rfm_rows(res), snapshot_meta(res))
        if churn:
            from tierctl.churn import load_churn_model
            from tierctl.churn.history import save_result

            save_result(store, churn_result(), load_churn_model("churn"), source_name="churn.xlsx", source_hash=None)
    return path


def churn_result():
    from tierctl.churn import load_churn_model, score_churn

    n = 300
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"customer_id": pd.array([f"K{i:04d}" for i in range(n)], dtype="string"),
                          "name": pd.array([f"客户{i}" for i in range(n)], dtype="string"),
                          "risk_score": pd.array(rng.integers(0, 101, n).astype(float), dtype="Float64")})
    frame["_row"] = np.arange(2, n + 2)
    return score_churn(frame, load_churn_model("churn"), DAY, NOW)


def churn_rows() -> pd.DataFrame:
    from tierctl.churn.history import snapshot_frame

    return snapshot_frame(churn_result())


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("report") / "t.db")


def gather(db: Path, lang: str = "zh", day: dt.date = DAY, **kw):
    from tierctl.render import dashboard
    from tierctl.store import Store

    with Store.open(db, readonly=True) as store:
        return dashboard.gather(store, day, NOW, lang=lang, **kw)


@pytest.fixture(scope="module")
def data(db):
    return gather(db)


# -- the numbers ------------------------------------------------------------------------------------
def test_counts_and_trend_match_every_snapshot(db, data):
    from tierctl.store import Store

    s = data["shortage"]
    with Store.open(db, readonly=True) as store:
        snaps = store.list_snapshots("shortage")
        assert [t["date"] for t in s["trend"]] == [x.as_of.isoformat() for x in snaps]
        for t, info in zip(s["trend"], snaps, strict=True):
            labels = store.snapshot_rows(info.id)["label"].value_counts()
            assert t["counts"] == {k: int(labels.get(k, 0)) for k in ("P0", "P1", "P2", "P3")}
    assert {t["name"]: t["count"] for t in s["tiers"]} == s["trend"][-1]["counts"]
    assert sum(t["count"] for t in s["tiers"]) == s["customers"]


def test_counts_fall_back_to_sql_when_meta_lacks_them(db, tmp_path):
    """An old snapshot without ``counts`` in its meta is counted in the database."""
    import shutil

    import sqlalchemy as sa

    from tierctl.store import Store
    from tierctl.store.schema import snapshots

    copy = tmp_path / "old.db"
    shutil.copy(db, copy)
    with Store.open(copy) as store, store.transaction() as conn:
        for row in conn.execute(sa.select(snapshots.c.id, snapshots.c.meta).where(snapshots.c.kind == "shortage")).all():
            meta = dict(row.meta)
            meta.pop("counts", None)
            conn.execute(sa.update(snapshots).where(snapshots.c.id == row.id).values(meta=meta))
    assert gather(copy)["shortage"]["trend"] == gather(db)["shortage"]["trend"]


def test_wait_histogram_and_reference_lines(db, data):
    from tierctl.store import Store

    w = data["shortage"]["wait"]
    with Store.open(db, readonly=True) as store:
        info = store.latest_snapshot("shortage")
        waits = store.snapshot_rows(info.id, fields=["wait_days"])["wait_days"].to_numpy()
    assert sum(w["counts"]) == len(waits) == w["customers"]
    expect, _ = np.histogram(np.minimum(waits, w["edges"][-1] - 1), bins=w["edges"])
    assert w["counts"] == expect.tolist()
    assert [x["days"] for x in w["lines"]] == [7, 14, 21, 28]
    assert "SA 主管" in w["lines"][1]["label"] and "区域总监" in w["lines"][3]["label"]
    assert w["longest"] == waits.max() and sum(b["count"] for b in w["bands"]) == len(waits)


def test_changes_equal_the_daily_loop_diff(db, data):
    """The SQL join gives the same new/upgraded/downgraded/resolved as
    :func:`tierctl.daily.diff_snapshots` on the full rows."""
    from tierctl.daily import diff_snapshots
    from tierctl.store import Store

    ch = data["shortage"]["changes"]
    with Store.open(db, readonly=True) as store:
        cur = store.latest_snapshot("shortage")
        prev = store.latest_snapshot("shortage", before=cur.as_of)
        dims = ["R", "I", "T", "E"]
        fields = [*dims, *(f"reason_{k}" for k in dims), "escalations"]
        ref = diff_snapshots(store.snapshot_rows(prev.id, fields=fields), store.snapshot_rows(cur.id, fields=fields),
                             ["P0", "P1", "P2", "P3"], dims, prev.as_of)
    assert ch["previous_as_of"] == ref["previous_as_of"]
    assert ch["counts"] == ref["counts"]
    assert ch["counts"]["resolved"] == 2
    for k in ("new", "resolved"):
        assert {x["customer_id"] for x in ch[k]} == {x["customer_id"] for x in ref[k]}
    for k in ("upgraded", "downgraded"):
        assert {(x["customer_id"], x["from"], x["to"]) for x in ch[k]} == \
            {(x["customer_id"], x["from"], x["to"]) for x in ref[k]}
        assert {x["customer_id"]: x["why"] for x in ch[k]} == {x["customer_id"]: x["why"] for x in ref[k]}


def test_upgrade_with_cause_on_the_day_a_customer_complains(db):
    ch = gather(db, day=DAYS[2])["shortage"]["changes"]
    assert ch["counts"]["new"] == 3 and ch["counts"]["upgraded"] >= 1
    assert any("投诉" in " ".join(x["why"]) for x in ch["upgraded"])


def test_alerts_and_tasks_match_the_store(db, data):
    from tierctl.daily import WorkCalendar
    from tierctl.daily.reports import tasks_report
    from tierctl.store import Store

    s = data["shortage"]
    with Store.open(db, readonly=True) as store:
        alerts = store.alerts_list("shortage")
        tasks = tasks_report(store, DAY, NOW, WorkCalendar(False))
    assert s["alerts"]["count"] == len(alerts)
    assert s["alerts"]["customers"] == alerts["customer_key"].nunique()
    assert sum(r["count"] for r in s["alerts"]["by_recipient"]) == len(alerts)
    first = s["alerts"]["items"][0]
    assert first["rule_id"] == "wait28"  # the most serious first
    assert [a["customer_id"] for a in s["alerts"]["items"]] == list(dict.fromkeys(
        alerts.assign(_r=alerts["rule_id"].map({"wait28": 0, "wait21": 1, "wait14": 2}))
        .sort_values(["_r", "fired_on", "id"], kind="mergesort")["customer_id"]))[:50]
    by_customer = alerts.groupby("customer_id")["recipient"].apply(set).to_dict()
    assert all(set(a["recipients"]) == by_customer[a["customer_id"]] for a in s["alerts"]["items"])
    assert s["tasks"]["count"] == tasks["count"] and s["tasks"]["overdue"] == tasks["overdue"]
    assert [g["owner"] for g in s["tasks"]["groups"]] == [g["owner"] for g in tasks["groups"]]
    assert [g["count"] for g in s["tasks"]["groups"]] == [len(g["tasks"]) for g in tasks["groups"]]
    assert [g["overdue"] for g in s["tasks"]["groups"]] == [sum(t["overdue"] for t in g["tasks"]) for g in tasks["groups"]]
    for mine, ref in zip(s["tasks"]["groups"], tasks["groups"], strict=True):
        assert [(t["customer_id"], t["tier"], t["task"], t["status"]) for t in mine["tasks"]] == \
            [(t["customer_id"], t["tier"], t["task"], t["status"]) for t in ref["tasks"][:len(mine["tasks"])]]


def test_lists_are_capped_but_counts_are_not(db):
    from tierctl.render.dashboard import Limits

    s = gather(db, limits=Limits(alerts=3, tasks_per_owner=2, changes=1))["shortage"]
    assert len(s["alerts"]["items"]) == 3 and s["alerts"]["more"] == s["alerts"]["customers"] - 3
    for g in s["tasks"]["groups"]:
        assert len(g["tasks"]) == min(2, g["count"]) and g["more"] == g["count"] - len(g["tasks"])
    assert len(s["changes"]["resolved"]) == 1 and s["changes"]["more"]["resolved"] == 1


def test_crisis_level_and_criteria(data):
    c = data["shortage"]["crisis"]
    assert c["level"] == max(x["level"] for x in c["criteria"])
    assert c["label"] == "极度" and c["hex"] == "#d73027"
    assert {x["name"] for x in c["criteria"]} >= {"affected", "longest_wait", "tiers", "complaints"}
    assert any(x["decisive"] for x in c["criteria"])


def test_rfm_distribution_and_migration_equal_the_rfm_module(data):
    from tierctl.io.ingest import read_export
    from tierctl.rfm import compute_rfm, load_rfm_model, migrate

    rm = load_rfm_model("rfm")
    vx = read_export(VISITS, rm.columns)
    prev, cur = compute_rfm(vx.frame, rm, dt.date(2026, 10, 31)), compute_rfm(vx.frame, rm, DAY)
    r = data["rfm"]
    assert [t["customers"] for t in r["types"]] == cur.summary["customers"].tolist()
    assert r["customers"] == len(cur.customers)
    mig = migrate(prev, cur, rm)
    assert r["migration"]["matrix"] == mig.matrix.to_numpy().tolist()
    assert [(f["from"], f["to"], f["count"], f["base"]) for f in r["migration"]["flows"]] == \
        [(f["from_type"], f["to_type"], f["count"], f["base"]) for f in mig.flows]


def test_churn_roi_is_projected_until_results_are_stored(db, tmp_path):
    from decimal import Decimal

    from tierctl.churn import load_churn_model
    from tierctl.store import Store

    c = gather(db)["churn"]
    model = load_churn_model("churn")
    rows = churn_rows()
    assert [lv["customers"] for lv in c["levels"]] == [int((rows["level_key"] == lv.key).sum()) for lv in model.levels]
    assert c["roi_basis"] == "projected"
    mid = next(x for x in c["roi"] if x["key"] == "mid")
    lv = model.level("mid")
    k = mid["customers"]
    won = int((Decimal(k) * sum(lv.benchmark) / 2).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    cost = Decimal(k) * sum(Decimal(b) for b in lv.budget) / 2
    assert mid["won_back"] == won and Decimal(str(mid["cost"])) == cost
    assert mid["roi"] == round(float((won * model.average_annual_spend - cost) / cost) * 100, 1)
    assert "low" not in {x["key"] for x in c["roi"]}  # no benchmark for automatic upkeep

    # stored intervention results (the seed's table) win over the projection
    from tierctl.churn import roi_report

    seed = {"mid": {"intervened": 850, "won_back": 562, "cost": 128000},
            "high": {"intervened": 320, "won_back": 150, "cost": 256000},
            "extreme": {"intervened": 180, "won_back": 54, "cost": 1080000}}
    p = tmp_path / "roi.db"
    with Store.open(p) as store:
        store.save_snapshot("churn", DAY, "churn", "x", None, rows, {"roi": roi_report(seed, model).to_json()})
    c2 = gather(p)["churn"]
    assert c2["roi_basis"] == "actual" and round(c2["total"]["roi"]) == 162 and c2["total"]["won_back"] == 766


def test_churn_roi_from_logged_interventions(tmp_path):
    """Once interventions are logged (tierctl churn log) the ROI is the closed loop's."""
    import shutil

    from tierctl.churn import load_churn_model
    from tierctl.churn.history import log_intervention
    from tierctl.churn.report import loop_report
    from tierctl.store import Store

    p = tmp_path / "loop.db"
    shutil.copy(build_store(tmp_path / "base.db", rfm=False), p)
    model = load_churn_model("churn")
    rows = churn_rows()
    who = rows[rows["level_key"].isin(["high", "extreme"])]["customer_id"].head(3).tolist()
    with Store.open(p) as store:
        for k in who:
            log_intervention(store, model, k, action="店长致电", result="接通", at=NOW, now=NOW, cost=300)
        expect = loop_report(store, model, end=DAY, now=NOW).roi.to_json()
    c = gather(p)["churn"]
    assert c["roi_basis"] == "actual"
    assert [(x["key"], x["intervened"], x["cost"]) for x in c["roi"]] == \
        [(x["level"], x["intervened"], x["cost"]) for x in expect["levels"]]
    assert sum(x["intervened"] for x in c["roi"]) == 3


def test_english_labels(db):
    d = gather(db, "en")
    assert d["shortage"]["crisis"]["label"] == "extreme"
    assert d["shortage"]["tiers"][0]["label"] == "Critical risk"
    assert d["rfm"]["types"][0]["name"] == "Champion" or d["rfm"]["types"][0]["name"].isascii()
    assert d["churn"]["levels"][1]["label"] == "Medium"


def test_no_snapshot_at_all_is_a_clear_error(tmp_path):
    from tierctl.errors import NotFoundError
    from tierctl.store import Store

    p = tmp_path / "empty.db"
    Store.open(p).close()
    with pytest.raises(NotFoundError, match="tierctl score"):
        gather(p)


def test_only_rfm_stored_renders_without_the_shortage_part(tmp_path):
    from tierctl.render import dashboard

    p = build_store(tmp_path / "r.db", churn=False)
    from tierctl.store import Store

    with Store.open(p) as store, store.transaction() as conn:
        conn.exec_driver_sql("DELETE FROM snapshots WHERE kind = 'shortage'")
    d = gather(p)
    assert d["shortage"] is None and d["churn"] is None and d["rfm"]["migration"] is not None
    html = dashboard.render_html(d, dashboard.figures(d))
    assert 'id="shortage-missing"' in html and 'id="figure-rfm_migration"' in html


def test_an_older_date_uses_that_days_run_and_warns_when_stale(db):
    d = gather(db, day=dt.date(2026, 11, 22))
    assert d["shortage"]["as_of"] == "2026-11-21" and d["shortage"]["stale_days"] == 1
    assert any("2026-11-21" in w for w in d["warnings"])
    assert d["rfm"]["as_of"] == "2026-10-31"  # the newer RFM snapshot is not shown on an older day
    d2 = gather(db, day=dt.date(2026, 11, 1))
    assert d2["rfm"]["as_of"] == "2026-10-31" and d2["rfm"]["migration"] is None


def test_data_is_plain_json(data):
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data


# -- the page ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def html(data) -> str:
    from tierctl.render import dashboard

    return dashboard.render_html(data, dashboard.figures(data))


def test_page_is_self_contained_and_printable(html):
    assert "<script" not in html.lower()
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'<>)]*", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert not re.search(r"\b(?:src|href)\s*=", html)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html  # the browser itself refuses any load
    assert "size: A4" in html and "break-inside: avoid" in html
    for family in ("Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "sans-serif"):
        assert family in html


def test_every_chart_has_a_text_alternative(html, data):
    from tierctl.render import dashboard

    figs = dashboard.figures(data)
    assert [f.key for f in figs] == ["trend", "wait", "rfm_types", "rfm_migration", "churn_roi"]
    for f in figs:
        block = html[html.index(f'id="figure-{f.key}"'):]
        block = block[:block.index("</figure>")]
        assert 'role="img"' in block and '<title id="fig-' in block and f.title in block
        assert "<figcaption>" in block and "<table" in block and "<details>" in block
        assert block.count("<tr>") == len(f.rows) + 1


def test_customer_text_is_escaped(html):
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;张&amp;先生" in html


class Outline(HTMLParser):
    """Headings, figure captions, chart titles and table headers — the page's structure
    without the numbers."""

    WANT = {"h1", "h2", "h3", "figcaption", "summary", "th", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.stack: list[str] = []
        self.buf: list[str] | None = None
        self.in_head = False
        self.in_thead = False

    def handle_starttag(self, tag, attrs):
        if tag == "head":
            self.in_head = True
        if tag == "thead":
            self.in_thead = True
        chart_title = tag != "title" or (dict(attrs).get("id") or "").endswith("-title")  # not bar tooltips
        if tag in self.WANT and not self.in_head and (tag != "th" or self.in_thead) and chart_title:
            self.stack.append(tag)
            self.buf = []
        if tag == "section":
            self.lines.append(f"section #{dict(attrs).get('id')}")
        if tag == "figure":
            self.lines.append(f"figure #{dict(attrs).get('id')}")

    def handle_endtag(self, tag):
        if tag == "head":
            self.in_head = False
        if tag == "thead":
            self.in_thead = False
        if self.stack and tag == self.stack[-1]:
            self.stack.pop()
            text = re.sub(r"\s+", " ", "".join(self.buf or [])).strip()
            text = re.sub(r"\d+(?:[.,]\d+)*", "#", text)
            self.lines.append(f"  {tag}: {text}" if tag in ("th", "title", "figcaption", "summary") else f"{tag}: {text}")
            self.buf = None

    def handle_data(self, data):
        if self.buf is not None:
            self.buf.append(data)


def outline(page: str) -> str:
    p = Outline()
    p.feed(page)
    return "\n".join(p.lines) + "\n"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_outline_matches_golden(db, lang):
    """The page's structure, compared whole.  After a deliberate change:
    TIERCTL_UPDATE_GOLDEN=1 pytest tests/test_report.py"""
    from tierctl.render import dashboard

    d = gather(db, lang)
    got = outline(dashboard.render_html(d, dashboard.figures(d)))
    path = GOLDEN / f"outline_{lang}.txt"
    if os.environ.get("TIERCTL_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")


def test_user_template_overrides_and_stays_escaped(data, tmp_path):
    from tierctl.render import dashboard

    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "dashboard.html.j2").write_text(
        '{% extends "default:zh/dashboard.html.j2" %}', encoding="utf-8")
    page = dashboard.render_html(data, dashboard.figures(data), templates=tmp_path)
    assert page == dashboard.render_html(data, dashboard.figures(data))
    (tmp_path / "zh" / "dashboard.html.j2").write_text("<p>{{ d.shortage.changes.resolved[0].name }}</p>",
                                                       encoding="utf-8")
    assert "<p>" in dashboard.render_html(data, [], templates=tmp_path)


# -- charts --------------------------------------------------------------------------------------
def test_chart_builders_produce_wellformed_svg():
    import xml.etree.ElementTree as ET

    from tierctl.render import charts

    svgs = [
        charts.stacked_bars(["a", "b"], [charts.Series("P0", [1, 2], "#f00"), charts.Series("P1", [0, 3], "#0f0")],
                            title="趋势 & <x>"),
        charts.stacked_bars([], [], title="空"),
        charts.histogram([0, 7, 14, 21], [3, 0, 1], title="h", lines=[charts.RefLine(7, "7 天"), charts.RefLine(99, "x")]),
        charts.histogram([0, 1], [0], title="empty"),
        charts.heatmap(["a", "新客户"], ["b", "c"], [[1, 0], [5, 2]], title="m", highlight=[(0, 1)]),
        charts.hbars(["中", "高"], [25.5, -10], title="roi", value_labels=["25.5%", "-10%"]),
        charts.hbars([], [], title="none"),
    ]
    for s in svgs:
        root = ET.fromstring(s)
        assert root.get("role") == "img"
        assert root.find("{http://www.w3.org/2000/svg}title").text
    assert "趋势 &amp; &lt;x&gt;" in svgs[0]


def test_nice_ticks():
    from tierctl.render.charts import nice_ticks

    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(40)[-1] >= 40 and len(nice_ticks(40)) <= 7
    assert nice_ticks(100_000)[-1] == 100_000


# -- PNG ---------------------------------------------------------------------------------------------
def _cairo():
    try:
        import cairosvg  # noqa: F401
        from PIL import Image  # noqa: F401
    except (ImportError, OSError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cairosvg/Pillow not usable here: {exc}")


def _cjk_or_skip():
    from tierctl.render.dashboard import cjk_font

    fam = cjk_font()
    if fam is None:
        if os.environ.get("CI"):
            pytest.fail("no CJK font installed (.ci/run installs fonts-wqy-microhei)")
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")
    return fam


def _pixels(path_or_bytes):
    import io

    from PIL import Image

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    return np.asarray(Image.open(src).convert("L"), dtype=float)


def test_pngs_are_written_and_not_blank(db, tmp_path):
    _cairo()
    from tierctl.render import dashboard

    d = gather(db)
    files = dashboard.write_report(d, tmp_path, png=True)
    assert [p.name for p in files.pngs] == ["trend.png", "wait.png", "rfm_types.png", "rfm_migration.png",
                                            "churn_roi.png"]
    for p in files.pngs:
        px = _pixels(p)
        assert px.shape[1] >= 1000  # 2× the 680 px chart
        assert px.std() > 10 and (px < 200).mean() > 0.01, p.name


def test_png_draws_the_chinese_title(db):
    """Real glyphs, not tofu: two different Chinese titles must render differently
    (missing glyphs draw the same boxes), and a title must differ from none."""
    _cairo()
    fam = _cjk_or_skip()
    import cairosvg

    from tierctl.render import charts

    def render(title: str) -> np.ndarray:
        svg = charts.stacked_bars(["11-24"], [charts.Series("P0", [3], "#d73027")], title=title, font=fam)
        return _pixels(cairosvg.svg2png(bytestring=svg.encode(), scale=2, background_color="white"))[:56]

    a, b, blank = render("等待天数分布"), render("布分数天待等"), render("")
    assert (a < 128).sum() > 200
    assert np.abs(a - blank).sum() > 0
    assert np.abs(a - b).mean() > 1.0


def test_png_title_uses_an_installed_cjk_family(db, tmp_path):
    _cairo()
    fam = _cjk_or_skip()
    from tierctl.render import dashboard

    d = gather(db)
    figs = dashboard.figures(d)
    paths, warnings = dashboard.render_pngs(figs[:1], tmp_path)
    assert warnings == [] and paths[0].stat().st_size > 1000 and fam


# -- command line -----------------------------------------------------------------------------------
def run(*args: str, env: dict | None = None) -> CliResult:
    return run_cli(*args, env={**(env or {}), "TIERCTL_DB": None})


def test_cli_json_equals_library_and_refuses_overwrite(db, tmp_path):
    args = ["report", "--db", str(db), "--date", DAY.isoformat(), "--out", str(tmp_path), "--now", NOW.isoformat()]
    p = run(*args, "--format", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["dashboard"] == gather(db)
    html = tmp_path / DAY.isoformat() / "dashboard.html"
    assert doc["html"] == str(html) and html.is_file()
    again = run(*args)
    assert again.returncode == 1 and "已存在" in again.stderr and "--force" in again.stderr
    forced = run(*args, "--force", "--lang", "en")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == str(html)
    assert '<html lang="en">' in html.read_text(encoding="utf-8")


def test_cli_png_writes_the_charts_beside_the_page(db, tmp_path):
    _cairo()
    p = run("report", "--db", str(db), "--date", DAY.isoformat(), "--out", str(tmp_path), "--png",
            "--now", NOW.isoformat())
    assert p.returncode == 0, p.stderr
    out = tmp_path / DAY.isoformat()
    assert sorted(x.name for x in out.iterdir()) == ["churn_roi.png", "dashboard.html", "rfm_migration.png",
                                                     "rfm_types.png", "trend.png", "wait.png"]
    assert len(p.stdout.split()) == 6


def test_cli_missing_database_and_bad_options(tmp_path):
    p = run("report", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path))
    assert p.returncode == 1 and "不存在" in p.stderr and "tierctl score" in p.stderr
    p = run("report", "--db", str(tmp_path / "none.db"), "--date", "2026-13-45")
    assert p.returncode == 2 and "--date" in p.stderr
    p = run("report", "--help")
    assert p.returncode == 0 and "--png" in p.stdout


# -- the workbooks of the weekly RFM and the churn report carry native Excel charts ----------------
def test_weekly_rfm_workbook_has_native_charts(tmp_path):
    import openpyxl

    from tierctl.io.ingest import read_export
    from tierctl.rfm import compute_rfm, load_rfm_model
    from tierctl.rfm.report import write_weekly

    rm = load_rfm_model("rfm")
    res = compute_rfm(read_export(VISITS, rm.columns).frame, rm, DAY)
    path = write_weekly(res, rm, tmp_path / "weekly.xlsx")
    wb = openpyxl.load_workbook(path)
    assert sum(len(ws._charts) for ws in wb.worksheets) >= 1


def test_churn_report_workbook_has_native_charts(tmp_path):
    import openpyxl

    from tierctl.churn import load_churn_model
    from tierctl.churn.report import seed_report
    from tierctl.churn.workbook import write_report_xlsx

    path = tmp_path / "churn.xlsx"
    write_report_xlsx(seed_report(load_churn_model("churn")), path)
    wb = openpyxl.load_workbook(path)
    assert sum(len(ws._charts) for ws in wb.worksheets) >= 1
