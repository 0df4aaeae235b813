"""Plans of a churn run: churn reasons (the 流失原因 column, else keywords in 备注),
customer types, and per distinct (level, owner by value, type, reasons) the plan text,
its basis and the final owner — every plan text said to the owner it ends with."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tierctl.churn.signals import _Ctx
from tierctl.kernels.bool_rows import mask_lists, row_codes
from tierctl.textmatch import keyword_hits

if TYPE_CHECKING:
    from tierctl.churn.model import ChurnModel


def _match_labels(text: pd.Series, options: Sequence[tuple[str, ...]]) -> np.ndarray:
    """Boolean matrix rows × options: does the cell contain any of the option's labels."""
    s = text.fillna("").str.lower()
    cols = []
    for labels in options:
        if not labels:
            cols.append(np.zeros(len(s), dtype=bool))
            continue
        pat = "|".join(re.escape(x.lower()) for x in sorted(labels, key=len, reverse=True))
        cols.append(s.str.contains(pat, regex=True).fillna(False).to_numpy(dtype=bool))
    return np.column_stack(cols) if cols else np.zeros((len(s), 0), dtype=bool)



def _reason_masks(ctx: _Ctx, model: ChurnModel) -> tuple[np.ndarray, np.ndarray]:
    """Churn reasons per row: from the 流失原因 column, else inferred from 备注.

    Returns (bool matrix rows × reasons, source per row: "column" / "notes" / "").
    """
    n = ctx.n
    r = len(model.reasons)
    mask = np.zeros((n, r), dtype=bool)
    source = np.full(n, "", dtype=object)
    if r == 0:
        return mask, source
    if "churn_reason" in ctx.texts:
        mask = _match_labels(ctx.texts["churn_reason"], [x.labels for x in model.reasons])
        source[mask.any(axis=1)] = "column"
    if "notes" in ctx.texts:
        todo = np.asarray(~mask.any(axis=1), dtype=bool)
        if todo.any():
            notes = ctx.texts["notes"].reset_index(drop=True)
            inferred: np.ndarray = np.column_stack([
                keyword_hits(notes, x.keywords, model.negations).notna().to_numpy() if x.keywords
                else np.zeros(n, dtype=bool) for x in model.reasons])
            inferred &= todo[:, None]
            mask |= inferred
            source[inferred.any(axis=1)] = "notes"
    return mask, source


def _type_index(ctx: _Ctx, model: ChurnModel) -> np.ndarray:
    """Index of the first matching customer type, or len(types) when unknown."""
    t = len(model.customer_types)
    if t == 0 or "customer_type" not in ctx.texts:
        return np.full(ctx.n, t, dtype=np.int64)
    m = _match_labels(ctx.texts["customer_type"], [x.labels for x in model.customer_types])
    return np.where(m.any(axis=1), m.argmax(axis=1), t).astype(np.int64)


def _mask_lists(mask: np.ndarray, keys: np.ndarray) -> pd.Series:
    return mask_lists(mask, keys)


def _plans(model: ChurnModel, li: np.ndarray, value_rank: np.ndarray, type_idx: np.ndarray,
           reason_mask: np.ndarray, reason_source: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plan text, its basis and the final owner rank per row; built once per distinct
    (level, owner by value, type, reasons).

    The owner by value (``value_rank``) is raised to a reason's ``owner`` when that
    reason's plan is part of the plan; the level's action and the reason plans are then
    said to that final owner (``{owner}``, or the level's ``actions.<owner>``).
    """
    nr = reason_mask.shape[1]
    rcode = row_codes(reason_mask)
    src = np.select([reason_source == "column", reason_source == "notes"], [1, 2], 0)
    combo = np.column_stack([li, value_rank, type_idx, rcode, src])
    uniq, inv = np.unique(combo, axis=0, return_inverse=True)
    by_rank = sorted(model.owners, key=lambda k: model.owners[k][0])
    plans, bases, ranks = [], [], []
    src_label = {1: "导出表", 2: "备注推断"}
    for lvl_i, v_rank, t_i, code, s in uniq.tolist():
        lv = model.levels[lvl_i]
        rs = [model.reasons[j] for j in range(nr) if code >> j & 1]
        ct = model.customer_types[t_i] if t_i < len(model.customer_types) else None
        basis = []
        if rs:
            basis.append(f"流失原因：{'、'.join(x.label for x in rs)}（{src_label.get(s, '')}）")
        if ct:
            basis.append(f"客户类型：{ct.label}")
        if lvl_i == 0:
            kind = "upkeep"  # the lowest level is routine upkeep, no win-back plan
        elif lv.key == "mid" and ct is not None:
            kind = "incentive"
        elif rs:
            kind = "reasons"
        else:
            kind = "unknown"
        rank = v_rank
        if kind == "reasons":
            raisers = [x for x in rs if x.owner is not None and model.owners[x.owner][0] > rank]
            if raisers:
                rank = max(model.owners[x.owner][0] for x in raisers if x.owner)
                basis.append(f"负责人按流失原因（{'、'.join(x.label for x in raisers)}）上调为"
                             f"{model.owners[by_rank[rank]][1]}")
        key = by_rank[rank]
        label = model.owners[key][1]
        if kind == "incentive":
            assert ct is not None
            detail = f"激励（{ct.label}）：{ct.incentive}（约{ct.cost}元）"
        elif kind == "reasons":
            detail = "；".join(f"{x.label}→{x.plan.format(owner=label)}" for x in rs)
        elif kind == "unknown":
            detail = model.unknown_plan.format(owner=label)
        else:
            detail = ""
        action = lv.action_for(key, label)
        plans.append(action + ("；" + detail if detail else ""))
        bases.append("；".join(basis))
        ranks.append(rank)
    idx = inv.ravel()
    return (np.array(plans, dtype=object)[idx], np.array(bases, dtype=object)[idx],
            np.array(ranks, dtype=np.int64)[idx])


def _unknown_label_warnings(ctx: _Ctx, model: ChurnModel, rows: np.ndarray,
                            headers: Mapping[str, str]) -> list[str]:
    """Values of 流失原因 / 客户类型 that match nothing: the plan falls back, say so."""
    out = []
    for col, opts in (("churn_reason", model.reasons), ("customer_type", model.customer_types)):
        if col not in ctx.texts or not opts:
            continue
        s = ctx.texts[col].reset_index(drop=True)
        m = _match_labels(s, [x.labels for x in opts]).any(axis=1)
        unknown = ~m & s.notna().to_numpy() & (s.str.strip() != "").fillna(False).to_numpy(dtype=bool)
        if unknown.any():
            shown = "、".join(f"第{r}行「{v}」" for r, v in zip(rows[unknown][:10], s[unknown].tolist()[:10], strict=False))
            more = "" if unknown.sum() <= 10 else f" 等 {int(unknown.sum())} 处"
            out.append(f"「{headers[col]}」有无法识别的值：{shown}{more}；"
                       f"可用：{'、'.join(x.label for x in opts)}")
    return out


