"""The dashboard where managers look at it (issue 17): the width of a wide screen, one
tall PNG of the whole page for the group chat, estimates drawn as estimates.

The layout and PNG tests run a headless Chromium (like tests/test_report_browser.py):
without it they skip — except under CI (``CI`` set), where they fail."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from test_report import DAY, NOW, build_store

from tierctl.render import dashboard
from tierctl.store import Store

# one worker runs this file: its module fixtures are built once, not once per worker
pytestmark = pytest.mark.xdist_group("office_dashboard")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("office-dash") / "t.db")


def gather(db: Path, lang: str = "zh"):
    with Store.open(db, readonly=True) as store:
        return dashboard.gather(store, DAY, NOW, lang=lang)


# -- estimates look like estimates ---------------------------------------------------------------
def _roi_figure(data):
    return next(f for f in dashboard.figures(data) if f.key == "churn_roi")


@pytest.mark.parametrize(("lang", "word", "total"), [("zh", "预计", "预计合计"), ("en", "est.", "Estimated total")])
def test_projected_roi_is_hatched_and_labelled_as_an_estimate(db, lang, word, total):
    data = gather(db, lang)
    assert data["churn"]["roi_basis"] == "projected"  # no intervention logged in this store
    fig = _roi_figure(data)
    bars = re.findall(r"<rect [^>]*><title>", fig.svg)
    assert bars and all('class="estimate"' in b and 'fill="#fff"' in b for b in bars)  # outlined, not solid
    assert fig.svg.count('class="hatch"') == len(bars) + 1  # each bar hatched, and the legend's sample
    labels = re.findall(r'fill="#[0-9a-f]+">([^<]*%)</text>', fig.svg)
    labels = [t for t in labels if t != "ROI %"]  # the axis label
    assert len(labels) == len(bars) and all(t.startswith(word) for t in labels), labels
    assert ("预计" if lang == "zh" else "estimate") in fig.title
    assert 'class="estimate-note"' in fig.svg
    html = dashboard.render_html(data, dashboard.figures(data))
    assert total in html
    assert "合计：干预" not in html and "Total: " not in html  # never the plain "facts" sentence


def test_actual_roi_is_drawn_solid(db):
    data = gather(db)
    data["churn"]["roi_basis"] = "actual"
    fig = _roi_figure(data)
    assert "hatch" not in fig.svg and 'class="estimate"' not in fig.svg and "预计" not in fig.svg
    html = dashboard.render_html(data, dashboard.figures(data))
    assert "合计：干预" in html and "预计合计" not in html


def test_estimate_hatch_survives_the_png(db, tmp_path):
    """The PNG of the ROI chart shows the hatch: bar pixels alternate colour and white."""
    from test_report import _cairo, _cjk_or_skip, _pixels

    _cairo()
    _cjk_or_skip()
    data = gather(db)
    paths, _ = dashboard.render_pngs([_roi_figure(data)], tmp_path)
    hatched = _pixels(paths[0])
    data["churn"]["roi_basis"] = "actual"
    paths2, _ = dashboard.render_pngs([_roi_figure(data)], tmp_path / "solid")
    solid = _pixels(paths2[0])
    white = float((hatched > 250).mean())
    white2 = float((solid > 250).mean())
    assert white > white2 + 0.02  # the hatched bars let white through


# -- the browser -----------------------------------------------------------------------------
def browser() -> str:
    from test_report_browser import chromium

    return chromium()


PROBE = """<script>
(function () {
  var secs = Array.from(document.querySelectorAll('main.sections > section')).map(function (s) {
    var r = s.getBoundingClientRect(); return {id: s.id, left: r.left, top: r.top, width: r.width}; });
  var pre = document.createElement('pre'); pre.id = '__probe';
  pre.textContent = JSON.stringify({body: document.body.getBoundingClientRect().width, sections: secs,
    scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
    font: parseFloat(getComputedStyle(document.body).fontSize)});
  document.body.appendChild(pre);
})();
</script>"""


def layout(page: Path, tmp: Path, width: int) -> dict:
    html = page.read_text(encoding="utf-8").replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
    probe = tmp / f"probe-{width}.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    from test_report_browser import CHROMIUM_FLAGS

    prof = tmp / f"profile-{width}"
    prof.mkdir()
    p = subprocess.run([browser(), *CHROMIUM_FLAGS, f"--user-data-dir={prof}", "--dump-dom", "--virtual-time-budget=3000",
                        f"--window-size={width},1200", probe.resolve().as_uri()], capture_output=True, text=True,
                       timeout=120)
    m = re.search(r'<pre id="__probe">(.*?)</pre>', p.stdout, re.S)
    assert m, p.stderr[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def page(db, tmp_path_factory) -> Path:
    return dashboard.write_report(gather(db), tmp_path_factory.mktemp("page")).html


def test_a_wide_screen_gets_the_width_and_two_columns(page, tmp_path):
    wide = layout(page, tmp_path, 1920)
    assert wide["body"] >= 1500, wide["body"]
    lefts = {round(s["left"]) for s in wide["sections"]}
    assert len(lefts) == 2  # sections side by side
    rows = {}
    for s in wide["sections"]:
        rows.setdefault(round(s["top"]), []).append(s["id"])
    assert any(len(v) == 2 for v in rows.values())
    changes = next(s for s in wide["sections"] if s["id"] == "changes")
    assert changes["width"] > wide["body"] * 0.8  # the wide table spans both columns
    narrow = layout(page, tmp_path, 900)
    assert len({round(s["left"]) for s in narrow["sections"]}) == 1 and narrow["body"] <= 800


def test_phone_width_has_nothing_cut_off_on_the_right(page, tmp_path):
    phone = layout(page, tmp_path, 432)
    assert phone["scroll"] <= phone["inner"], phone  # tables wrap instead of overflowing
    assert phone["font"] >= 14


def test_long_png_is_one_tall_phone_picture_of_the_whole_page(db, tmp_path):
    browser()
    from PIL import Image

    files = dashboard.write_report(gather(db), tmp_path, long_png=True)
    long = tmp_path / DAY.isoformat() / dashboard.LONG_PNG_NAME
    assert long in files.pngs and long.exists()
    with Image.open(long) as im:
        img = im.convert("L")
    assert img.width == 1080  # 432 CSS pixels at 2.5×: 14 px text is 35 pixels tall
    assert img.height > 4 * img.width
    # the whole page: the footer (last text) is in the picture, and below it only a margin
    from tierctl.render.dashboard_png import _content_bottom

    bottom = _content_bottom(img.convert("RGB"))
    assert img.height - 80 <= bottom < img.height
    top_band = img.crop((0, 0, img.width, 200))
    assert top_band.getextrema()[0] < 100  # the title is drawn


def test_long_png_without_a_browser_says_what_to_do_and_writes_nothing(db, tmp_path):
    p = run_cli("report", "--db", db, "--date", DAY.isoformat(), "--out", tmp_path / "out", "--long-png",
                env={"TIERCTL_BROWSER": str(tmp_path / "no-such-browser")}, cwd=tmp_path)
    assert p.returncode != 0
    assert "Chrome" in p.stderr and "Edge" in p.stderr and "TIERCTL_BROWSER" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out" / DAY.isoformat() / "dashboard.html").exists()
