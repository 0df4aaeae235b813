"""The dashboard in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``)
opens the page from disk with no network.  It must log nothing to the console (no
script error, no blocked load, no CSP violation), every chart must be drawn with a
non-zero size and its title, the page must screenshot to something that is not blank,
and it must print to A4.

Without Chromium the tests skip — except under CI (``CI`` set), where they fail:
``.ci/run`` installs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

# one worker runs this file: its module fixtures are built once, not once per worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report_browser")]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
EXPECTED = {"zh": {"fig-trend": "P0–P3 人数趋势", "fig-wait": "等待天数分布", "fig-rfm": "RFM 客户类型分布",
                   "fig-migration": "RFM 客户迁移", "fig-roi": "流失干预 ROI（预计，按风险等级）"},  # projected: no log
            "en": {"fig-trend": "P0–P3 customers over time", "fig-wait": "Days waited",
                   "fig-rfm": "RFM customer types", "fig-migration": "RFM migration",
                   "fig-roi": "Churn intervention ROI by level (estimate)"}}


def chromium() -> str:
    for cand in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "",
                 shutil.which("google-chrome") or ""):
        if cand and os.access(cand, os.X_OK):
            return cand
    reason = "Chromium is not installed (apt-get install chromium fonts-wqy-microhei)"
    if os.environ.get("CI"):
        pytest.fail(reason + " — .ci/run should have installed it")
    pytest.skip(reason)


def browse(page: Path, tmp: Path, *extra: str, timeout: int = 120) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    profile.mkdir()
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p


def console_lines(stderr: str) -> list[str]:
    """What the page wrote to the console (Chromium logs it as ``…:CONSOLE…``)."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    from test_report import DAY, NOW, build_store

    from tierctl.render import dashboard
    from tierctl.store import Store

    tmp = tmp_path_factory.mktemp("browser")
    db = build_store(tmp / "t.db")
    out = {}
    for lang in ("zh", "en"):
        with Store.open(db, readonly=True) as store:
            data = dashboard.gather(store, DAY, NOW, lang=lang)
        out[lang] = dashboard.write_report(data, tmp / lang).html
    return out


PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push('error: ' + (e.message || (e.target && (e.target.src || e.target.href)) || 'unknown'));
}, true);
window.addEventListener('securitypolicyviolation', function (e) { window.__errors.push('csp: ' + e.violatedDirective); });
var __ce = console.error; console.error = function () { window.__errors.push('console: ' + Array.from(arguments).join(' ')); __ce.apply(console, arguments); };
</script>"""
PROBE_BODY = """<script>
(function () {
  var charts = Array.from(document.querySelectorAll('figure.chart-figure svg')).map(function (s) {
    var r = s.getBoundingClientRect();
    var t = s.querySelector('title');
    return {id: s.id, width: r.width, height: r.height, title: t ? t.textContent : null,
            role: s.getAttribute('role'), text: s.querySelector('.chart-title').getBBox().width};
  });
  var cap = Array.from(document.querySelectorAll('figure.chart-figure')).map(function (f) {
    return {caption: !!f.querySelector('figcaption'), table: !!f.querySelector('table')}; });
  var pre = document.createElement('pre');
  pre.id = '__probe';
  pre.textContent = JSON.stringify({errors: window.__errors, charts: charts, figures: cap,
                                    font: getComputedStyle(document.body).fontFamily,
                                    scripts: document.scripts.length});
  document.body.appendChild(pre);
})();
</script>"""


def instrument(page: Path, dest: Path) -> Path:
    """A copy of the page with a probe: errors recorded from the first moment, then the
    charts' measured sizes written into the DOM (read back with --dump-dom).  The
    page's CSP allows no script at all, so the copy's CSP admits the inline probe."""
    html = page.read_text(encoding="utf-8")
    assert "default-src 'none'" in html
    html = html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
    html = html.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_BODY + "</body>", 1)
    dest.write_text(html, encoding="utf-8")
    return dest


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_without_console_errors_and_charts_have_size(pages, tmp_path, lang):
    page = pages[lang]
    plain = browse(page, tmp_path, "--dump-dom", "--virtual-time-budget=3000")
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "</html>" in plain.stdout
    assert console_lines(plain.stderr) == []

    probed = browse(instrument(page, tmp_path / "probe.html"), tmp_path, "--dump-dom", "--virtual-time-budget=3000",
                    "--window-size=1000,3000")
    m = re.search(r'<pre id="__probe">(.*?)</pre>', probed.stdout, re.S)
    assert m, probed.stdout[-2000:]
    probe = json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&amp;", "&"))
    assert probe["errors"] == []
    assert [ln for ln in console_lines(probed.stderr) if "__probe" not in ln] == []
    assert probe["scripts"] == 2  # only the probe's own: the page has none
    titles = {c["id"]: c["title"] for c in probe["charts"]}
    assert titles == EXPECTED[lang]
    for c in probe["charts"]:
        assert c["role"] == "img"
        assert c["width"] > 300 and c["height"] > 100, c
        assert c["text"] > 20, c  # the title was laid out with real width
    assert probe["figures"] and all(f["caption"] and f["table"] for f in probe["figures"])
    assert "WenQuanYi Micro Hei" in probe["font"] and "Microsoft YaHei" in probe["font"]


def test_the_console_check_catches_a_blocked_load(pages, tmp_path):
    """Negative control: the same page with one external image logs a CSP violation."""
    bad = tmp_path / "bad.html"
    bad.write_text(pages["zh"].read_text(encoding="utf-8").replace(
        "</body>", '<img src="http://127.0.0.1:9/x.png" alt=""></body>', 1), encoding="utf-8")
    p = browse(bad, tmp_path, "--dump-dom", "--virtual-time-budget=3000")
    assert any("Content Security Policy" in ln for ln in console_lines(p.stderr))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_screenshot_is_not_blank(pages, tmp_path, lang):
    from PIL import Image

    shot = tmp_path / f"dashboard_{lang}.png"
    p = browse(pages[lang], tmp_path, f"--screenshot={shot}", "--window-size=800,2400")
    assert p.returncode == 0 and shot.is_file(), p.stderr[-2000:]
    px = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert px.shape[0] == 2400 and px.shape[1] == 800
    gray = px.mean(axis=2)
    assert gray.std() > 20 and (gray < 128).mean() > 0.01
    # the crisis banner and the tier colours are there (red of P0 / level 4)
    red = (px[..., 0] > 180) & (px[..., 1] < 90) & (px[..., 2] < 90)
    assert red.sum() > 500


def test_prints_to_a4(pages, tmp_path):
    pdf = tmp_path / "dashboard.pdf"
    p = browse(pages["zh"], tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert p.returncode == 0 and pdf.is_file(), p.stderr[-2000:]
    data = pdf.read_bytes()
    sizes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert sizes, "no page in the PDF"
    for w, h in sizes:
        assert abs(float(w) - 595.28) < 2 and abs(float(h) - 841.89) < 2  # A4 in points
    assert len(sizes) >= 2
