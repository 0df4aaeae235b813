"""From a scored shortage list (job A) to the frame :func:`tierctl.allocate.allocate` reads."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tierctl.errors import UsageError

if TYPE_CHECKING:
    from tierctl.shortage import ShortageResult


def frame_from_scores(result: ShortageResult) -> pd.DataFrame:
    """The frame :func:`allocate` reads, built from a scored shortage list (job A).

    ``customer_id`` is the shortage result's customer key (the id, or name + phone when
    the export has no id), so every plan row joins back to exactly one scored row.

    Who is a ride-hailing driver (the income subsidy's condition) is decided by the
    scoring model's own rule, not by a second keyword list: the usage text contains a
    keyword of the ``keywords`` rule(s) on ``usage`` that give the I dimension its top
    score (in ``rite``: 网约车/出租车/营运/滴滴/… → I = 10), with the model's negations.
    Editing that list in the model changes both the score and the subsidy.  A customer
    whose I is the top score although no usage keyword fired (the export carried the
    I score itself) counts as well: on the RITE scale, I = 10 *is* "ride-hailing / taxi
    driver".  ``ride_hailing_reason`` says which of the two applied.

    Raises :class:`UsageError` when the scoring model's I is not "impact of the car off
    the road" (``rite100``'s I is *influence*): need-a-car and ride-hailing rest on it.
    """
    from tierctl.models.rules import Keywords
    from tierctl.textmatch import keyword_codes

    model = result.model
    c = result.customers
    n = len(c)
    dim = next((d for d in model.dimensions if d.key == "I"), None)
    usage_rules = [r for r in (dim.rules if dim is not None else [])
                   if isinstance(r, Keywords) and r.field == "usage"]
    if dim is None or not usage_rules:
        what = f"是「{dim.label}」" if dim is not None else "不存在"
        raise UsageError(
            f"评分模型「{model.name}」的 I 维度{what}，不是按用车场景打的影响程度："
            "无法判断谁需要代步车、谁是网约车司机",
            hint="用 rite 模型打分后再分配（tierctl allocate 文件 --score-model rite）")
    usage = (c["usage"].astype("string") if "usage" in c.columns
             else pd.Series(pd.array([None] * n, dtype="string"), index=c.index))
    impact = pd.to_numeric(c["I"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ride = np.zeros(n, dtype=bool)
    any_usage = np.zeros(n, dtype=bool)
    why = np.full(n, "", dtype=object)
    for rule in usage_rules:
        codes = keyword_codes(usage, rule.keywords, model.negations if rule.negate else ())
        fired = codes >= 0
        any_usage |= fired
        if float(rule.score) != float(dim.hi):
            continue
        texts = np.asarray([_rule_reason(rule.reason, k) for k in rule.keywords], dtype=np.object_)
        new = fired & ~ride
        why[new] = texts[codes[new]]
        ride |= fired
    given = ~ride & ~any_usage & (impact == float(dim.hi))
    why[given] = f"I={dim.hi}（导出表给出的{dim.label}满分，即营运车辆），用车场景未写明"
    ride |= given
    ids = c["key"] if "key" in c.columns else c["customer_id"]
    return pd.DataFrame({
        "customer_id": ids.astype("string").to_numpy(),
        "name": (c["name"].astype("string") if "name" in c.columns
                 else pd.Series(pd.array([None] * n, dtype="string"))).to_numpy(),
        "tier": c["tier"].astype("string").to_numpy(),
        # exact: the stored integer total, not a float that was divided somewhere
        "score": [float(Decimal(int(v)) / Decimal(model.scale)) for v in c["total_scaled"].tolist()]
        if "total_scaled" in c.columns else pd.to_numeric(c["score"]).to_numpy(),
        "I": impact,
        "ride_hailing": ride,
        "ride_hailing_reason": why,
        "wait_days": c["wait_days"].to_numpy() if "wait_days" in c.columns else np.zeros(n, dtype=np.int64),
        "_row": c["_row"].to_numpy() if "_row" in c.columns else np.arange(2, n + 2),
    })


def _rule_reason(template: str, keyword: str) -> str:
    try:
        return template.format(keyword=keyword, field="usage", value=keyword, min="")
    except (KeyError, IndexError, ValueError):
        return f"用车场景含「{keyword}」"

