"""The result of one grading (:class:`GradeResult`), its reasons in words and its JSON.
Pure: built from the result's own frame, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tierctl.grade.indicators import NORMALISERS
from tierctl.grade.inputs import _fmt_num
from tierctl.kernels.numtext import numbers_as_text

if TYPE_CHECKING:
    from tierctl.grade.model import GradeModel, Indicator


@dataclass
class GradeResult:
    """The grading of one export as of one date.

    ``customers`` keeps the input's order and index, one row per customer:
    ``customer_id`` (+ ``name``/``phone`` when given), ``composite`` (2 decimals),
    ``grade`` (final) and ``computed_grade`` (ordered categoricals, lowest grade first),
    ``overridden``, ``override_reason``/``override_by``/``override_at``, and for each
    indicator ``<key>_score`` (0–100, NaN when not counted for that customer) and
    ``<key>_value`` (the value that was ranked).
    """

    customers: pd.DataFrame
    model: GradeModel
    as_of: date
    weights: dict[str, Decimal]  # weights used, after re-weighting for missing indicators
    missing_indicators: list[str]
    distribution: pd.DataFrame  # grade, count, share_pct, usual_share_pct, diff_pct, flagged, computed_count
    warnings: list[str]
    audit: list[dict[str, Any]]  # one entry per override in force (plain JSON types)
    # Grade shares far from the usual ones, explained (plain JSON; None when they are
    # near): ``text`` (also in ``warnings``) and the same as ``lines``, ``flagged`` and ``usual`` (grade → %),
    # ``option`` and ``with_option`` (grade → % the computed grades would have with that
    # option on this same file; None when it cannot be said).
    share_gap: dict[str, Any] | None = None
    _sources: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _reasons: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def indicators(self) -> list[Indicator]:
        """The indicators that took part (missing optional ones left out)."""
        return [i for i in self.model.indicators if i.key in self.weights]

    @property
    def reasons(self) -> pd.DataFrame:
        """Why each customer got his composite: short Chinese texts, same index as
        ``customers``; one column per indicator (its value, score, weight and
        contribution, e.g. ``近12个月消费 12000元 → 85.2分（百分位）× 30% = 25.56``),
        then ``composite`` (the band reached) and ``override`` (NA when none).

        Built on first use (about a second per million customers): only ``why``, JSON
        and documents need them.
        """
        if self._reasons is None:
            self._reasons = _build_reasons(self)
        return self._reasons

    def reason_lists(self) -> list[list[str]]:
        """:attr:`reasons` as one list of texts per customer (NA left out)."""
        cols = [self.reasons[k].astype(object).tolist() for k in self.reasons.columns]
        return [[x for x in row if isinstance(x, str)] for row in zip(*cols, strict=True)]

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON types (what ``--format json`` prints)."""
        c = self.customers
        keys = [i.key for i in self.indicators]
        scores = {k: _plain_floats(c[f"{k}_score"]) for k in keys}
        values = {k: _plain_floats(c[f"{k}_value"]) for k in keys}
        ids = c["customer_id"].astype(object).tolist()
        names = _plain_obj(c["name"]) if "name" in c else [None] * len(c)
        comp = _plain_floats(c["composite"])
        grade = c["grade"].astype(object).tolist()
        computed = c["computed_grade"].astype(object).tolist()
        over = c["overridden"].tolist()
        o_reason = _plain_obj(c["override_reason"])
        o_by = _plain_obj(c["override_by"])
        o_at = _plain_obj(c["override_at"])
        reasons = self.reason_lists()
        customers = []
        for i in range(len(c)):
            customers.append({
                "customer_id": ids[i],
                "name": names[i],
                "composite": comp[i],
                "grade": grade[i],
                "computed_grade": computed[i],
                "overridden": bool(over[i]),
                "override": ({"reason": o_reason[i], "by": o_by[i], "at": o_at[i]} if over[i] else None),
                "indicators": {k: scores[k][i] for k in keys},
                "values": {k: values[k][i] for k in keys},
                "reasons": reasons[i],
            })
        return {
            "model": self.model.name,
            "as_of": self.as_of.isoformat(),
            "count": len(c),
            "share_gap": self.share_gap,
            "weights": {k: float(w) for k, w in self.weights.items()},
            "missing_indicators": list(self.missing_indicators),
            "distribution": _records(self.distribution),
            "warnings": list(self.warnings),
            "audit": list(self.audit),
            "customers": customers,
        }


def _txt(values: np.ndarray) -> pa.Array:
    """Numbers → text (2 decimals at most, no trailing zeros), null for NaN (see
    :func:`tierctl.kernels.numtext.numbers_as_text`)."""
    return numbers_as_text(values)


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _build_reasons(res: GradeResult) -> pd.DataFrame:
    """One text column per indicator, then ``composite`` and ``override`` (NA if none)."""
    model, c = res.model, res.customers
    n = len(c)
    present = res.indicators
    counted = {i.key: c[i.score_column].notna().to_numpy() for i in present}
    wsum = np.zeros(n, dtype=np.int64)
    for i in present:
        wsum += np.where(counted[i.key], i.weight_units, 0)

    out: dict[str, Any] = {}
    for ind in present:
        score = c[ind.score_column].to_numpy(dtype=float)
        value = c[ind.value_column].to_numpy(dtype=float)
        src = res._sources.get(ind.key, np.zeros(n, dtype=np.int8))
        pct = ind.weight_units * 100 / np.maximum(wsum, 1)  # this customer's weight, in %
        how = NORMALISERS[ind.normalise].how(ind, value)
        derived = f"（{ind.derive.describe(model)}）" if ind.derive else ""
        note = pa.array(np.array(["", derived, "（空白按 0 计）", ""], dtype=object)[src])
        text = _join(f"{ind.label} ", _txt(value), f"{ind.unit}", note, " → ", _txt(score), "分（", how,
                     "）× ", _txt(pct), "% = ", _txt(score * pct / 100))
        text = pc.if_else(pa.array(np.isnan(score)), f"{ind.label}：空白，不计入，其余指标按比例分配权重", text)
        out[ind.key] = text

    mins = np.array([_fmt_num(float(g.min)) for g in model.grades[::-1]], dtype=object)
    codes = c["computed_grade"].cat.codes.to_numpy()
    out["composite"] = _join("综合分 ", _txt(c["composite"].to_numpy(dtype=float)), " → ",
                             pa.array(np.array(model.categories, dtype=object)[codes]), "（≥",
                             pa.array(mins[codes]), "）")

    over = c["overridden"].to_numpy(dtype=bool)
    notes = np.full(n, None, dtype=object)
    final = c["grade"].astype(object).to_numpy()
    computed = c["computed_grade"].astype(object).to_numpy()
    for p, g, cg, r, by, at in zip(np.flatnonzero(over).tolist(), final[over].tolist(), computed[over].tolist(),
                                   c["override_reason"].to_numpy(dtype=object)[over].tolist(),
                                   c["override_by"].to_numpy(dtype=object)[over].tolist(),
                                   c["override_at"].to_numpy(dtype=object)[over].tolist(), strict=True):
        extra = "".join(x for x in (by and f"；调整人 {by}", at and f"；时间 {at}") if x)
        notes[p] = f"人工调整为 {g}（系统评定 {cg}）：{r}{extra}"
    out["override"] = pa.array(notes, type=pa.string())
    return pd.DataFrame({k: pd.array(v, dtype="string") if isinstance(v, np.ndarray) else
                         pd.Series(v.to_pandas(), dtype="string").array for k, v in out.items()},
                        index=c.index)


# =======================================================================================
# Plain JSON helpers
# =======================================================================================


def _nan_none(x: Any) -> Any:
    """A plain JSON value: NaN/NA/NaT → None, numpy scalars → Python ones."""
    t = type(x)
    if t is str or t is int or t is bool or x is None:
        return x
    if t is float:
        return None if x != x else x
    if x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, np.floating):
        return None if np.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, pd.Timestamp | datetime | date):
        return x.isoformat()
    return x


def _plain_floats(s: pd.Series) -> list[float | None]:
    a = s.to_numpy(dtype=float, na_value=np.nan)
    return [None if v != v else v for v in a.tolist()]


def _plain_obj(s: pd.Series) -> list[Any]:
    return [_nan_none(v) if not isinstance(v, str) else v for v in s.astype(object).tolist()]


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _nan_none(v) for k, v in r.items()} for r in df.astype(object).to_dict("records")]

