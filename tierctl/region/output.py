"""The region report as HTML (templates/zh|en/region.html.j2) and as a workbook (one
sheet per table), both written atomically; the texts come from ``[labels.<lang>]`` in
``tierctl/data/region.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tierctl.errors import ConfigError
from tierctl.models.loader import load_toml
from tierctl.region.report import PARAMS


def labels(lang: str, path: Path | None = None) -> dict[str, str]:
    p = path or PARAMS
    t = (load_toml(p).get("labels") or {}).get(lang)
    if not isinstance(t, dict):
        raise ConfigError(f"缺少语言 {lang} 的文字", path=p, key=f"labels.{lang}")
    return {"lang": lang, **{str(k): str(v) for k, v in t.items()}}


def render_html(data: dict[str, Any], lang: str) -> str:
    from tierctl.render import make_environment

    env = make_environment(lang).overlay(autoescape=True)
    return env.get_template(f"{lang}/region.html.j2").render(r=data, t=labels(lang))


def tables(data: dict[str, Any], lang: str) -> dict[str, pd.DataFrame]:
    """The report's tables with headers in ``lang`` (the workbook's sheets)."""
    t = labels(lang)
    centres = pd.DataFrame([{
        t["centre"]: c["centre"], t["data_as_of"]: c["as_of"], t["crisis"]: c["crisis_label"],
        **{f"{t['tiers']} {k}": v for k, v in c["counts"].items()},
        t["trend"]: " → ".join(str(d["counts"].get("P0", 0)) for d in c["trend"]),
        **{f"{t['rfm']} {k}": v for k, v in c["rfm_shares"].items()},
        t["roi"]: c["churn_roi"]} for c in data["centres"]])
    alerts = pd.DataFrame([{t["centre"]: a["centre"], t["kind"]: a["kind"], t["recipient"]: a["recipient"],
                            t["open"]: a["open"], t["overdue"]: a["overdue"]} for a in data["alerts"]])
    worst = pd.DataFrame([{t["centre"]: w["centre"], t["customer"]: w["name"] or w["customer_id"],
                           t["tier"]: w["label"], t["part"]: w["part"], t["wait"]: w["wait_days"]}
                          for w in data["worst"]])
    transfers = pd.DataFrame([{t["part"]: x["part"], t["waiting_centre"]: x["waiting_centre"],
                               t["customers"]: x["customers"], t["wait"]: x["longest_wait"],
                               t["from_centre"]: x["from_centre"], t["status"]: t[x["status"]]}
                              for x in data["transfers"]])
    return {t["centres"]: centres, t["alerts"][:31]: alerts, t["worst"][:31]: worst, t["transfers"][:31]: transfers}


def write_html(data: dict[str, Any], path: Path, lang: str, *, force: bool = False) -> Path:
    from tierctl.io.writers import write_text

    return write_text(path, render_html(data, lang), force=force)


def write_workbook(data: dict[str, Any], path: Path, lang: str, *, force: bool = False) -> Path:
    from tierctl.io.writers import atomic_path, neutralise_frame

    with atomic_path(path, force=force) as tmp, pd.ExcelWriter(tmp, engine="xlsxwriter") as xw:
        for name, frame in tables(data, lang).items():
            neutralise_frame(frame).to_excel(xw, sheet_name=name[:31], index=False)
    return path
