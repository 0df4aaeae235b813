"""Grading itself (pure): a frame with canonical column names and a model in, a
:class:`~tierctl.grade.result.GradeResult` out; no I/O, no clock.

The steps of :func:`grade_customers`: each indicator's values (given, or derived),
blank cells by each indicator's ``blank`` policy, scores and the exact composite,
overrides, then the result frame, the weights used and the distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import InputError, Problem
from tierctl.grade.indicators import (
    _SRC_DERIVED,
    _SRC_GIVEN,
    _SRC_NONE,
    _SRC_ZERO,
    NORMALISERS,
    _thresholds_h,
)
from tierctl.grade.inputs import (
    _as_date,
    _customer_ids,
    _excel_rows,
    _fmt_num,
    _numeric,
    _validate_overrides,
)
from tierctl.grade.model import GradeModel, Indicator
from tierctl.grade.result import GradeResult


def grade_customers(
    frame: pd.DataFrame,
    model: GradeModel,
    as_of: date,
    *,
    overrides: pd.DataFrame | None = None,
    path: str | Path | None = None,
    overrides_path: str | Path | None = None,
    headers: dict[str, str] | None = None,
) -> GradeResult:
    """Grade every customer of ``frame`` as of ``as_of``.

    ``frame`` has the model's canonical column names (``customer_id``, ``spend_12m`` …)
    and, when it comes from the ingest, ``_row`` with Excel row numbers for messages.
    ``overrides`` has ``customer_id``, ``grade``, ``reason`` (required) and optionally
    ``by``, ``at`` (when it was decided) and ``until`` (expiry date).  ``path`` and
    ``overrides_path`` only name the files in error messages; ``headers`` (canonical
    name → the header as the file spells it, :attr:`Export.headers`) makes messages and
    reasons name a column the way the user's file does.

    Raises :class:`InputError` (all bad cells at once, with Excel rows) for blank or
    duplicated customer ids, non-numeric or out-of-range values, first visits after
    ``as_of``, a missing required indicator, and bad override rows.
    """
    as_of = _as_date(as_of)
    if headers:
        model = _with_headers(model, headers)
    if len(frame) == 0:
        raise InputError("导出中没有客户数据", path=path, hint="检查是否选错了工作表或文件")
    rows = _excel_rows(frame)
    ids = _customer_ids(frame, rows, path)
    warnings: list[str] = []

    raw, sources, missing = _values(model, frame, as_of, rows, path)
    _blanks(model, raw, sources, rows, ids, path, warnings)
    present = [i for i in model.indicators if i.key in raw]
    comp = _composite(model, present, raw, rows, ids, path, warnings)
    ov = _Overrides.apply(model, overrides, as_of, ids, comp.computed, comp.cents, overrides_path, warnings)
    customers = _customers_frame(frame, ids, model, present, raw, comp, ov)

    total_w = sum(i.weight_units for i in present)
    weights = {i.key: (Decimal(i.weight_units) / Decimal(total_w)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
               for i in present}
    if missing:
        used = "、".join(f"{i.label} {weights[i.key] * 100:.2f}%" for i in present)
        warnings.append("缺少指标：" + "；".join(_missing_text(i, model) for i in missing)
                        + f"。其余指标按比例重新分配权重：{used}")
    distribution = _distribution(model, ov.final, comp.computed)
    gap = _share_gap(model, present, distribution, comp.cents, raw)
    if gap:
        warnings.append(gap["text"])
    return GradeResult(customers=customers, model=model, as_of=as_of, weights=weights,
                       missing_indicators=[i.key for i in missing], distribution=distribution,
                       warnings=warnings, audit=ov.audit, share_gap=gap, _sources=sources)


def _values(model: GradeModel, frame: pd.DataFrame, as_of: date, rows: np.ndarray, path: str | Path | None
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Indicator]]:
    """Step 1: the value of each indicator and how each came about; the indicators missing."""
    raw: dict[str, np.ndarray] = {}
    sources: dict[str, np.ndarray] = {}
    missing: list[Indicator] = []
    problems: list[Problem] = []
    for ind in model.indicators:
        got = _indicator_values(ind, model, frame, as_of, rows, problems)
        if got is None:
            missing.append(ind)
            continue
        raw[ind.key], sources[ind.key] = got
    if problems:
        raise InputError("导出文件中有无法评分的数据", path=path, problems=problems,
                         hint="改正这些单元格后重新运行")
    missing_required = [i for i in missing if i.required]
    if missing_required:
        raise InputError(
            "缺少必需的指标：" + "；".join(_missing_text(i, model) for i in missing_required),
            path=path, hint="在导出中加上这些列（表头可用上面任一写法），或在模型文件中把该指标设为 required = false")
    if len(missing) == len(model.indicators):  # only possible when none is required
        raise InputError("导出中没有任何评分指标", path=path)
    return raw, sources, missing


def _blanks(model: GradeModel, raw: dict[str, np.ndarray], sources: dict[str, np.ndarray], rows: np.ndarray,
            ids: pd.Series, path: str | Path | None, warnings: list[str]) -> None:
    """Step 2: blank cells, by each indicator's ``blank`` policy (in place)."""
    problems: list[Problem] = []
    for ind in model.indicators:
        if ind.key not in raw:
            continue
        v, src = raw[ind.key], sources[ind.key]
        blank = np.isnan(v)
        nb = int(blank.sum())
        if not nb:
            continue
        if ind.blank == "zero":
            v[blank] = 0.0
            src[blank] = _SRC_ZERO
            warnings.append(f"{ind.label}：{nb} 位客户为空，按 0 计")
        elif ind.blank == "reweight":
            src[blank] = _SRC_NONE
            warnings.append(f"{ind.label}：{nb} 位客户为空，这些客户不计该指标，其余指标按比例分配权重")
        else:
            for r, cid in zip(rows[blank][:20].tolist(), ids[blank][:20].tolist(), strict=True):
                problems.append(Problem(r, model.column_label(ind.column), None,
                                        f"客户 {cid} 的{ind.label}为空"))
            raise InputError(f"{ind.label}不能为空", path=path, problems=problems, total=nb,
                             hint="补全这些单元格，或在模型文件中把该指标的 blank 改为 zero / reweight")


@dataclass
class _Composite:
    scores: dict[str, np.ndarray]  # hundredths per indicator, -1 = not counted
    cents: np.ndarray  # the composite in hundredths
    computed: np.ndarray  # grade position, 0 = lowest


def _composite(model: GradeModel, present: list[Indicator], raw: dict[str, np.ndarray], rows: np.ndarray,
               ids: pd.Series, path: str | Path | None, warnings: list[str]) -> _Composite:
    """Step 3: scores, the exact composite and the computed grade."""
    n = len(ids)
    num = np.zeros(n, dtype=np.int64)
    wsum = np.zeros(n, dtype=np.int64)
    scores: dict[str, np.ndarray] = {}
    few: list[str] = []
    for ind in present:
        v = raw[ind.key]
        h = NORMALISERS[ind.normalise].scores_h(ind, v)
        if ind.normalise == "percentile":
            nv = int((~np.isnan(v)).sum())
            if nv < model.percentile_min_customers:
                few.append(f"{ind.label} {nv} 位")
        scores[ind.key] = h
        counted = h >= 0
        w = ind.weight_units
        num += np.where(counted, h * w, 0)
        wsum += np.where(counted, w, 0)
    if few:
        warnings.append(f"参与百分位排名的客户较少（{'、'.join(few)}），分数较粗，仅供参考")
    nothing = wsum == 0
    if nothing.any():
        bad = [Problem(r, None, cid, "该客户所有评分指标都为空，无法计算综合分")
               for r, cid in zip(rows[nothing][:20].tolist(), ids[nothing][:20].tolist(), strict=True)]
        raise InputError("有客户无法评分", path=path, problems=bad, total=int(nothing.sum()))
    # round half-up of num/wsum (hundredths): exact, so 90.00 lands in VIP
    cents = (2 * num + wsum) // (2 * wsum)
    mins_low = np.array([g.min_h for g in model.grades[::-1]], dtype=np.int64)
    computed = np.searchsorted(mins_low, cents, side="right") - 1  # 0 = lowest grade
    return _Composite(scores, cents, computed)


@dataclass
class _Overrides:
    final: np.ndarray
    overridden: np.ndarray
    reason: np.ndarray
    by: np.ndarray
    at: np.ndarray
    audit: list[dict[str, Any]]

    @classmethod
    def apply(cls, model: GradeModel, overrides: pd.DataFrame | None, as_of: date, ids: pd.Series,
              computed: np.ndarray, cents: np.ndarray, overrides_path: str | Path | None,
              warnings: list[str]) -> _Overrides:
        """Step 4: the overrides in force replace the computed grade."""
        n = len(ids)
        out = cls(computed.copy(), np.zeros(n, dtype=bool), np.full(n, None, dtype=object),
                  np.full(n, None, dtype=object), np.full(n, None, dtype=object), [])
        if overrides is None or not len(overrides):
            return out
        ov = _validate_overrides(overrides, model, as_of, ids, overrides_path, warnings)
        pos = ov["_pos"].to_numpy()
        out.final[pos] = ov["_rank"].to_numpy()
        out.overridden[pos] = True
        out.reason[pos] = ov["reason"].to_numpy(dtype=object)
        out.by[pos] = ov["_by"].to_numpy(dtype=object)
        out.at[pos] = ov["_at_iso"].to_numpy(dtype=object)
        cats = model.categories
        for p, g, r, b, a in zip(pos.tolist(), ov["_rank"].tolist(), ov["reason"].tolist(),
                                 ov["_by"].tolist(), ov["_at_iso"].tolist(), strict=True):
            out.audit.append({
                "customer_id": str(ids.iat[p]),
                "computed_grade": cats[computed[p]],
                "grade": cats[g],
                "composite": int(cents[p]) / 100,
                "reason": r,
                "by": b,
                "at": a,
            })
        out.audit.sort(key=lambda a: a["customer_id"])
        return out


def _customers_frame(frame: pd.DataFrame, ids: pd.Series, model: GradeModel, present: list[Indicator],
                     raw: dict[str, np.ndarray], comp: _Composite, ov: _Overrides) -> pd.DataFrame:
    """Step 5: the result frame, in the input's order and index."""
    cats = model.categories
    out: dict[str, Any] = {"customer_id": ids.array}
    for extra in ("name", "phone"):  # text, never numbers: phone numbers keep leading zeros
        if extra in frame.columns:
            out[extra] = frame[extra].astype("string").array
    out["composite"] = comp.cents / 100
    out["grade"] = pd.Categorical.from_codes(ov.final, categories=cats, ordered=True)
    out["computed_grade"] = pd.Categorical.from_codes(comp.computed, categories=cats, ordered=True)
    out["overridden"] = ov.overridden
    out["override_reason"] = ov.reason
    out["override_by"] = ov.by
    out["override_at"] = ov.at
    for ind in present:
        h = comp.scores[ind.key]
        out[ind.score_column] = np.where(h >= 0, h / 100, np.nan)
        out[ind.value_column] = np.where(h >= 0, raw[ind.key], np.nan)
    return pd.DataFrame(out, index=frame.index)


def _with_headers(model: GradeModel, headers: dict[str, str]) -> GradeModel:
    """The model with each column's file header first among its aliases, so
    :meth:`GradeModel.column_label` (messages, reasons) uses the user's spelling."""
    cols = {}
    for name, spec in model.columns.items():
        h = headers.get(name)
        if h and spec.aliases[:1] != (h,):
            spec = replace(spec, aliases=(h, *[a for a in spec.aliases if a != h]))
        cols[name] = spec
    return replace(model, columns=cols)


def _missing_text(ind: Indicator, model: GradeModel) -> str:
    heads = "、".join(model.columns[ind.column].aliases[:4]) or ind.column
    text = f"{ind.label}（表头可写 {heads}"
    if ind.derive is not None:
        srcs = "、".join(model.column_label(s) for s in ind.derive.sources)
        text += f"；或提供 {srcs} 以推算"
    return text + "）"


def _indicator_values(ind: Indicator, model: GradeModel, frame: pd.DataFrame, as_of: date,
                      rows: np.ndarray, problems: list[Problem]) -> tuple[np.ndarray, np.ndarray] | None:
    """The values of one indicator and how each came about; ``None`` when unavailable."""
    n = len(frame)
    has_col = ind.column in frame.columns
    can_derive = ind.derive is not None and all(c in frame.columns for c in ind.derive.sources)
    if not has_col and not can_derive:
        return None
    if has_col:
        v = _numeric(frame, ind.column, model.columns[ind.column], model.column_label(ind.column), rows, problems)
    else:
        v = np.full(n, np.nan)
    src = np.full(n, _SRC_GIVEN, dtype=np.int8)
    if can_derive:
        blank = np.isnan(v)
        if blank.any():
            d = ind.derive.values(model, frame, as_of, rows, problems)  # type: ignore[union-attr]
            fill = blank & ~np.isnan(d)
            v[fill] = d[fill]
            src[fill] = _SRC_DERIVED
    if np.isnan(v).all():
        return None  # an entirely blank column tells us nothing: treat as missing
    return v, src



def _share_gap(model: GradeModel, present: list[Indicator], dist: pd.DataFrame, cents: np.ndarray,
               raw: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """Grade shares far from the usual ones: how far, why, and the option that changes it.

    Why this matters (issues 7 and 14): percentile scores are ranks against the other
    customers, and the mean of several ranks bunches around 50 — only customers near the
    top in nearly every indicator reach 90, and everyone a little below the middle lands
    under 45.  That is arithmetic, not bad data, and a manager reading "VIP 1%, 休眠 40%"
    needs to be told so first, with the way out (``--normalise thresholds``) and what
    it would give on this very file (the same composite, each percentile indicator
    scored by its bands instead; overrides left out).
    """
    flagged = dist[dist["flagged"]]
    if flagged.empty:
        return None
    parts = "、".join(f"{r.grade} {r.share_pct:.1f}%（通常约 {r.usual_share_pct:g}%）"
                      for r in flagged.itertuples(index=False))
    lines = [f"等级占比与通常占比相差较大：{parts}。"]
    top, bottom = dist.iloc[0], dist.iloc[-1]
    narrow = (top["usual_share_pct"] is not None and bottom["usual_share_pct"] is not None
              and top["share_pct"] < top["usual_share_pct"] and bottom["share_pct"] > bottom["usual_share_pct"])
    pct_weight = sum(i.weight_units for i in present if i.normalise == "percentile")
    option = None
    with_option = None
    if narrow and pct_weight * 2 >= sum(i.weight_units for i in present):
        q1, med, q3 = (np.percentile(cents, [25, 50, 75]) / 100).tolist()
        option = "--normalise thresholds"
        with_option = _shares_with_thresholds(model, present, raw)
        lines.append(f"原因：百分位得分是与本次其他客户相比的相对名次，几项平均后综合分集中在 50 分附近"
                     f"（本次中位数 {med:.1f} 分，一半客户在 {q1:.1f}–{q3:.1f} 分之间），所以达到 "
                     f"{_fmt_num(float(model.grades[0].min))} 分的少、低于 {_fmt_num(float(model.grades[-2].min))} "
                     "分的多；这不是数据错误。")
        remedy = (f"若希望等级代表绝对水平、占比接近通常水平，可加 {option} 按模型文件中的阈值分档评分"
                  "（请先按本店价位核对各指标的 bands）")
        if with_option:
            remedy += "，本文件按阈值分档将是：" + "、".join(f"{g} {v:.1f}%" for g, v in with_option.items())
        lines.append(remedy + "；或在模型文件中调整各等级的 min。")
    else:
        lines.append("请核对模型文件中各指标的阈值分档（bands）是否符合本店的价位和评分量纲，或调整各等级的 min。")
    return {
        "text": "".join(lines),
        "lines": lines,
        "flagged": {r.grade: float(r.share_pct) for r in flagged.itertuples(index=False)},
        "usual": {str(r.grade): (None if r.usual_share_pct is None else float(r.usual_share_pct))
                  for r in dist.itertuples(index=False)},
        "option": option,
        "with_option": with_option,
    }


def _shares_with_thresholds(model: GradeModel, present: list[Indicator],
                            raw: dict[str, np.ndarray]) -> dict[str, float] | None:
    """Share of each grade (highest first, percent) if every percentile indicator were
    scored by its bands: the composite and the grade bounds as in the run itself."""
    if any(i.normalise == "percentile" and not i.bands for i in present):
        return None
    n = len(next(iter(raw.values())))
    num = np.zeros(n, dtype=np.int64)
    wsum = np.zeros(n, dtype=np.int64)
    for ind in present:
        h = _thresholds_h(ind, raw[ind.key])
        counted = h >= 0
        num += np.where(counted, h * ind.weight_units, 0)
        wsum += np.where(counted, ind.weight_units, 0)
    ok = wsum > 0
    cents = (2 * num[ok] + wsum[ok]) // (2 * wsum[ok])
    mins_low = np.array([g.min_h for g in model.grades[::-1]], dtype=np.int64)
    grade = np.searchsorted(mins_low, cents, side="right") - 1
    counts = np.bincount(grade, minlength=len(model.grades))[::-1]
    total = max(int(ok.sum()), 1)
    return {g.name: round(100 * int(c) / total, 2) for g, c in zip(model.grades, counts.tolist(), strict=True)}


def _distribution(model: GradeModel, final: np.ndarray, computed: np.ndarray) -> pd.DataFrame:
    g = len(model.grades)
    n = max(len(final), 1)
    counts = np.bincount(final, minlength=g)[::-1]  # highest grade first
    ccounts = np.bincount(computed, minlength=g)[::-1]
    rows = []
    tol = float(model.share_tolerance_pct)
    ratio = float(model.share_tolerance_ratio)
    for band, c, cc in zip(model.grades, counts.tolist(), ccounts.tolist(), strict=True):
        share = round(100 * c / n, 2)
        usual = None if band.usual_share_pct is None else float(band.usual_share_pct)
        diff = None if usual is None else round(share - usual, 2)
        rows.append({
            "grade": band.name,
            "count": int(c),
            "share_pct": share,
            "usual_share_pct": usual,
            "diff_pct": diff,
            "flagged": bool(usual is not None and diff is not None and len(final) >= model.share_min_customers
                            and (abs(diff) > tol or not usual / ratio <= share <= usual * ratio)),
            "computed_count": int(cc),
        })
    return pd.DataFrame(rows)

