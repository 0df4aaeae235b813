"""Upkeep touches (低风险常规维护): drafted messages for the touches of
:func:`tierctl.churn.festivals.touches`, checked for taboo phrases."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.churn.model import ChurnModel
from tierctl.errors import RenderError

TOUCH_LABELS = {"birthday": "生日关怀", "festival": "节日问候", "mileage": "里程关怀", "quarterly_gift": "季度礼遇",
                "monthly_invitation": "活动邀请"}
TOUCH_LABELS_EN = {"birthday": "Birthday", "festival": "Festival", "mileage": "Mileage",
                   "quarterly_gift": "Quarterly gift", "monthly_invitation": "Monthly invitation"}
_NAME = "\x00客户称呼\x00"  # rendered once per message shape, then replaced per customer


@dataclass
class DraftedTouches:
    touches: pd.DataFrame  # date, customer_id, name, phone, kind, kind_label, detail, channel, message, taboo
    taboo: list[Any]
    templates: list[str]


def touch_template(kind: str, lang: str) -> str:
    return f"{lang}/touch_{kind}.txt.j2"


def draft_touches(tt: pd.DataFrame, customers: pd.DataFrame, model: ChurnModel, config: Any, *, lang: str = "zh",
                  templates: Path | None = None, allow_taboo: bool = False) -> DraftedTouches:
    """A drafted message for every upkeep touch (from :func:`tierctl.festivals.touches`),
    rendered from ``templates/<lang>/touch_<kind>.txt.j2`` and checked for taboo phrases.

    Each distinct message shape (kind, day, detail, mileage) renders once with a
    placeholder for the customer's name, which is filled in afterwards: a year of touches
    for 100,000 customers costs a few hundred renders, not millions.  A taboo phrase in a
    drafted message stops the run (RenderError naming template and phrase) unless
    ``allow_taboo``; the hits are returned either way.
    """
    from tierctl.render import ConfigView, make_environment, render_template
    from tierctl.render import figures as docs

    env = make_environment(lang, templates)
    phrases = docs.taboo_phrases(config)
    cust = customers.drop_duplicates("customer_id")
    cust.index = cust["customer_id"].astype(str).to_numpy()
    ids = tt["customer_id"].astype(str)
    names = ids.map(cust["name"]) if "name" in cust else pd.Series([None] * len(tt), index=tt.index)
    phones = ids.map(cust["phone"]) if "phone" in cust else pd.Series([None] * len(tt), index=tt.index)
    km = ids.map(cust["mileage_since_service"]) if "mileage_since_service" in cust else pd.Series(
        [np.nan] * len(tt), index=tt.index)
    names = names.astype(object).where(names.notna(), None)
    has_name = names.map(lambda v: isinstance(v, str) and v.strip() != "")
    km_int = pd.to_numeric(km, errors="coerce").where(tt["kind"] == "mileage")
    km_int = km_int.map(lambda v: None if pd.isna(v) else int(math.floor(v)))
    festivals = model.upkeep.festivals
    dates = pd.to_datetime(tt["date"]).dt.date

    def festival_of(detail: str, sent: dt.date) -> dict[str, Any] | None:
        # the touch is dated the day it is sent, lead_days before the festival itself
        for f in festivals:
            if detail.startswith(f.label):
                return {"key": f.key, "label": f.label, "calendar": f.calendar, "lead_days": f.lead_days,
                        "date": sent + dt.timedelta(days=f.lead_days)}
        return None

    shape = pd.DataFrame({"kind": tt["kind"].to_numpy(), "date": dates.to_numpy(), "detail": tt["detail"].to_numpy(),
                          "has_name": has_name.to_numpy(), "km": km_int.to_numpy(dtype=object)})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(shape.astype(object).fillna(-1)))
    centre = ConfigView(config, "centre")
    texts: list[str] = []
    hits: list[Any] = []
    used: set[str] = set()
    for kind, day, detail, named, k in uniques:
        name = touch_template(str(kind), lang)
        used.add(name)
        fest = festival_of(str(detail), day) if kind == "festival" else None
        lead = fest["lead_days"] if fest else (model.upkeep.birthday_lead_days if kind == "birthday" else 0)
        ctx = {"c": {"name": _NAME if named else None}, "centre": centre, "as_of": day,
               "touch": {"kind": kind, "date": day, "detail": detail, "km": None if k == -1 else k,
                         "festival": fest, "days_before": lead, "occasion_date": day + dt.timedelta(days=lead)}}
        text = render_template(env, name, ctx).strip()
        texts.append(text)
        hits += docs.find_taboo(text.replace(_NAME, ""), phrases, name)
    if hits and not allow_taboo:
        shown = "\n".join(f"  - {h.describe()}" for h in hits[:10])
        raise RenderError(f"起草的维护短信里有禁忌用语：\n{shown}",
                          hint="修改模板（tierctl templates list 查看位置）后重试；确需保留时加 --allow-taboo")
    bad = {i for i, t in enumerate(texts) if docs.find_taboo(t.replace(_NAME, ""), phrases)}
    msg_by_shape = np.array(texts, dtype=object)[codes] if len(texts) else np.array([], dtype=object)
    msg = pd.Series(msg_by_shape, index=tt.index, dtype=object)
    named_idx = has_name.to_numpy()
    if named_idx.any():
        nm = names[named_idx].astype(str).str.strip()
        msg[named_idx] = [m.replace(_NAME, n) for m, n in zip(msg[named_idx], nm, strict=True)]
    taboo = pd.Series([[h.phrase for h in docs.find_taboo(texts[c], phrases)] if c in bad else []
                       for c in codes], index=tt.index, dtype=object)
    labels = TOUCH_LABELS if lang == "zh" else TOUCH_LABELS_EN
    out = pd.DataFrame({
        "date": dates.to_numpy(dtype=object), "customer_id": ids.to_numpy(dtype=object),
        "name": names.to_numpy(dtype=object), "phone": phones.astype(object).where(phones.notna(), None).to_numpy(),
        "kind": tt["kind"].to_numpy(dtype=object), "kind_label": tt["kind"].map(labels).to_numpy(dtype=object),
        "detail": tt["detail"].to_numpy(dtype=object), "channel": "短信" if lang == "zh" else "SMS",
        "message": msg.to_numpy(dtype=object), "taboo": taboo.to_numpy(dtype=object),
    })
    return DraftedTouches(out, hits, sorted(used))


def touches_json(d: DraftedTouches, start: dt.date, days: int, source: Mapping[str, Any]) -> dict[str, Any]:
    recs = []
    t = d.touches
    for r in t.to_dict("records"):
        recs.append({**r, "date": r["date"].isoformat()})
    return {"from": start.isoformat(), "days": days, "to": (start + dt.timedelta(days=max(days, 1) - 1)).isoformat(),
            "source": dict(source), "count": len(recs), "touches": recs,
            "taboo": [{"template": h.file, "phrase": h.phrase, "line": h.text} for h in d.taboo]}


def touches_flat(d: DraftedTouches) -> pd.DataFrame:
    """The CSV shape of the drafted touches: dates as text, taboo phrases joined."""
    return d.touches.assign(date=[x.isoformat() for x in d.touches["date"]],
                            taboo=["、".join(x) for x in d.touches["taboo"]])
