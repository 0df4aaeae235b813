"""Scoring a shortage export (SPEC A2–A5), pure.

``score(frame, model, as_of, now)`` takes the typed export (see :mod:`tierctl.io.ingest`),
derives or validates the four dimension scores, computes the total exactly, assigns the
model tier, applies the escalation rules (which only ever raise a tier), and attaches the
tier policy (owner, respond-by, cadence, channel, compensation).  It does no I/O and
reads no clock: ``as_of`` and ``now`` are parameters, so yesterday's file re-scores to
exactly yesterday's result.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import InputError, Problem
from tierctl.kernels.codes import cat, join_codes, pair_codes
from tierctl.kernels.keyjoin import key_positions_both
from tierctl.kernels.packed_sort import urgency_order
from tierctl.models.rules import Context, num
from tierctl.shortage.escalation import escalate_holding
from tierctl.shortage.model import Dimension, ShortageModel
from tierctl.shortage.report import ShortageResult
from tierctl.textmatch import keyword_codes


def customer_key(frame: pd.DataFrame) -> pd.Series:
    """Who a row is, across days: the customer id, else the name (+ phone)."""
    n = len(frame)
    if "customer_id" in frame and not frame["customer_id"].isna().any():
        return frame["customer_id"].astype("str")
    key = frame["customer_id"].astype(object) if "customer_id" in frame else pd.Series([None] * n, dtype=object,
                                                                                        index=frame.index)
    missing = key.isna().to_numpy()
    if "name" in frame and missing.any():
        sub = frame.loc[missing]
        name_key = "姓名:" + sub["name"].astype(str)
        if "phone" in sub:
            name_key = name_key + "/" + sub["phone"].fillna("").astype(str)
        name_key = name_key.where(sub["name"].notna(), None)
        key = key.copy()
        key[missing] = name_key.to_numpy(dtype=object)
    return key.astype("str")


def wait_days(frame: pd.DataFrame, as_of: dt.date, headers: dict[str, str] | None = None,
              path: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """Days waited as of ``as_of``: from the wait-start date when there is one (so a
    re-score of an old file is exact), else the wait-days column.  Never negative."""
    n = len(frame)
    days = np.full(n, np.nan)
    warnings = []
    if "wait_days" in frame:
        days = frame["wait_days"].to_numpy(dtype=float, na_value=np.nan)
    if "wait_start" in frame:
        start = frame["wait_start"].to_numpy(dtype="datetime64[D]")
        has = ~np.isnat(start)
        delta = (np.datetime64(as_of, "D") - start).astype("timedelta64[D]").astype(float)
        days = np.where(has, delta, days)
        future = has & (delta < 0)
        if future.any():
            rows = frame["_row"].to_numpy()[future]
            warnings.append(f"{future.sum()} 位客户的开始等待日期晚于评估日期 {as_of}，等待天数按 0 计"
                            f"（第 {'、'.join(map(str, rows[:10]))} 行）")
            days = np.where(future, 0, days)
    missing = np.isnan(days)
    if missing.any():
        headers = headers or {}
        rows = frame["_row"].to_numpy()[missing]
        col = headers.get("wait_days") or headers.get("wait_start") or "等待天数"
        raise InputError("有客户缺少等待天数（也没有开始等待日期）", path=path,
                         problems=[Problem(int(r), col, "", "请填写等待天数或开始等待日期") for r in rows[:20]],
                         total=int(missing.sum()))
    return days.astype(np.int64), warnings


def score(
    frame: pd.DataFrame,
    model: ShortageModel,
    as_of: dt.date,
    now: dt.datetime,
    *,
    previous: pd.DataFrame | None = None,
    week_ago: pd.DataFrame | None = None,
    red_list: set[str] | None = None,
    headers: dict[str, str] | None = None,
    path: Path | None = None,
) -> ShortageResult:
    """Score every customer of a typed shortage export.

    ``previous`` (the last stored snapshot: ``key``, ``notes``, ``holds``) feeds escalation
    rule A4.4 and the raises that hold (see :func:`escalate_holding`);
    ``week_ago`` (``key``, ``contacts_7d``) feeds A4.5 when the export has no
    previous-week column.  ``red_list`` holds customer ids and phone numbers.
    """
    headers = headers or {}
    f = frame.reset_index(drop=True)
    n = len(f)
    warnings: list[str] = []
    key = customer_key(f)
    _check_keys(f, key, headers, path)
    days, w = wait_days(f, as_of, headers, path)
    warnings += w
    cols: dict[str, Any] = {"key": key, "wait_days": days}

    red = _red_list_mask(f, red_list)
    cols["red_list"] = red if red is not None else np.zeros(n, dtype=bool)
    ctx = Context(negations=model.negations, red_list=red, negation_note=model.negation_note)
    view = f.assign(wait_days=days)  # rules see the computed wait

    total = np.zeros(n, dtype=np.int64)
    check_given_scores(view, model, headers, path)
    for d, w_scaled in zip(model.dimensions, model.weights_scaled, strict=True):
        val, reason = _dimension(view, d, ctx, warnings, headers)
        cols[d.key] = val
        cols[f"reason_{d.key}"] = reason
        total += val * w_scaled
    cols["total_scaled"] = total
    cols["score"] = total / model.scale
    tier_idx = _tier_index(total, model)
    names = list(model.tier_names)
    cols["model_tier"] = pd.Categorical.from_codes(tier_idx, categories=names)
    view = view.assign(key=key)
    # the history joins (A4.4 with the previous run, A4.5 with a week ago) run side by side
    prev_keys = previous["key"] if previous is not None and len(previous) and "key" in previous else None
    week_keys = week_ago["key"] if week_ago is not None and len(week_ago) and "key" in week_ago else None
    prev_pos, week_pos = key_positions_both(key, prev_keys, week_keys)
    final_idx, esc, holds = escalate_holding(view, tier_idx, model, previous=previous, week_ago=week_ago, ctx=ctx,
                                             previous_positions=prev_pos, week_ago_positions=week_pos, as_of=as_of)
    cols["tier"] = pd.Categorical.from_codes(final_idx, categories=names)
    cols["escalations"] = esc
    cols["holds"] = holds
    cols.update(_policy(final_idx, model, now))
    cols["alerts"] = _alerts(view.assign(red_list=cols["red_list"]), model)
    out = f.drop(columns=[c for c in cols if c in f]).assign(**cols)
    order = urgency_order(final_idx, total, days, key)
    return ShortageResult(as_of=as_of, now=now, model=model, frame=out, order=order, warnings=warnings,
                          previous_positions=prev_pos,
                          previous_keys=prev_keys)


def _check_keys(f: pd.DataFrame, key: pd.Series, headers: dict[str, str], path: Path | None) -> None:
    """Every row names a customer (an id, else a name), and no name + phone is listed twice."""
    nokey = key.isna().to_numpy()
    if nokey.any():
        rows = f["_row"].to_numpy()[nokey]
        raise InputError("有客户既没有编号也没有姓名", path=path,
                         problems=[Problem(int(r), headers.get("customer_id", "客户编号"), "", "请填写客户编号或姓名")
                                   for r in rows[:20]], total=int(nokey.sum()),
                         hint="如果这是合计行或说明行，请从导出文件中删除")
    if "customer_id" not in f or f["customer_id"].isna().any():
        dupkey = key.duplicated(keep=False).to_numpy()
        if dupkey.any():
            rows = f["_row"].to_numpy()[dupkey]
            names = key.to_numpy()[dupkey]
            raise InputError("有同名同电话的客户出现多次（不会自动合并）", path=path,
                             problems=[Problem(int(r), headers.get("name", "客户姓名"), nm, "重复")
                                       for nm, r in zip(names[:20], rows[:20], strict=False)],
                             total=int(dupkey.sum()), hint="删除重复的行，或在导出中加上客户编号列")


def _red_list_mask(f: pd.DataFrame, red_list: set[str] | None) -> np.ndarray | None:
    """Rows whose customer id or phone is on the red list (None: no red list)."""
    if not red_list:
        return None
    red = np.zeros(len(f), dtype=bool)
    for col in ("customer_id", "phone"):
        if col in f:
            red |= f[col].isin(red_list).to_numpy(dtype=bool, na_value=False)
    return red


def check_given_scores(f: pd.DataFrame, model: ShortageModel, headers: dict[str, str] | None = None,
                       path: Path | None = None) -> None:
    """Dimension scores the export gives must be on the model's scale; never a silent
    mis-score.  A column is refused when a value is outside the model's range (30 under
    rite's 1–10), or when the model has band scores (rite100: R 0/10/20/30 …), some value
    is off them and another packaged model takes the whole column (8 under rite100 is a
    1–10 score).  A column on both scales (10/10/10/10) is read under the chosen model;
    an off-band value no other model explains (R 25 under rite100) is a manager's own
    judgement and is taken as given.  The error names each column and, when one other
    model takes every given column, suggests ``--model`` with it."""
    headers = headers or {}
    given = {}
    for d in model.dimensions:
        if d.key in f:
            v = f[d.key].to_numpy(dtype=float, na_value=np.nan)
            if (~np.isnan(v)).any():
                given[d.key] = (d, v, ~np.isnan(v))
    if not given:
        return

    def fitting(key: str, values: np.ndarray) -> list[str]:
        return [m for m, sc in model.other_scales.items() if key in sc and bool(sc[key].on_points(values).all())]

    every = [m for m, sc in model.other_scales.items()
             if all(k in sc and bool(sc[k].on_points(v[has]).all()) for k, (_d, v, has) in given.items())]
    lines: list[str] = []
    problems: list[Problem] = []
    total = 0
    rows = f["_row"].to_numpy()
    for key, (d, v, has) in given.items():
        own = d.scale
        bad = has & ~own.in_range(v)
        fits = fitting(key, v[has])
        off = has & ~bad & ~own.on_points(v)
        if not bad.any() and not (off.any() and fits):
            continue
        mark = bad if bad.any() else off
        header = headers.get(key, d.label)
        what = f"超出 {own.lo}–{own.hi}（或不是整数）" if bad.any() else f"不在档位 {'/'.join(map(str, own.points))} 上"
        line = f"「{header}」列（{key} {d.label}）有 {int(mark.sum())} 个值{what}"
        if fits:
            line += "，像是" + "、".join(f"模型 {m} 的分数（{key} {model.other_scales[m][key].describe()}）" for m in fits)
        lines.append(line)
        # a few cells per column, so that every column shows
        problems += [Problem(int(rows[i]), header, _num_text(v[i]), what) for i in np.flatnonzero(mark)[:3]]
        total += int(mark.sum())
    if not lines:
        return
    if every:
        hint = (f"这是模型 {every[0]} 的分数吗？请加 --model {every[0]} 重新运行；"
                "否则改正这些单元格，或清空它们由 tierctl 按原始信息推算")
    else:
        hint = (f"模型 {model.name} 的维度分：" + "，".join(f"{d.key} {d.scale.describe()}" for d in model.dimensions)
                + "；改正这些单元格，或清空它们由 tierctl 按原始信息推算")
    raise InputError(f"导出表中的维度分与模型 {model.name} 的分制不符：\n  " + "\n  ".join(lines), path=path,
                     problems=problems[:20], total=total, hint=hint)


def _dimension(f: pd.DataFrame, d: Dimension, ctx: Context, warnings: list[str],
               headers: dict[str, str]) -> tuple[np.ndarray, pd.Categorical]:
    """The dimension's value per row (the highest score among the rules that fire, the
    default when none fires, or the export's own column when given) and its reason."""
    n = len(f)
    best = np.full(n, -np.inf)
    code = np.full(n, -1, dtype=np.int64)
    texts: list[str] = []
    cancel_codes: list[np.ndarray] = []  # per keyword rule: what a negation word cancelled
    cancel_texts: list[list[str]] = []
    for rule in d.rules:
        fired = rule.evaluate(f, ctx)
        better = fired.score > best  # NaN compares False
        if better.any():
            best[better] = fired.score[better]
            code[better] = fired.code[better] + len(texts)
        texts += [f"{d.key}={num(s)}: {r}" for r, s in zip(fired.reasons, fired.scores, strict=True)]
        if fired.cancel_code is not None and fired.cancelled:
            cancel_codes.append(fired.cancel_code)
            cancel_texts.append(fired.cancelled)
    derived = np.isfinite(best)
    val = np.where(derived, best, d.default)
    defaulted = ~derived
    if defaulted.any():
        if "{value}" in d.default_reason:
            vc, uniq = pd.factorize(f["wait_days"].to_numpy()[defaulted])
            code[defaulted] = vc + len(texts)
            texts += [f"{d.key}={d.default}: " + d.default_reason.format(value=num(u)) for u in uniq]
        else:
            code[defaulted] = len(texts)
            texts.append(f"{d.key}={d.default}: {d.default_reason}")
    warn_rows = defaulted
    if d.key in f:
        given = f[d.key].to_numpy(dtype=float, na_value=np.nan)
        has = ~np.isnan(given)
        if has.any():
            ok = has & d.scale.in_range(given)  # (check_given_scores refused anything else)
            val = np.where(ok, given, val)
            label = headers.get(d.key, d.key)
            gc, guniq = pd.factorize(given[ok])
            code[ok] = gc + len(texts)
            texts += [f"{d.key}={num(u)}: 取自导出表「{label}」列" for u in guniq]
            warn_rows = defaulted & ~ok
            for c in cancel_codes:  # a score taken from the export owes nothing to the notes
                c[ok] = -1
    if d.warn_when_default and warn_rows.any():
        who = _who(f, warn_rows)
        warnings.append(f"{d.warn_when_default}（{len(who)} 位：{'、'.join(who[:15])}{' …' if len(who) > 15 else ''}）")
    if cancel_codes:
        return val.astype(np.int64), _with_notes(code, texts, join_codes(cancel_codes, cancel_texts, n, "；"))
    return val.astype(np.int64), cat(code, texts)


def _with_notes(code: np.ndarray, texts: list[str], notes: pd.Categorical) -> pd.Categorical:
    """Each row's reason followed by its notes in brackets ("E=2: …（「骗」前有否定词「不是」，
    未计入）"), formatting each distinct pair once."""
    cats = list(notes.categories)
    pc, pairs = pair_codes(code, np.asarray(notes.codes, dtype=np.int64), len(cats))
    out = []
    for r, c in pairs:
        reason = texts[r] if r >= 0 else ""
        note = cats[c] if c >= 0 else ""
        out.append(f"{reason}（{note}）" if note and reason else reason or note)
    return cat(pc, out)


def _num_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _who(f: pd.DataFrame, mask: np.ndarray) -> list[str]:
    idx = np.flatnonzero(mask)[:50]
    names = (f["name"] if "name" in f else f["customer_id"]).take(idx).to_numpy(dtype=object, na_value="?")
    rows = f["_row"].to_numpy()[idx]
    return [f"{nm}(第{r}行)" for nm, r in zip(names, rows, strict=True)] + [""] * (int(mask.sum()) - len(idx))


def _tier_index(total_scaled: np.ndarray, model: ShortageModel) -> np.ndarray:
    idx = np.full(len(total_scaled), len(model.tiers) - 1, dtype=np.int64)
    assigned = np.zeros(len(total_scaled), dtype=bool)
    for i, t in enumerate(model.tiers):
        m = ~assigned & (total_scaled >= int(t.min * model.scale))
        idx[m] = i
        assigned |= m
    return idx


def tier_for(total: Decimal | float | str, model: ShortageModel) -> str:
    """The model tier of one total (exact)."""
    scaled = int(Decimal(str(total)) * model.scale)
    return model.tier_names[int(_tier_index(np.array([scaled]), model)[0])]


def _policy(tier_idx: np.ndarray, model: ShortageModel, now: dt.datetime) -> dict[str, Any]:
    """The tier policy per row: owner, channel, action, cadence and the respond-by time
    (the run's time plus the tier's first-contact target)."""
    tiers = model.tiers
    out: dict[str, Any] = {}
    for col in ("owner", "owner_role", "channel", "action"):
        out[col] = cat(tier_idx, [getattr(t, col) for t in tiers])
    out["cadence_days"] = np.array([t.cadence_days for t in tiers], dtype=np.int64)[tier_idx]
    stamps = pd.DatetimeIndex([pd.Timestamp(now) + pd.Timedelta(hours=t.first_contact_hours) for t in tiers])
    out["respond_by"] = pd.Series(stamps.take(tier_idx))
    return out


def _alerts(f: pd.DataFrame, model: ShortageModel) -> pd.Categorical:
    """The highest wait-time alert a customer has reached, and the red-list alert."""
    n = len(f)
    waits = f["wait_days"].to_numpy()
    code = np.full(n, -1, dtype=np.int64)
    texts = [f"{a.id}→{a.recipient}: {a.reason}" for a in model.alerts]
    for j, a in enumerate(model.alerts):  # ascending: the last one reached wins
        code[waits >= a.min_days] = j
    red = f["red_list"].to_numpy(dtype=bool)
    if red.any():
        m = red & complaint_mask(f, model)
        extra = f"redlist→{model.redlist_recipient}: {model.redlist_reason}"
        base = len(texts)
        texts += [extra] + [t + "\n" + extra for t in texts]
        code = np.where(m, np.where(code >= 0, base + 1 + code, base), code)
    return cat(code, texts)


def complaint_mask(f: pd.DataFrame, model: ShortageModel) -> np.ndarray:
    """Customers who already complained or posted (complaint flag, negative post, or
    a complaint keyword in the notes)."""
    n = len(f)
    m = np.zeros(n, dtype=bool)
    for col in ("complaint", "negative_post"):
        if col in f:
            m |= f[col].to_numpy(dtype=bool, na_value=False)
    if "notes" in f:
        m |= keyword_codes(f["notes"], list(model.complaint_keywords), model.negations) >= 0
    return m


def media_mask(f: pd.DataFrame, model: ShortageModel) -> np.ndarray:
    """Customers flagged for media attention (the model's ``[pr_plan] field``)."""
    col = model.pr_plan_field
    if not col or col not in f:
        return np.zeros(len(f), dtype=bool)
    return f[col].to_numpy(dtype=bool, na_value=False)
