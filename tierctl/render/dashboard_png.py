"""The dashboard as pictures (``tierctl report --png`` / ``--long-png``).

* :func:`render_pngs`: each chart as its own PNG (cairosvg), for slides;
* :func:`render_long_png`: the whole page as ONE tall PNG at phone width, for the group
  chat: the page is laid out by a headless Chrome/Edge/Chromium at a phone's width (the
  page's own phone layout: one column, wrapping tables), captured at 2.5× (1080 pixels
  wide, text ≥ 35 pixels tall) and cut below the last content.

No command-line code: the ``report`` command calls these.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from tierctl.errors import RenderError
from tierctl.render import charts

LONG_PNG_NAME = "dashboard_long.png"
PHONE_CSS_WIDTH = 432  # a large phone's width in CSS pixels
PHONE_SCALE = 2.5  # device pixels per CSS pixel: 432 × 2.5 = 1080 pixels wide
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "msedge",
                 "microsoft-edge")
WINDOWS_BROWSERS = (r"Google\Chrome\Application\chrome.exe", r"Microsoft\Edge\Application\msedge.exe")
BROWSER_HINT = ("长图需要 Chrome、Edge 或 Chromium 浏览器：\n"
                "  Windows：已装 Edge 即可（系统自带）；找不到时设置环境变量 TIERCTL_BROWSER=浏览器 exe 的完整路径；\n"
                "  macOS：安装 Google Chrome；Debian/Ubuntu：sudo apt-get install chromium。\n"
                "  不装也行：dashboard.html 可以直接用手机浏览器打开，或在电脑浏览器里截图。")


def cjk_font() -> str | None:
    """An installed font family that has Chinese glyphs (preferring the page's stack),
    or None.  cairosvg takes the first family of ``font-family`` only and does not
    fall back per glyph, so the PNGs name one family that exists."""
    if not shutil.which("fc-list"):
        return None
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    fams = [f.strip() for line in out.splitlines() for f in line.split(",") if f.strip()]
    for want in ("Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Source Han Sans SC"):
        if want in fams:
            return want
    return next((f for f in fams if "Mono" not in f), fams[0] if fams else None)


CAIRO_HINT = ("PNG 需要 Python 包 cairosvg（pip install cairosvg）和系统的 cairo 库：\n"
              "  Windows：安装 GTK3 运行库（GTK-for-Windows-Runtime-Environment-Installer，含 libcairo-2.dll），"
              "安装时勾选「加入 PATH」，装好后关掉并重新打开命令行窗口再运行；\n"
              "  macOS：brew install cairo；Debian/Ubuntu：sudo apt-get install libcairo2。\n"
              "  不装也行：去掉 --png，dashboard.html 可以直接用浏览器打开、打印或截图。")


def _cairosvg() -> Any:
    try:
        import cairosvg
    except (ImportError, OSError) as exc:  # OSError: the system cairo library is missing
        raise RenderError(f"无法生成 PNG：{exc}", hint=CAIRO_HINT) from exc
    return cairosvg


def render_pngs(figs: list[Any], out_dir: Path, *, force: bool = False, scale: float = 2.0) -> tuple[list[Path], list[str]]:
    """Each chart as ``<key>.png`` (white background, ``scale`` × its size)."""
    from tierctl.io.writers import atomic_path

    cairosvg = _cairosvg()
    warnings = []
    family = cjk_font()
    if family is None:
        warnings.append("系统中没有中文字体，PNG 中的中文会显示为方框；请安装 fonts-wqy-microhei 或 fonts-noto-cjk")
        family = "sans-serif"
    attr = f'font-family="{escape(charts.FONT_STACK, quote=True)}"'
    paths = []
    for f in figs:
        svg = f.svg.replace(attr, f'font-family="{escape(family, quote=True)}"', 1)
        path = out_dir / f"{f.key}.png"
        with atomic_path(path, force=force) as tmp:
            cairosvg.svg2png(bytestring=svg.encode("utf-8"), write_to=str(tmp), scale=scale,
                             background_color="white")
        paths.append(path)
    return paths, warnings


def find_browser() -> str | None:
    """A Chrome-like browser that can run headless: ``TIERCTL_BROWSER`` first, then the
    usual names on PATH, then Chrome/Edge's install folders on Windows."""
    env = os.environ.get("TIERCTL_BROWSER")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if sys.platform == "win32":
        for root in (os.environ.get("PROGRAMFILES"), os.environ.get("PROGRAMFILES(X86)"), os.environ.get("LOCALAPPDATA")):
            for rel in WINDOWS_BROWSERS:
                if root and (Path(root) / rel).exists():
                    return str(Path(root) / rel)
    return None


def _screenshot(browser: str, html: Path, shot: Path, height: int, profile: Path) -> None:
    cmd = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--force-device-scale-factor={PHONE_SCALE:g}",
           f"--window-size={PHONE_CSS_WIDTH},{height}", "--virtual-time-budget=3000", f"--screenshot={shot}",
           html.resolve().as_uri()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RenderError(f"无法启动浏览器 {browser}：{exc}", hint=BROWSER_HINT) from exc
    if not shot.exists():
        tail = (p.stderr or "").strip().splitlines()[-3:]
        raise RenderError(f"浏览器 {browser} 没有生成截图（退出码 {p.returncode}）：{' / '.join(tail)}",
                          hint=BROWSER_HINT)


def _content_bottom(img: Any) -> int:
    """The last pixel row that is not plain white (0 when the picture is blank)."""
    from PIL import ImageChops, ImageOps

    gray = ImageOps.grayscale(img)
    inverted = ImageChops.invert(gray).point(lambda v: 255 if v > 8 else 0)
    box = inverted.getbbox()
    return box[3] if box else 0


def render_long_png(html: Path, out: Path, *, force: bool = False, start_height: int = 6000,
                    max_height: int = 40000) -> Path:
    """The whole page ``html`` as one tall PNG at phone width (see the module doc),
    written atomically to ``out``."""
    from PIL import Image

    from tierctl.io.writers import atomic_path, check_writable

    check_writable(out, force)
    browser = find_browser()
    if browser is None:
        raise RenderError("无法生成长图：没有找到 Chrome、Edge 或 Chromium", hint=BROWSER_HINT)
    height = start_height
    with tempfile.TemporaryDirectory(prefix="tierctl-shot-") as tmp:
        while True:
            shot = Path(tmp) / f"shot-{height}.png"
            _screenshot(browser, html, shot, height, Path(tmp) / "profile")
            with Image.open(shot) as im:
                img = im.convert("RGB")
            bottom = _content_bottom(img)
            # content reaching the window's bottom edge: the page is longer, take a taller window
            if bottom < img.height - int(40 * PHONE_SCALE) or height >= max_height:
                break
            height = min(height * 2, max_height)
        if bottom == 0:
            raise RenderError("浏览器截到的是空白页", hint=BROWSER_HINT)
        cut = img.crop((0, 0, img.width, min(img.height, bottom + int(16 * PHONE_SCALE))))
        with atomic_path(out, force=force) as part:
            # zlib's default level: optimize=True (level 9 and a search) took 2.5 s of CPU for a
            # 1080 × 16,500 picture to make it 2.6 % smaller (1,970 KB instead of 2,022 KB)
            cut.save(part, format="PNG")
    return out


__all__ = ["BROWSER_HINT", "CAIRO_HINT", "LONG_PNG_NAME", "cjk_font", "find_browser", "render_long_png",
           "render_pngs"]
