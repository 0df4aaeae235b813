"""RFM segmentation (job C): score every customer 1–5 on R, F and M and sort them into 8 types.

Pure core: a frame of visits, the model and the as-of date go in, an :class:`RfmResult`
comes out.  No I/O, no clock.

How the numbers are made (the rules a service manager can check by hand):

* **Window.** Only visits in the ``window_days`` days up to and including the as-of date
  count (``as_of - window_days < date <= as_of``).  Rows dated after the as-of date are
  dropped and listed in :attr:`RfmResult.quality` with their Excel row; older rows are
  dropped and counted.  A customer with no visit in the window is not scored.
* **Unit.** The owner (``customer_id``, default) or the vehicle (``vin``), per the model.
* **R** = as-of date − date of the latest visit, in days (refunds are not visits).
* **F** = distinct visits: distinct repair-order / invoice numbers when the export has
  them, otherwise distinct visit dates (:attr:`RfmResult.frequency_basis` says which).
  Rows without an order number fall back to their date, unless the same customer has a
  numbered order that day (then they are lines of that order, not another visit).
* **M** = net spend in the window in 元 (refunds, i.e. negative amounts, lower it), summed
  per customer, or divided by F when the model says ``monetary = "mean"``.  Money is
  handled in integer fen so that sums never depend on row order.
* **Scores.**  Quantile binning (default): every customer is ranked in the "good"
  direction (fewest days, most visits, most money = best) with ties sharing the lowest
  rank of their group (``rank(method="min")``), and ``score = (rank - 1) * 5 // n + 1``.
  Equal values therefore always share a score and row order cannot change a score;
  a group of tied customers gets the score of its lowest position (so when 80% of
  customers have one visit, all of them get F=1, and nobody gets 2–4).  With fewer
  than 5 customers the top scores cannot be reached (one customer scores 1-1-1); the
  result says so in ``quality``.  Threshold binning uses the model's fixed boundaries.
  Either way the boundaries actually applied are returned as :class:`Edges`, and passing
  them back (``edges=``) scores a later month on the same scale (*frozen* edges).
* **Type.**  A score ≥ ``high_min`` (4) is high; the (R, F, M) high/low pattern picks
  one of the 8 types in the model; all 125 score combinations map to exactly one type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tierctl.errors import InputError, Problem, UsageError
from tierctl.io.ingest import KINDS, ColumnSet
from tierctl.models.loader import Section

__all__ = [
    "Edges",
    "KeyFlow",
    "Migration",
    "RfmModel",
    "RfmResult",
    "RfmType",
    "compute_rfm",
    "customers_from_snapshot",
    "flow_customers",
    "load_rfm_model",
    "migrate",
    "quantile_scores",
    "rescore",
    "rfm_type",
    "rfm_types",
    "snapshot_meta",
    "snapshot_rows",
]

N_SCORES = 5
DIMENSIONS = ("recency_days", "frequency", "monetary")
# R: fewer days is better; F and M: more is better.
_HIGHER_IS_BETTER = {"recency_days": False, "frequency": True, "monetary": True}
_DIM_LABEL = {"recency_days": "R", "frequency": "F", "monetary": "M"}
_DIM_UNIT = {"recency_days": "天", "frequency": "次", "monetary": "元"}

# The canonical columns compute_rfm reads, and the kind each must be declared with.
_EXPECTED_KIND = {
    "customer_id": "text", "name": "text", "phone": "text", "vin": "text",
    "visit_date": "date", "amount": "number", "order_id": "text", "kol": "bool",
}
_ALWAYS_REQUIRED = ("customer_id", "visit_date", "amount")

# Order in which data-quality notes are listed (then by Excel row).
_QUALITY_ORDER = ("missing_value", "after_as_of", "outside_window", "refund", "refund_only",
                  "negative_net", "shared_order_id", "missing_order_id", "id_name_conflict",
                  "small_sample", "ties")


# =====================================================================================
# Model
# =====================================================================================
@dataclass(frozen=True)
class RfmType:
    """One of the 8 customer types: its R/F/M high-low pattern and what to do about it."""

    no: int
    name_zh: str
    name_en: str
    r_high: bool
    f_high: bool
    m_high: bool
    share_pct: tuple[float, float]  # usual share of customers, percent
    profit_pct: tuple[float, float]  # usual share of profit, percent
    strategy_zh: str
    strategy_en: str

    @property
    def pattern(self) -> str:
        """``"HLH"`` style: R, F, M each high (H) or low (L)."""
        return "".join("H" if h else "L" for h in (self.r_high, self.f_high, self.m_high))


@dataclass(frozen=True)
class KeyFlow:
    """A month-over-month movement between two types that the manager must see by name."""

    key: str
    from_type: int
    to_type: int
    name_zh: str
    name_en: str
    target_zh: str
    target_pct: float


@dataclass(frozen=True)
class Edges:
    """The boundaries that turn R, F and M values into scores 1–5, as applied.

    Each dimension holds four bounds ``(b2, b3, b4, b5)``; ``bk`` is what a value must
    reach to score at least ``k``.  A value that reaches none scores 1.

    * R (``recency_days``, fewer days is better): the bounds are **upper bounds,
      inclusive** — ``days <= bk`` scores at least ``k``; the bounds never increase.
    * F and M (more is better): the bounds are **lower bounds, inclusive** —
      ``value >= bk`` scores at least ``k``; the bounds never decrease.
    * ``None`` means nobody reached that score when the edges were made (the score is
      unreachable when they are applied again).  Equal consecutive bounds mean the
      scores in between were skipped (ties), e.g. F ``(2, 2, 2, 2)``: 1 visit → 1,
      2 or more → 5.

    For quantile binning ``bk`` is the least good value among the customers that scored
    ``k`` or more, so applying the edges to the same data reproduces the quantile scores
    exactly; applied to next month's data they keep the scale fixed (a new value that
    falls between two old customers gets the lower of their two scores).
    """

    recency_days: tuple[float | None, ...]
    frequency: tuple[float | None, ...]
    monetary: tuple[float | None, ...]
    source: str = "quantile"  # quantile | thresholds | frozen
    monetary_basis: str = "sum"

    def __post_init__(self) -> None:
        for dim in DIMENSIONS:
            bounds = tuple(getattr(self, dim))
            object.__setattr__(self, dim, bounds)
            problem = _check_bounds(bounds, _HIGHER_IS_BETTER[dim])
            if problem:
                raise UsageError(f"分箱边界 {_DIM_LABEL[dim]} 无效：{problem}",
                                 hint="冻结的边界应来自之前某次 RFM 运行的结果")

    def bounds(self, dim: str) -> tuple[float | None, ...]:
        return getattr(self, dim)

    def score(self, dim: str, values: np.ndarray) -> np.ndarray:
        """Scores 1–5 (``int8``) for ``values`` of dimension ``dim`` under these edges."""
        values = np.asarray(values)
        out = np.ones(len(values), dtype=np.int8)
        higher = _HIGHER_IS_BETTER[dim]
        for b in self.bounds(dim):
            if b is None:
                continue
            out += (values >= b) if higher else (values <= b)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (store it with the snapshot; :meth:`from_dict` reads it back)."""
        return {
            "source": self.source,
            "monetary_basis": self.monetary_basis,
            **{dim: [_plain_number(b) for b in self.bounds(dim)] for dim in DIMENSIONS},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edges:
        """Edges from :meth:`to_dict` output (e.g. a stored snapshot), validated."""
        if not isinstance(data, dict):
            raise UsageError("分箱边界格式不对：应为一个对象")
        dims = {}
        for dim in DIMENSIONS:
            raw = data.get(dim)
            if not isinstance(raw, list | tuple) or len(raw) != N_SCORES - 1:
                raise UsageError(f"分箱边界 {_DIM_LABEL[dim]} 应为 {N_SCORES - 1} 个数")
            for b in raw:
                if b is not None and (isinstance(b, bool) or not isinstance(b, int | float)):
                    raise UsageError(f"分箱边界 {_DIM_LABEL[dim]} 含非数字：{b!r}")
            dims[dim] = tuple(raw)
        return cls(**dims, source=str(data.get("source", "frozen")),
                   monetary_basis=str(data.get("monetary_basis", "sum")))

    def describe(self) -> dict[str, list[str]]:
        """For each of R, F, M: one Chinese line per score, 5 down to 1 (for reports/why)."""
        return {_DIM_LABEL[dim]: _describe_bounds(self.bounds(dim), _HIGHER_IS_BETTER[dim],
                                                  _DIM_UNIT[dim])
                for dim in DIMENSIONS}


@dataclass(frozen=True)
class RfmModel:
    """A validated RFM model file (see ``tierctl/models/rfm.toml`` for every key)."""

    path: Path
    name: str
    description: str
    columns: ColumnSet  # for :func:`tierctl.io.ingest.read_export`
    window_days: int
    unit: str  # owner | vin
    monetary: str  # sum | mean
    binning: str  # quantile | thresholds
    high_min: int
    thresholds: Edges
    types: tuple[RfmType, ...]
    red_alert_types: frozenset[int]
    share_far_relative: float
    share_flag_min_customers: int
    key_flows: tuple[KeyFlow, ...]
    new_owner_touch_days: tuple[int, ...]
    dormant_after_unanswered: int
    # fewer scored customers than this: quantile scores are unreliable, say so and
    # suggest the fixed thresholds
    quantile_min_customers: int = 100
    # index = r_high*4 + f_high*2 + m_high → type number (built in __post_init__)
    _lookup: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup = np.zeros(8, dtype=np.int16)
        for t in self.types:
            lookup[int(t.r_high) * 4 + int(t.f_high) * 2 + int(t.m_high)] = t.no
        object.__setattr__(self, "_lookup", lookup)

    @property
    def unit_column(self) -> str:
        return "vin" if self.unit == "vin" else "customer_id"

    def with_unit(self, unit: str) -> RfmModel:
        """The same model counting per owner (``"owner"``) or per vehicle (``"vin"``)."""
        if unit not in ("owner", "vin"):
            raise UsageError(f"统计单位「{unit}」无效", hint="可选：owner（按车主）| vin（按车辆）")
        if unit == self.unit:
            return self
        if unit == "vin" and "vin" not in self.columns.specs:
            raise UsageError("按车辆统计需要模型里声明车架号（[columns.vin]）",
                             hint=f"模型文件：{self.path}")
        needed = _ALWAYS_REQUIRED + (("vin",) if unit == "vin" else ())
        specs = {k: replace(v, required=(k in needed) or (v.required and k != "vin"))
                 for k, v in self.columns.specs.items()}
        return replace(self, unit=unit, columns=ColumnSet(specs, list(self.columns.require_one_of)))

    def with_binning(self, binning: str) -> RfmModel:
        """The same model scoring by quantiles (``"quantile"``) or by its fixed
        ``[thresholds]`` (``"thresholds"``)."""
        if binning not in ("quantile", "thresholds"):
            raise UsageError(f"分箱方式「{binning}」无效", hint="可选：quantile（分位数）| thresholds（固定阈值）")
        return self if binning == self.binning else replace(self, binning=binning)

    def type_by_no(self, no: int) -> RfmType:
        for t in self.types:
            if t.no == no:
                return t
        raise UsageError(f"模型中没有第 {no} 类客户")


def load_rfm_model(name_or_path: str | Path = "rfm") -> RfmModel:
    """Load and validate an RFM model (packaged name or path).

    Every missing, mistyped, out-of-range or unknown key raises :class:`ModelError`
    naming the file and the key, before any customer is scored.
    """
    root = Section.load(name_or_path, kind="rfm")
    _no_unknown_keys(root, {"kind", "name", "description", "columns", "settings", "thresholds",
                            "alerts", "migration", "care", "types"})

    settings = root.section("settings", {})
    _no_unknown_keys(settings, {"window_days", "unit", "monetary", "binning", "high_min", "quantile_min_customers"})
    window_days = settings.int("window_days", 365, min=1, max=36500)
    unit = settings.choice("unit", ("owner", "vin"), "owner")
    monetary = settings.choice("monetary", ("sum", "mean"), "sum")
    binning = settings.choice("binning", ("quantile", "thresholds"), "quantile")
    high_min = settings.int("high_min", 4, min=2, max=N_SCORES)
    quantile_min = settings.int("quantile_min_customers", 100, min=0)

    columns = _load_columns(root, unit)
    thresholds = _load_thresholds(root.section("thresholds"), monetary)
    types = _load_types(root)
    type_nos = {t.no for t in types}

    alerts = root.section("alerts", {})
    _no_unknown_keys(alerts, {"red_alert_types", "share_far_relative", "share_flag_min_customers"})
    red = alerts.list("red_alert_types", [2, 4], of=int)
    for i, no in enumerate(red):
        if no not in type_nos:
            raise alerts.error(f"red_alert_types[{i}]", f"没有第 {no} 类客户",
                               hint=f"可用的类型编号：{sorted(type_nos)}")
    share_far = alerts.number("share_far_relative", 0.5, min=0)
    flag_min = alerts.int("share_flag_min_customers", 50, min=0)

    flows: list[KeyFlow] = []
    migration = root.section("migration", {})
    _no_unknown_keys(migration, {"key_flows"})
    seen_keys: set[str] = set()
    for fs in migration.sections("key_flows", []):
        _no_unknown_keys(fs, {"key", "from_type", "to_type", "name_zh", "name_en", "target_zh",
                              "target_pct"})
        flow = KeyFlow(key=fs.str("key"), from_type=fs.int("from_type"), to_type=fs.int("to_type"),
                       name_zh=fs.str("name_zh"), name_en=fs.str("name_en", ""),
                       target_zh=fs.str("target_zh", ""),
                       target_pct=float(fs.number("target_pct", 0, min=0, max=100)))
        for k in ("from_type", "to_type"):
            if getattr(flow, k) not in type_nos:
                raise fs.error(k, f"没有第 {getattr(flow, k)} 类客户")
        if flow.key in seen_keys:
            raise fs.error("key", f"重复的流向名「{flow.key}」")
        seen_keys.add(flow.key)
        flows.append(flow)

    care = root.section("care", {})
    _no_unknown_keys(care, {"new_owner_touch_days", "dormant_after_unanswered"})
    touch_days = care.list("new_owner_touch_days", [7, 15, 30, 60, 90], of=int)
    if any(d < 0 for d in touch_days) or touch_days != sorted(set(touch_days)):
        raise care.error("new_owner_touch_days", "应为从小到大、不重复的非负天数")
    dormant = care.int("dormant_after_unanswered", 3, min=1)

    return RfmModel(
        path=root.path,
        name=root.str("name", root.path.stem),
        description=root.str("description", ""),
        columns=columns,
        window_days=window_days,
        unit=unit,
        monetary=monetary,
        binning=binning,
        high_min=high_min,
        thresholds=thresholds,
        types=types,
        red_alert_types=frozenset(red),
        share_far_relative=float(share_far),
        share_flag_min_customers=flag_min,
        key_flows=tuple(flows),
        new_owner_touch_days=tuple(touch_days),
        dormant_after_unanswered=dormant,
        quantile_min_customers=quantile_min,
    )


def _no_unknown_keys(sec: Section, allowed: set[str]) -> None:
    # A misspelt key (windows_days) would otherwise be ignored silently and the default used.
    for k in sec.keys():
        if k not in allowed:
            raise sec.error(k, "未知的键", hint=f"可用的键：{', '.join(sorted(allowed))}")


def _load_columns(root: Section, unit: str) -> ColumnSet:
    """The input columns, read by the shared ingest exactly as ``score`` reads its own
    (:meth:`ColumnSet.from_model`), plus the checks RFM needs: the kinds it relies on and
    the columns it cannot do without (the VIN too when the unit is the vehicle)."""
    sec = root.section("columns")
    for name in sec.keys():
        cs = sec.section(name)
        _no_unknown_keys(cs, {"kind", "aliases", "required", "label"})
        kind = cs.choice("kind", KINDS)
        expected = _EXPECTED_KIND.get(name)
        if expected is not None and kind != expected:
            raise cs.error("kind", f"列 {name} 的类型必须是 {expected}，实际是 {kind}")
    needed = _ALWAYS_REQUIRED + (("vin",) if unit == "vin" else ())
    for name in needed:
        if name not in sec:
            raise sec.error(name, "缺少这一列的定义", hint=f"RFM 至少需要：{', '.join(needed)}")
    columns = ColumnSet.from_model(root)
    return _require(columns, needed)


def _require(columns: ColumnSet, names: Sequence[str]) -> ColumnSet:
    # Columns the job cannot do without are required at ingest whatever the file says,
    # so a missing one is reported with the headers the file does have.
    specs = {k: (replace(v, required=True) if k in names else v) for k, v in columns.specs.items()}
    return ColumnSet(specs, list(columns.require_one_of))


def _load_thresholds(sec: Section, monetary: str) -> Edges:
    _no_unknown_keys(sec, set(DIMENSIONS))
    dims = {}
    for dim in DIMENSIONS:
        bounds = sec.list(dim, of=(int, float))
        if len(bounds) != N_SCORES - 1:
            raise sec.error(dim, f"应为 {N_SCORES - 1} 个边界（依次对应 2、3、4、5 分），实际 {len(bounds)} 个")
        if any(not math.isfinite(b) for b in bounds):
            raise sec.error(dim, "边界必须是有限的数字")
        if dim != "monetary" and any(b < 0 for b in bounds):
            raise sec.error(dim, "边界不能为负数")
        problem = _check_bounds(tuple(bounds), _HIGHER_IS_BETTER[dim])
        if problem:
            raise sec.error(dim, problem)
        dims[dim] = tuple(bounds)
    return Edges(**dims, source="thresholds", monetary_basis=monetary)


def _load_types(root: Section) -> tuple[RfmType, ...]:
    types: list[RfmType] = []
    patterns: dict[str, int] = {}
    for ts in root.sections("types"):
        _no_unknown_keys(ts, {"no", "name_zh", "name_en", "pattern", "share_pct", "profit_pct",
                              "strategy_zh", "strategy_en"})
        no = ts.int("no", min=1)
        pattern = ts.str("pattern").strip().upper()
        if len(pattern) != 3 or any(ch not in "HL" for ch in pattern):
            raise ts.error("pattern", f"「{pattern}」无效：应为 3 个字母，依次表示 R、F、M 的高(H)或低(L)，如 HLH")
        if pattern in patterns:
            raise ts.error("pattern", f"与第 {patterns[pattern]} 类的组合 {pattern} 重复")
        if any(t.no == no for t in types):
            raise ts.error("no", f"类型编号 {no} 重复")
        patterns[pattern] = no
        types.append(RfmType(
            no=no, name_zh=ts.str("name_zh"), name_en=ts.str("name_en", ""),
            r_high=pattern[0] == "H", f_high=pattern[1] == "H", m_high=pattern[2] == "H",
            share_pct=_pct_range(ts, "share_pct"), profit_pct=_pct_range(ts, "profit_pct"),
            strategy_zh=ts.str("strategy_zh"), strategy_en=ts.str("strategy_en", ""),
        ))
    missing = sorted({a + b + c for a in "HL" for b in "HL" for c in "HL"} - set(patterns))
    if missing:
        raise root.error("types", f"8 种高低组合必须各有一类，缺少：{', '.join(missing)}")
    return tuple(types)


def _pct_range(sec: Section, name: str) -> tuple[float, float]:
    vals = sec.list(name, of=(int, float))
    if len(vals) != 2 or not (0 <= vals[0] <= vals[1] <= 100):
        raise sec.error(name, f"应为 [下限, 上限]，0 ≤ 下限 ≤ 上限 ≤ 100，实际是 {vals!r}")
    return float(vals[0]), float(vals[1])


def _check_bounds(bounds: tuple[float | None, ...], higher: bool) -> str | None:
    if len(bounds) != N_SCORES - 1:
        return f"应为 {N_SCORES - 1} 个边界，实际 {len(bounds)} 个"
    seen_none = False
    prev = None
    for b in bounds:
        if b is None:
            seen_none = True
            continue
        if seen_none:
            # once a score is unreachable, every higher score must be too
            return "空缺（None）之后不能再有边界"
        if isinstance(b, float) and math.isnan(b):
            return "边界不能是 NaN"
        if prev is not None and (b < prev if higher else b > prev):
            return ("边界应从小到大排列（依次对应 2、3、4、5 分）" if higher
                    else "天数边界应从大到小排列（依次对应 2、3、4、5 分）")
        prev = b
    return None


def _describe_bounds(bounds: Sequence[float | None], higher: bool, unit: str) -> list[str]:
    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{_fmt_number(v)}{unit}"

    lines = []
    for k in range(N_SCORES, 0, -1):
        lo = bounds[k - 2] if k >= 2 else None  # what reaching k takes
        nxt = bounds[k - 1] if k <= N_SCORES - 1 else None  # what reaching k+1 takes
        if k >= 2 and lo is None:
            lines.append(f"{k} 分：无人达到")
            continue
        if k >= 2 and k <= N_SCORES - 1 and nxt is not None and nxt == lo:
            lines.append(f"{k} 分：空缺（并列的数值都得了更高分）")
            continue
        op, nop = ("≥", "<") if higher else ("≤", ">")
        if k == 1:
            first = bounds[0]
            lines.append("1 分：全部" if first is None else f"1 分：{nop} {fmt(first)}")
        elif nxt is None or k == N_SCORES:
            lines.append(f"{k} 分：{op} {fmt(lo)}")
        else:
            lines.append(f"{k} 分：{op} {fmt(lo)} 且 {nop} {fmt(nxt)}")
    return lines


def _fmt_number(v: Any) -> str:
    """12000 → "12000", 99.5 → "99.5", 1234.567 → "1234.57" (never scientific notation)."""
    p = _plain_number(v)
    return str(p) if isinstance(p, int) else f"{p:.2f}".rstrip("0").rstrip(".")


def _plain_number(v: Any) -> int | float | None:
    """numpy scalars → int/float (integral floats → int) for JSON and messages."""
    if v is None:
        return None
    f = float(v)
    return int(f) if f.is_integer() else f


# =====================================================================================
# Type mapping
# =====================================================================================
def rfm_type(r: int, f: int, m: int, model: RfmModel) -> RfmType:
    """The type of one (r, f, m) score triple; high means score ≥ ``model.high_min``."""
    for name, v in (("R", r), ("F", f), ("M", m)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 1 <= v <= N_SCORES:
            raise UsageError(f"{name} 分应为 1–{N_SCORES} 的整数，实际是 {v!r}")
    no = int(rfm_types(np.array([r]), np.array([f]), np.array([m]), model)[0])
    return model.type_by_no(no)


def rfm_types(r: np.ndarray | pd.Series, f: np.ndarray | pd.Series, m: np.ndarray | pd.Series,
              model: RfmModel) -> np.ndarray:
    """Vectorised :func:`rfm_type`: arrays of scores → array of type numbers."""
    hi = model.high_min
    idx = ((np.asarray(r) >= hi).astype(np.int8) * 4 + (np.asarray(f) >= hi).astype(np.int8) * 2
           + (np.asarray(m) >= hi).astype(np.int8))
    return model._lookup[idx]


# =====================================================================================
# Scoring
# =====================================================================================
def quantile_scores(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Tie-safe quantile scores 1–5: ``(rank_min - 1) * 5 // n + 1``.

    ``rank_min`` ranks in the good direction (worst = 1) with ties taking the lowest rank
    of their group, so equal values share a score whatever the row order, and no bin
    edge has to be unique (the failure of ``pd.qcut``).  Works for n = 0, 1, 2.
    """
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    good = values if higher_is_better else -values
    # rank_min = 1 + number of values strictly worse; via the sorted unique values
    uniq, inverse, counts = np.unique(good, return_inverse=True, return_counts=True)
    below = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank_min = below[inverse] + 1
    return ((rank_min - 1) * N_SCORES // n + 1).astype(np.int8)


def _edges_from_scores(values: np.ndarray, scores: np.ndarray,
                       higher: bool) -> tuple[float | None, ...]:
    """The least good value among those scoring ≥ k, for k = 2..5 (see :class:`Edges`)."""
    bounds: list[float | None] = []
    for k in range(2, N_SCORES + 1):
        sel = values[scores >= k]
        if len(sel) == 0:
            bounds.append(None)
        else:
            bounds.append(_plain_number(sel.min() if higher else sel.max()))
    return tuple(bounds)


# =====================================================================================
# Result
# =====================================================================================
@dataclass
class RfmResult:
    """Everything one RFM run produced.

    ``customers``: one row per unit, sorted by type, then M (high first), then id; columns
    ``customer_id`` (``vin`` first when the unit is the vehicle; ``customer_id`` is then the
    owner on the latest visit), ``name``, ``phone``, ``last_visit``, ``recency_days``,
    ``frequency``, ``monetary``, ``revenue`` (net spend, whatever the M basis), ``r``,
    ``f``, ``m``, ``rfm`` ("5-1-4"), ``type_no``, ``type_name``, ``strategy``, ``kol``,
    ``kol_flag`` (a KOL with low M: flagged so the influence is not buried under a low
    score), ``red_alert`` (type listed in the model's ``red_alert_types``).

    ``summary``: one row per type (model order): ``type_no``, ``type_name``,
    ``type_name_en``, ``customers``, ``share_pct``, ``revenue``, ``revenue_share_pct``,
    ``usual_share_lo``/``hi``, ``usual_profit_lo``/``hi`` (percent), ``share_flag``
    (``"above"``/``"below"`` when the share is outside the usual range by more than
    ``share_far_relative`` of the bound, only with ≥ ``share_flag_min_customers``
    customers; else ``None``) and ``red_alert``.

    ``quality``: dicts ``{kind, row, customer_id, detail}`` sorted by kind then row.
    ``row`` is the Excel row (``None`` for notes about a whole customer or many rows);
    ``customer_id`` is the row's customer, or for notes about a unit its key (the VIN
    when the unit is the vehicle).  Kinds: ``missing_value``, ``after_as_of``,
    ``outside_window`` (one count), ``refund``, ``refund_only``, ``negative_net``,
    ``shared_order_id``, ``missing_order_id`` (one count), ``id_name_conflict``,
    ``small_sample``, ``ties``.
    """

    as_of: date
    window_start: date
    window_days: int
    unit: str
    customers: pd.DataFrame
    summary: pd.DataFrame
    edges: Edges
    binning: str  # quantile | thresholds | frozen
    frequency_basis: str  # order_id | visit_date
    monetary_basis: str  # sum | mean
    quality: list[dict[str, Any]]
    model_name: str = "rfm"
    # Quantile scores on fewer customers than the model's quantile_min_customers: how
    # many, the minimum, the model's fixed thresholds and the customers per type they
    # would give on this very data (plain JSON); None when the population is big enough
    # or the scores did not come from quantiles.
    small_population: dict[str, Any] | None = None

    @property
    def unit_column(self) -> str:
        return "vin" if self.unit == "vin" else "customer_id"

    def _json_fields(self) -> dict[str, str]:
        # JSON key → customers column, in the order a reader expects them
        fields = {self.unit_column: self.unit_column}
        if self.unit == "vin":
            fields["customer_id"] = "customer_id"
        fields.update({k: k for k in ("recency_days", "frequency", "monetary", "r", "f", "m")})
        fields.update({"type": "type_no", "type_name": "type_name", "red_alert": "red_alert",
                       "kol_flag": "kol_flag"})
        return fields

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON types (no numpy, no NaN), for ``--format json``.

        Keys: ``as_of``, ``window_start``, ``window_days``, ``unit``, ``binning``,
        ``frequency_basis``, ``monetary_basis``, ``edges`` (:meth:`Edges.to_dict`),
        ``customers`` (unit key, [``customer_id``,] ``recency_days``, ``frequency``,
        ``monetary``, ``r``, ``f``, ``m``, ``type``, ``type_name``, ``red_alert``,
        ``kol_flag``; no names or phone numbers), ``summary`` and ``quality``.
        """
        c = self.customers
        fields = self._json_fields()
        columns = [_plain_list(c[col]) for col in fields.values()]
        keys = list(fields)
        customers = [dict(zip(keys, vals, strict=True)) for vals in zip(*columns, strict=True)]
        return self._json_document(customers)

    def _json_document(self, customers: Any, quality: Any = None) -> dict[str, Any]:
        summary = [{k: _plain(v) for k, v in row.items()}
                   for row in self.summary.to_dict(orient="records")]
        return {
            "as_of": self.as_of.isoformat(),
            "window_start": self.window_start.isoformat(),
            "window_days": self.window_days,
            "unit": self.unit,
            "binning": self.binning,
            "small_population": self.small_population,
            "frequency_basis": self.frequency_basis,
            "monetary_basis": self.monetary_basis,
            "edges": self.edges.to_dict(),
            "customers": customers,
            "summary": summary,
            "quality": quality if quality is not None else
            [{k: _plain(v) for k, v in q.items()} for q in self.quality],
        }

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json` as UTF-8 JSON, one customer (and one note) per line:
        ``json.loads`` of it equals :meth:`to_json`.  The long lists are rendered column
        by column in Arrow and never become Python objects (half a million customers in
        well under a second; a dict and a ``json.dumps`` per customer take seconds)."""
        c = self.customers
        fields = self._json_fields()
        customers = _Verbatim(json_records({k: c[col] for k, col in fields.items()}))
        quality = _Verbatim(json_records(_quality_columns(self.quality)))
        return json_document_bytes(self._json_document(customers, quality))

    def to_json_text(self) -> str:
        """:meth:`to_json_bytes` as text."""
        return self.to_json_bytes().decode("utf-8")


def _quality_columns(quality: list[dict[str, Any]]) -> dict[str, pd.Series]:
    keys = ("kind", "row", "customer_id", "detail")
    data = {k: [q.get(k) for q in quality] for k in keys}
    return {"kind": pd.Series(data["kind"], dtype="str"),
            "row": pd.Series(pd.array(data["row"], dtype="Int64")),
            "customer_id": pd.Series([None if v is None else str(v) for v in data["customer_id"]], dtype="str"),
            "detail": pd.Series(data["detail"], dtype="str")}


class _Verbatim:
    """Pre-rendered JSON list items, inserted as they are by :func:`json_document_bytes`."""

    def __init__(self, items: pa.Array) -> None:
        self.items = items


def json_document_bytes(doc: dict[str, Any]) -> bytes:
    """``doc`` as UTF-8 JSON: top-level keys on their own lines, list items one per line.
    Values go through the C encoder; :class:`_Verbatim` lists are inserted as given."""
    import json

    def enc(v: Any) -> bytes:
        return json.dumps(v, ensure_ascii=False).encode("utf-8")

    parts: list[bytes] = []
    for k, v in doc.items():
        if isinstance(v, _Verbatim):
            body = b"[]" if len(v.items) == 0 else b"[\n    " + _join_large(v.items, ",\n    ") + b"\n  ]"
        elif isinstance(v, list) and v:
            body = b"[\n    " + b",\n    ".join(map(enc, v)) + b"\n  ]"
        else:
            body = enc(v)
        parts.append(b"  " + enc(k) + b": " + body)
    return b"{\n" + b",\n".join(parts) + b"\n}\n"


def json_document(doc: dict[str, Any]) -> str:
    """:func:`json_document_bytes` as text."""
    return json_document_bytes(doc).decode("utf-8")


def _join_large(items: pa.Array, sep: str) -> bytes:
    import pyarrow.compute as pc

    items = items.cast(pa.large_string())
    lists = pa.LargeListArray.from_arrays(pa.array([0, len(items)], type=pa.int64()), items)
    joined = pc.binary_join(lists, pa.scalar(sep, pa.large_string()))
    return joined.cast(pa.large_binary())[0].as_buffer().to_pybytes()


def json_records(columns: dict[str, pd.Series]) -> pa.Array:
    """One JSON object text per row (``{"key": value, ...}``, the spacing of
    ``json.dumps``), built column by column with Arrow compute.  Text is escaped as JSON
    requires (quotes, backslashes, control characters); floats use the shortest text
    that reads back as the same number (``.0`` kept on whole numbers, as Python does);
    missing values are ``null``."""
    import json

    import pyarrow.compute as pc

    pieces: list[Any] = []
    for i, (key, s) in enumerate(columns.items()):
        lead = ("{" if i == 0 else ", ") + json.dumps(key, ensure_ascii=False) + ": "
        pieces += [pa.scalar(lead, pa.large_string()), _json_column(s)]
    pieces.append(pa.scalar("}", pa.large_string()))
    if not columns:
        return pa.array([], pa.large_string())
    return pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))


def _json_column(s: pd.Series) -> pa.Array:
    import json

    import pyarrow.compute as pc

    null = pa.scalar("null", pa.large_string())
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        arr = pa.array(s.to_numpy(dtype=object if s.hasnans else bool), type=pa.bool_(), from_pandas=True)
        out = pc.if_else(arr, pa.scalar("true", pa.large_string()), pa.scalar("false", pa.large_string()))
    elif pd.api.types.is_integer_dtype(dtype):
        out = pc.cast(pa.array(s, from_pandas=True), pa.large_string())
    elif pd.api.types.is_float_dtype(dtype):
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
        arr = pa.array(vals, from_pandas=True)  # NaN → null
        txt = pc.cast(arr, pa.large_string())
        whole = pc.match_substring_regex(txt, r"^-?\d+$")
        txt = pc.if_else(whole, pc.binary_join_element_wise(txt, pa.scalar(".0", pa.large_string()),
                                                            pa.scalar("", pa.large_string())), txt)
        finite = pa.array(np.isfinite(vals))
        out = pc.if_else(finite, txt, null)
    else:
        arr = pa.array(s.astype("str").array if not isinstance(dtype, pd.StringDtype) else s.array,
                       type=pa.large_string(), from_pandas=True)
        if pc.any(pc.match_substring_regex(arr, r"[\x00-\x1f]")).as_py():
            # control characters are rare: let the json module spell them
            out = pa.array([None if v is None else json.dumps(v, ensure_ascii=False)
                            for v in arr.to_pylist()], type=pa.large_string())
        else:
            esc = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
            q = pa.scalar('"', pa.large_string())
            out = pc.binary_join_element_wise(q, esc, q, pa.scalar("", pa.large_string()))
    return pc.fill_null(out.cast(pa.large_string()), null)


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, pd.Timestamp | datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return v


def _plain_list(s: pd.Series) -> list:
    # tolist() already gives Python scalars for numpy dtypes; fix NA/NaN for JSON
    if s.dtype.kind in "iub":
        return s.tolist()
    return [_plain(v) for v in s.tolist()]


# =====================================================================================
# compute_rfm
# =====================================================================================
class _Quality:
    """Collects data-quality notes; per-row notes are built from arrays in one pass."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def rows(self, kind: str, rows: np.ndarray | None, ids: Iterable, details: Iterable[str]) -> None:
        # tolist() turns a column into Python values in one C pass (tens of thousands of
        # refunds or future rows are common in a big export)
        ids = ids.tolist() if isinstance(ids, pd.Series | pd.Index | np.ndarray) else list(ids)
        # -1 = the frame had no _row column (a library caller): say "unknown", not row -1
        rows_l = ([r if r >= 0 else None for r in rows.tolist()] if rows is not None
                  else [None] * len(ids))
        self.items.extend({"kind": kind, "row": r, "customer_id": i if i is None or type(i) is str else _plain(i),
                           "detail": d} for r, i, d in zip(rows_l, ids, details, strict=True))

    def one(self, kind: str, detail: str, row: int | None = None, customer_id: str | None = None) -> None:
        self.items.append({"kind": kind, "row": row, "customer_id": customer_id, "detail": detail})

    def sorted(self) -> list[dict[str, Any]]:
        order = {k: i for i, k in enumerate(_QUALITY_ORDER)}
        return sorted(self.items, key=lambda q: (order.get(q["kind"], len(order)),
                                                 q["row"] if q["row"] is not None else -1,
                                                 str(q["customer_id"] or ""), q["detail"]))


def compute_rfm(visits: pd.DataFrame, model: RfmModel, as_of: date, *,
                edges: Edges | None = None) -> RfmResult:
    """Score every unit (owner or vehicle) on R, F, M and assign one of the 8 types.

    ``visits``: one row per visit / invoice line with the canonical columns of the model
    (``customer_id``, ``visit_date``, ``amount`` required; ``name``, ``phone``, ``vin``,
    ``order_id``, ``kol`` optional) and ``_row`` (the Excel row number, used in notes).

    ``edges``: boundaries from an earlier result (``result.edges``) to score on the same
    scale as that run (month-over-month comparability).  Without them the model's
    ``binning`` decides: quantile edges computed from this data, or the fixed thresholds.
    See the module docstring for every rule.

    Implementation note: every text column is turned into integer codes once, and all
    per-unit work is numpy on those codes over the full row range (rows that do not count
    carry code -1), so no column of millions of strings is ever copied or compared twice.
    """
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    if not isinstance(as_of, date):
        raise UsageError(f"评估日期无效：{as_of!r}")
    if edges is not None and edges.monetary_basis != model.monetary:
        raise UsageError(f"冻结的边界按 M={edges.monetary_basis} 计算，本模型是 M={model.monetary}",
                         hint="两次运行的 M 口径必须一致才能比较")

    unit_col = model.unit_column
    _require_columns(visits, unit_col)
    q = _Quality()
    window_start = as_of - timedelta(days=model.window_days - 1)
    as_of_day = _date_to_day(as_of)
    start_day = _date_to_day(window_start)

    n_rows = len(visits)
    rows = (visits["_row"].to_numpy(dtype=np.int64, na_value=-1) if "_row" in visits
            else np.full(n_rows, -1, dtype=np.int64))
    unit_s = _as_text(visits[unit_col])
    id_s = unit_s if unit_col == "customer_id" else _as_text(visits["customer_id"])
    day = _to_days(visits["visit_date"])
    amount = _to_float(visits["amount"])
    raw_code, uniques = _factorize(unit_s)  # -1 where the unit is missing

    # --- rows that cannot be used: missing unit, date or amount -----------------------
    miss_unit = raw_code < 0
    miss_date = day == _NAT_DAY
    miss_amount = np.isnan(amount)
    missing = miss_unit | miss_date | miss_amount
    if missing.any():
        idx = np.flatnonzero(missing)
        labels = {unit_col: miss_unit, "visit_date": miss_date, "amount": miss_amount}
        details = ["缺少 " + "、".join(c for c, m in labels.items() if m[i]) + "，该行未计入"
                   for i in idx]
        q.rows("missing_value", rows[idx], id_s.iloc[idx], details)

    # --- rows after the as-of date: dropped and reported ------------------------------
    future = ~missing & (day > as_of_day)
    if future.any():
        idx = np.flatnonzero(future)
        details = [f"日期 {d} 晚于评估日 {as_of.isoformat()}，该行未计入"
                   for d in _days_to_iso(day[idx])]
        q.rows("after_as_of", rows[idx], id_s.iloc[idx], details)

    old = ~missing & (day < start_day)
    if old.any():
        q.one("outside_window", f"{int(old.sum())} 行早于统计窗口起点 {window_start.isoformat()}"
                                f"（窗口 {model.window_days} 天），未计入")
    keep = ~(missing | future | old)

    cents = np.zeros(n_rows, dtype=np.int64)
    cents[keep] = np.rint(amount[keep] * 100)
    refund = keep & (cents < 0)
    visit = keep & ~refund
    if refund.any():
        idx = np.flatnonzero(refund)
        details = [f"退款 {c / 100:.2f} 元：冲减 M，不算到店" for c in cents[idx]]
        q.rows("refund", rows[idx], id_s.iloc[idx], details)

    # Units need at least one non-refund visit in the window to be scored.
    n_all = len(uniques)
    has_visit = np.bincount(raw_code[visit], minlength=n_all) > 0
    lonely = np.flatnonzero((np.bincount(raw_code[refund], minlength=n_all) > 0) & ~has_visit)
    if len(lonely):
        q.rows("refund_only", None, uniques[lonely],
               ["窗口内只有退款、没有到店记录，未参与评分"] * len(lonely))
    remap = np.full(n_all, -1, dtype=np.int64)
    remap[has_visit] = np.arange(int(has_visit.sum()))
    code = np.full(n_rows, -1, dtype=np.int64)  # unit 0..n-1 for rows that count, else -1
    code[keep] = remap[raw_code[keep]]
    counted = code >= 0  # in-window visits and refunds of scored units
    unit_ids = uniques[has_visit]
    n = len(unit_ids)

    # --- R: days since the latest non-refund visit ------------------------------------
    last_day = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_day, code[visit], day[visit])
    recency = as_of_day - last_day

    # --- M: net spend in integer fen (refunds included) -------------------------------
    net_cents = np.zeros(n, dtype=np.int64)
    np.add.at(net_cents, code[counted], cents[counted])
    negative = np.flatnonzero(net_cents < 0)
    if len(negative):
        q.rows("negative_net", None, unit_ids[negative],
               [f"窗口内净消费为负（{c / 100:.2f} 元）：退款对应的消费可能在窗口之前"
                for c in net_cents[negative]])

    # --- F: distinct visits ------------------------------------------------------------
    frequency, basis = _frequency(visits, visit, code, day - start_day, n, rows, q)

    if model.monetary == "mean":
        monetary = np.rint(net_cents / frequency) / 100  # fen-rounded mean per visit
    else:
        monetary = net_cents / 100
    revenue = net_cents / 100

    # --- scores --------------------------------------------------------------------------
    values = {"recency_days": recency, "frequency": frequency, "monetary": monetary}
    small: dict[str, Any] | None = None
    if edges is not None:
        used, binning = edges, "frozen"
        scores = {dim: edges.score(dim, values[dim]) for dim in DIMENSIONS}
    elif model.binning == "thresholds":
        used, binning = model.thresholds, "thresholds"
        scores = {dim: used.score(dim, values[dim]) for dim in DIMENSIONS}
    else:
        binning = "quantile"
        scores = {dim: quantile_scores(values[dim], _HIGHER_IS_BETTER[dim]) for dim in DIMENSIONS}
        used = Edges(**{dim: _edges_from_scores(values[dim], scores[dim], _HIGHER_IS_BETTER[dim])
                        for dim in DIMENSIONS},
                     source="quantile", monetary_basis=model.monetary)
        _note_quantile_limits(values, scores, n, q, model.quantile_min_customers)
        if 0 < n < model.quantile_min_customers:
            small = _small_population(values, n, model)

    r, f, m = scores["recency_days"], scores["frequency"], scores["monetary"]
    type_no = rfm_types(r, f, m, model)

    # --- descriptive columns: the latest non-empty value per unit ------------------------
    # "latest" = latest date, then highest Excel row, so the choice never depends on order
    order_key = np.where(counted, day, 0) * np.int64(1 << 40) + np.maximum(rows, 0)
    latest = {}
    shared: dict[str, np.ndarray] = {}  # the latest counted row per unit, found once
    for col in ("customer_id", "name", "phone"):
        if col != unit_col and col in visits:
            latest[col] = _latest_value(_as_text(visits[col]), code, order_key, n, shared)
    if unit_col == "customer_id" and "name" in latest:
        _note_name_conflicts(_as_text(visits["name"]), latest["name"], code, unit_ids, q)
    kol = np.zeros(n, dtype=bool)
    if "kol" in visits:
        sel = _to_bool(visits["kol"]) & counted
        kol = np.bincount(code[sel], minlength=n) > 0

    customers = _customers_frame(model, unit_col, unit_ids, latest, last_day, recency, frequency,
                                 monetary, revenue, r, f, m, type_no, kol)
    summary = _summary(model, customers)
    return RfmResult(
        as_of=as_of, window_start=window_start, window_days=model.window_days, unit=model.unit,
        customers=customers, summary=summary, edges=used, binning=binning,
        frequency_basis=basis, monetary_basis=model.monetary, quality=q.sorted(),
        model_name=model.name, small_population=small,
    )


_NAT_DAY = np.iinfo(np.int64).min
_EPOCH = date(1970, 1, 1)
_TICKS_PER_DAY = {"D": 1, "h": 24, "m": 1440, "s": 86_400, "ms": 86_400_000,
                  "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _date_to_day(d: date) -> int:
    return (d - _EPOCH).days


def _days_to_iso(days: np.ndarray) -> list[str]:
    return [str(d) for d in days.astype("datetime64[D]")]


def _require_columns(visits: pd.DataFrame, unit_col: str) -> None:
    needed = list(dict.fromkeys([unit_col, *_ALWAYS_REQUIRED]))
    missing = [c for c in needed if c not in visits.columns]
    if missing:
        hint = ("按车辆统计需要「车架号/VIN」列；或在模型里改用 unit = \"owner\""
                if "vin" in missing else "检查导出文件的表头，或用列映射文件指明对应列")
        raise InputError("缺少 RFM 需要的列：" + "、".join(missing), hint=hint)


def _as_text(s: pd.Series) -> pd.Series:
    # Ids must stay text (leading zeros); ingest already gives strings, library callers may not.
    if isinstance(s.dtype, pd.StringDtype):
        return s
    return s.astype("str")


def _to_days(s: pd.Series) -> np.ndarray:
    """Whole days since 1970-01-01 as int64 (``_NAT_DAY`` where the date is missing)."""
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        try:
            s = pd.to_datetime(s, errors="raise")
        except (ValueError, TypeError) as exc:
            raise InputError("到店日期列含有无法识别的日期",
                             hint="日期请写成 2026-11-23 这样的格式；用 tierctl 读取导出文件时"
                                  "会自动识别 Excel 日期和 2026/11/23、2026年11月23日 等写法") from exc
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_localize(None)  # wall-clock date where the visit happened
    arr = s.to_numpy()
    unit, step = np.datetime_data(arr.dtype)
    per_day = _TICKS_PER_DAY[unit] // step
    ints = arr.view(np.int64)
    # floor division keeps times of day on their date, also before 1970
    return np.where(np.isnat(arr), _NAT_DAY, ints // per_day)


def _to_float(s: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        converted = pd.to_numeric(s, errors="coerce")
        bad = converted.isna() & s.notna()
        if bad.any():
            pos = np.flatnonzero(bad.to_numpy())[:20]
            raise InputError("金额列含有不是数字的值", problems=[
                Problem(None, "amount", s.iloc[i], "应为数字") for i in pos], total=int(bad.sum()),
                hint="金额只能是数字，退款写负数")
        s = converted
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _to_bool(s: pd.Series) -> np.ndarray:
    # empty = not a KOL: the flag is opt-in, a blank cell says nothing about influence
    if not pd.api.types.is_bool_dtype(s.dtype):
        try:
            s = s.astype("boolean")
        except (TypeError, ValueError) as exc:
            raise InputError("KOL 列应为是/否", hint=str(exc)) from exc
    return s.to_numpy(dtype=bool, na_value=False)


def _frequency(visits: pd.DataFrame, visit: np.ndarray, code: np.ndarray, day_off: np.ndarray,
               n: int, rows: np.ndarray, q: _Quality) -> tuple[np.ndarray, str]:
    """Distinct visits per unit and the basis used (``order_id`` or ``visit_date``).

    ``day_off`` is days since the window start (0..window-1 on counted rows).  Distinct
    (unit, visit) pairs are counted by sorting integer keys, far cheaper than hashing
    millions of pairs.
    """
    vidx = np.flatnonzero(visit)
    vcode = code[vidx]
    vday = day_off[vidx]
    width_day = int(vday.max()) + 1 if len(vday) else 1

    def distinct_per_unit(unit: np.ndarray, sub: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        uniq = _sorted_unique(unit * np.int64(width) + sub)
        return np.bincount(uniq // width, minlength=n), uniq

    has_id = None
    if "order_id" in visits:
        order_s = _as_text(visits["order_id"])
        has_id = order_s.notna().to_numpy()[vidx]
        if not has_id.any():
            has_id = None
    if has_id is None:
        freq, _ = distinct_per_unit(vcode, vday, width_day)
        return freq.astype(np.int64), "visit_date"

    # codes for the whole column, then the visit rows' codes: taking millions of strings
    # out of the column first would copy them all
    all_codes, ouniq = _factorize_runs(order_s)
    ocode = all_codes[vidx[has_id]]
    n_orders = max(len(ouniq), 1)
    freq, pairs = distinct_per_unit(vcode[has_id], ocode, n_orders)

    # The same order number under two customers is an export error worth showing.
    per_order = np.bincount(pairs % n_orders, minlength=n_orders)
    shared = np.flatnonzero(per_order > 1)
    if len(shared):
        q.rows("shared_order_id", None, [None] * len(shared),
               [f"单号「{ouniq[i]}」出现在 {per_order[i]} 个客户名下，每个客户各计一次到店"
                for i in shared])

    if not has_id.all():
        # Rows without a number: a visit per distinct date, unless that unit has a
        # numbered order the same day (then they are lines of that order).
        no_id = ~has_id
        numbered_days = _sorted_unique(vcode[has_id] * np.int64(width_day) + vday[has_id])
        cand = vcode[no_id] * np.int64(width_day) + vday[no_id]
        pos = np.minimum(np.searchsorted(numbered_days, cand), max(len(numbered_days) - 1, 0))
        extra = (numbered_days[pos] != cand) if len(numbered_days) else np.ones(len(cand), bool)
        f_extra, _ = distinct_per_unit(vcode[no_id][extra], vday[no_id][extra], width_day)
        freq = freq + f_extra
        first = rows[vidx[no_id]]
        first = first[first >= 0]
        q.one("missing_order_id",
              f"{int(no_id.sum())} 行到店记录没有工单号，按到店日期计次（同一天已有工单的并入该工单）",
              row=int(first.min()) if len(first) else None)
    return freq.astype(np.int64), "order_id"


def _factorize(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize`` with int64 codes (-1 for missing).  For Arrow-backed text it is
    one Arrow hash pass already, the fastest there is without a new dependency."""
    codes, uniq = pd.factorize(s)
    return codes.astype(np.int64, copy=False), pd.Index(uniq)


def _factorize_runs(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """:func:`_factorize` for a column that is often sorted (order numbers: exports are
    sorted by them, or by date with numbers that start with the date).  When the
    non-missing values never decrease, equal values sit next to each other and a new
    code starts at each change: one comparison pass instead of hashing millions of
    strings.  Otherwise, or for non-Arrow text, it hashes.  Codes then follow sorted
    order rather than first appearance; callers use them only as labels."""
    import pyarrow.compute as pc

    arr = getattr(s.array, "_pa_array", None)
    if arr is None or len(s) < 2:
        return _factorize(s)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    present = pc.drop_null(arr)
    if len(present) < 2:
        return _factorize(s)
    prev, nxt = present.slice(0, len(present) - 1), present.slice(1)
    if not pc.all(pc.less_equal(prev, nxt)).as_py():
        return _factorize(s)
    starts = np.empty(len(present), dtype=bool)
    starts[0] = True
    starts[1:] = pc.not_equal(prev, nxt).to_numpy(zero_copy_only=False)
    present_codes = np.cumsum(starts, dtype=np.int64) - 1
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    codes = np.full(len(arr), -1, dtype=np.int64)
    codes[valid] = present_codes
    uniq = present.filter(pa.array(starts))
    return codes, pd.Index(pd.array(uniq, dtype=s.dtype))


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int64 array.

    ``np.unique`` takes a hashing path for plain integer arrays that is ~50× slower than
    sorting (numpy 2.x: 5 s against 0.1 s on 5 million keys), so sort and compare.
    """
    keys = np.sort(keys)
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return keys[first]


def _latest_value(col: pd.Series, code: np.ndarray, order_key: np.ndarray, n: int,
                  shared: dict[str, np.ndarray] | None = None) -> pd.api.extensions.ExtensionArray:
    """Per unit, the value on its latest counted row where the value is not empty.

    ``shared`` caches the latest counted row of every unit: a column with a value on
    each counted row (names and phones usually) is then a single take."""
    present = col.notna().to_numpy()
    counted = code >= 0
    if shared is not None and present[counted].all():
        if "rows" not in shared:
            shared["rows"] = _latest_rows(code, order_key, n, np.flatnonzero(counted))
        return col.array.take(shared["rows"], allow_fill=True)
    return col.array.take(_latest_rows(code, order_key, n, np.flatnonzero(present & counted)),
                          allow_fill=True)


def _latest_rows(code: np.ndarray, order_key: np.ndarray, n: int, pos: np.ndarray) -> np.ndarray:
    """Per unit, the row (among ``pos``) with the highest ``order_key``; -1 if none."""
    best = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(best, code[pos], order_key[pos])
    winners = pos[order_key[pos] == best[code[pos]]]
    take = np.full(n, -1, dtype=np.int64)  # -1 → NA for units that never had a value
    take[code[winners]] = winners  # ties (same date, no row numbers): one of the equals
    return take


def _note_name_conflicts(names: pd.Series, latest: pd.api.extensions.ExtensionArray,
                         code: np.ndarray, unit_ids: pd.Index, q: _Quality) -> None:
    # One customer id with two different names usually means two people share an id in
    # the CRM; the spec says duplicated ids are reported, not silently merged.  Comparing
    # each row with its unit's latest name finds them without hashing every name.
    named = names.notna().to_numpy() & (code >= 0)
    # full-length comparison: taking from the small per-unit array is cheap, taking
    # millions of rows out of the (chunked) names column is not
    expected = latest.take(np.where(named, code, -1), allow_fill=True)
    cmp = names.array != expected
    cmp = cmp.to_numpy(dtype=bool, na_value=False) if hasattr(cmp, "to_numpy") else np.asarray(cmp)
    sel = np.flatnonzero(named)
    differs = cmp[sel]
    if not differs.any():
        return
    bad_units = _sorted_unique(code[sel[differs]])
    rows_of_bad = sel[np.isin(code[sel], bad_units)]
    frame = pd.DataFrame({"u": code[rows_of_bad], "name": names.iloc[rows_of_bad].to_numpy()})
    listed = frame.drop_duplicates().groupby("u")["name"].agg(lambda s: "、".join(sorted(s)))
    q.rows("id_name_conflict", None, unit_ids[listed.index.to_numpy()],
           [f"同一客户编号对应多个姓名：{v}，已按一个客户统计，请核对" for v in listed.to_numpy()])


def _note_quantile_limits(values: dict[str, np.ndarray], scores: dict[str, np.ndarray], n: int,
                          q: _Quality, min_customers: int = N_SCORES) -> None:
    if 0 < n < max(min_customers, N_SCORES):
        unreachable = "，最高分达不到 5" if n < N_SCORES else ""
        q.one("small_sample", f"只有 {n} 位客户（少于 {max(min_customers, N_SCORES)} 位），按本次数据的分位数打分不可靠"
                              f"（一位客户的变化就会挪动别人的分数{unreachable}）；建议改用固定阈值"
                              "（模型 [thresholds]，binning = \"thresholds\"）")
    if n < N_SCORES:
        return
    for dim in DIMENSIONS:
        present = np.bincount(scores[dim], minlength=N_SCORES + 1)[1:]
        empty = [str(k) for k in range(1, N_SCORES + 1) if present[k - 1] == 0]
        if not empty:
            continue
        vals, counts = np.unique(values[dim], return_counts=True)
        top = int(np.argmax(counts))
        q.one("ties", f"{_DIM_LABEL[dim]}：{counts[top] / n:.0%} 的客户数值相同"
                      f"（{_fmt_number(vals[top])}{_DIM_UNIT[dim]}），并列同分，"
                      f"{'、'.join(empty)} 分无人")


def _small_population(values: dict[str, np.ndarray], n: int, model: RfmModel) -> dict[str, Any]:
    """What a small run should be told: the model's fixed thresholds and what they give
    on this data (customers per type), so the suggestion can be judged before use."""
    th = model.thresholds
    sc = {dim: th.score(dim, values[dim]) for dim in DIMENSIONS}
    got = rfm_types(sc["recency_days"], sc["frequency"], sc["monetary"], model)
    counts = np.bincount(np.asarray(got, dtype=np.int64), minlength=max(t.no for t in model.types) + 1)
    return {
        "customers": int(n),
        "min_customers": int(model.quantile_min_customers),
        "thresholds": th.to_dict(),
        "with_thresholds": [{"type": t.no, "type_name": t.name_zh, "customers": int(counts[t.no])}
                            for t in model.types],
    }


def _customers_frame(model: RfmModel, unit_col: str, unit_ids: pd.Index, latest: dict,
                     last_day: np.ndarray, recency: np.ndarray, frequency: np.ndarray,
                     monetary: np.ndarray, revenue: np.ndarray, r: np.ndarray, f: np.ndarray,
                     m: np.ndarray, type_no: np.ndarray, kol: np.ndarray) -> pd.DataFrame:
    n = len(unit_ids)
    # Lists are read per type, biggest spenders first; the id breaks ties so the order
    # never depends on the input's row order.
    id_rank = np.empty(n, dtype=np.int64)
    id_rank[np.asarray(unit_ids.argsort())] = np.arange(n)
    perm = np.lexsort((id_rank, -monetary, type_no))

    by_no = {t.no: t for t in model.types}
    nos = np.array(sorted(by_no))
    pos = np.searchsorted(nos, type_no[perm])
    rp, fp, mp = r[perm], f[perm], m[perm]
    combo = (rp.astype(np.int16) - 1) * 25 + (fp.astype(np.int16) - 1) * 5 + (mp.astype(np.int16) - 1)
    labels = [f"{a}-{b}-{c}" for a in range(1, 6) for b in range(1, 6) for c in range(1, 6)]

    def text(arr: Any) -> Any:
        return (arr if isinstance(arr, pd.api.extensions.ExtensionArray) and
                isinstance(arr.dtype, pd.StringDtype) else pd.array(arr, dtype="str")).take(perm)

    def text_of(choices: list[str], idx: np.ndarray) -> Any:
        # repeat a few labels many times without building a Python object per row
        return pd.array(pa.array(choices, type=pa.large_string()).take(pa.array(idx)), dtype="str")

    data: dict[str, Any] = {unit_col: text(unit_ids.array)}
    for col in (["customer_id"] if unit_col == "vin" else []) + ["name", "phone"]:
        data[col] = text(latest[col]) if col in latest else pd.array([pd.NA] * n, dtype="str")
    data.update({
        "last_visit": last_day[perm].astype("datetime64[D]").astype("datetime64[s]"),
        "recency_days": recency[perm],
        "frequency": frequency[perm],
        "monetary": monetary[perm],
        "revenue": revenue[perm],
        "r": rp, "f": fp, "m": mp,
        "rfm": text_of(labels, combo),
        "type_no": type_no[perm].astype(np.int64),
        "type_name": text_of([by_no[k].name_zh for k in nos], pos),
        "strategy": text_of([by_no[k].strategy_zh for k in nos], pos),
        "kol": kol[perm],
        "kol_flag": kol[perm] & (mp < model.high_min),
        "red_alert": np.isin(type_no[perm], list(model.red_alert_types)),
    })
    return pd.DataFrame(data)


def _summary(model: RfmModel, customers: pd.DataFrame) -> pd.DataFrame:
    n = len(customers)
    counts = customers.groupby("type_no").size()
    rev = customers.groupby("type_no")["revenue"].sum()
    total_rev = float(customers["revenue"].sum())
    rows = []
    for t in model.types:
        k = int(counts.get(t.no, 0))
        share = 100 * k / n if n else 0.0
        revenue = round(float(rev.get(t.no, 0.0)), 2)
        lo, hi = t.share_pct
        flag = None
        if n >= max(model.share_flag_min_customers, 1):
            if share > hi * (1 + model.share_far_relative):
                flag = "above"
            elif share < lo * (1 - model.share_far_relative):
                flag = "below"
        rows.append({
            "type_no": t.no, "type_name": t.name_zh, "type_name_en": t.name_en,
            "customers": k, "share_pct": round(share, 2), "revenue": revenue,
            "revenue_share_pct": round(100 * revenue / total_rev, 2) if total_rev > 0 else None,
            "usual_share_lo": lo, "usual_share_hi": hi,
            "usual_profit_lo": t.profit_pct[0], "usual_profit_hi": t.profit_pct[1],
            "share_flag": flag, "red_alert": t.no in model.red_alert_types,
        })
    return pd.DataFrame(rows)


# =====================================================================================
# Migration
# =====================================================================================
@dataclass
class Migration:
    """Month-over-month movement between two RFM snapshots.

    ``matrix``: counts, index = previous type number plus ``"new"`` (not in the previous
    snapshot), columns = current type number plus ``"departed"`` (not in the current one).
    ``flows``: one dict per key flow of the model (``key``, ``name``, ``from_type``,
    ``to_type``, ``count``, ``base`` = customers of ``from_type`` last time, ``rate_pct``,
    ``target_zh``, ``target_pct``, ``customer_ids`` sorted).
    ``shares``: per type, customers and share last time and now, and the change in points.
    ``edges``: the bin edges each side was scored with (:meth:`Edges.to_dict`, ``None``
    when unknown), ``same_scale`` (both sides used the same bounds, so a move is a change
    in the customer, not in the scale) and ``note``, one sentence saying so.
    """

    matrix: pd.DataFrame
    flows: list[dict[str, Any]]
    shares: pd.DataFrame
    prev_as_of: date | None = None
    curr_as_of: date | None = None
    edges: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "prev_as_of": self.prev_as_of.isoformat() if self.prev_as_of else None,
            "curr_as_of": self.curr_as_of.isoformat() if self.curr_as_of else None,
            "matrix": {
                "rows": [str(i) for i in self.matrix.index],
                "columns": [str(c) for c in self.matrix.columns],
                "counts": [[int(v) for v in row] for row in self.matrix.to_numpy()],
            },
            "flows": [{k: (list(v) if isinstance(v, list) else _plain(v)) for k, v in fl.items()}
                      for fl in self.flows],
            "shares": [{k: _plain(v) for k, v in row.items()}
                       for row in self.shares.to_dict(orient="records")],
            "edges": self.edges,
        }


def migrate(prev: RfmResult | pd.DataFrame, curr: RfmResult | pd.DataFrame, model: RfmModel, *,
            key: str | None = None, prev_edges: Edges | None = None, curr_edges: Edges | None = None,
            prev_as_of: date | None = None, curr_as_of: date | None = None) -> Migration:
    """Compare two snapshots (results, or their ``customers`` frames with ``type_no``).

    Customers are matched on ``key`` (default: the unit column of the results, else
    ``customer_id``).  The edges and dates default to those of the results; pass them for
    frames (e.g. stored snapshots).  Pure: nothing is read or stored.
    """
    if isinstance(prev, RfmResult):
        prev_as_of = prev_as_of or prev.as_of
        prev_edges = prev_edges or prev.edges
    if isinstance(curr, RfmResult):
        curr_as_of = curr_as_of or curr.as_of
        curr_edges = curr_edges or curr.edges
    if isinstance(prev, RfmResult) and isinstance(curr, RfmResult) and prev.unit != curr.unit:
        raise UsageError("两次 RFM 的统计单位不同（车主 / 车辆），不能比较迁移")
    if key is None:
        key = next((x.unit_column for x in (prev, curr) if isinstance(x, RfmResult)), "customer_id")
    a = _snapshot_types(prev, key, model, "上期")
    b = _snapshot_types(curr, key, model, "本期")

    nos = [t.no for t in model.types]
    joined = a.to_frame("prev").join(b.to_frame("curr"), how="outer")
    prev_lab = joined["prev"].astype(object).where(joined["prev"].notna(), "new")
    curr_lab = joined["curr"].astype(object).where(joined["curr"].notna(), "departed")
    prev_lab = prev_lab.map(lambda v: v if v == "new" else int(v))
    curr_lab = curr_lab.map(lambda v: v if v == "departed" else int(v))
    matrix = pd.crosstab(prev_lab, curr_lab)
    matrix = matrix.reindex(index=[*nos, "new"], columns=[*nos, "departed"], fill_value=0)
    matrix = matrix.astype(np.int64)
    matrix.index.name, matrix.columns.name = "prev", "curr"

    flows = []
    for fl in model.key_flows:
        sel = (joined["prev"] == fl.from_type) & (joined["curr"] == fl.to_type)
        ids = sorted(str(i) for i in joined.index[sel.fillna(False).to_numpy(dtype=bool)])
        base = int((a == fl.from_type).sum())
        flows.append({
            "key": fl.key, "name": fl.name_zh, "from_type": fl.from_type, "to_type": fl.to_type,
            "count": len(ids), "base": base,
            "rate_pct": round(100 * len(ids) / base, 2) if base else None,
            "target_zh": fl.target_zh, "target_pct": fl.target_pct, "customer_ids": ids,
        })

    na, nb = len(a), len(b)
    ca, cb = a.value_counts(), b.value_counts()
    shares = pd.DataFrame([{
        "type_no": t.no, "type_name": t.name_zh,
        "prev_customers": int(ca.get(t.no, 0)),
        "prev_share_pct": round(100 * ca.get(t.no, 0) / na, 2) if na else 0.0,
        "curr_customers": int(cb.get(t.no, 0)),
        "curr_share_pct": round(100 * cb.get(t.no, 0) / nb, 2) if nb else 0.0,
    } for t in model.types])
    shares["change_pp"] = (shares["curr_share_pct"] - shares["prev_share_pct"]).round(2)
    return Migration(matrix=matrix, flows=flows, shares=shares, prev_as_of=prev_as_of,
                     curr_as_of=curr_as_of, edges=_edges_info(prev_edges, curr_edges))


def _same_bounds(a: Edges, b: Edges) -> bool:
    return all(a.bounds(d) == b.bounds(d) for d in DIMENSIONS) and a.monetary_basis == b.monetary_basis


def _edges_info(prev: Edges | None, curr: Edges | None) -> dict[str, Any]:
    same = prev is not None and curr is not None and _same_bounds(prev, curr)
    if prev is None or curr is None:
        note = "缺少一期的分箱边界，无法判断两期是否同一尺度"
    elif same:
        note = "两期使用同一套分箱边界：客户的迁移来自其自身到店和消费的变化，可直接比较"
    else:
        note = ("两期各自按当期数据计算分箱边界，边界不同：部分迁移可能只是边界移动所致；"
                "加 --freeze-edges 可按上期边界重新评分本期")
    return {"prev": prev.to_dict() if prev is not None else None,
            "curr": curr.to_dict() if curr is not None else None,
            "same_scale": same, "note": note}


def flow_customers(mig: Migration, prev: pd.DataFrame, curr: pd.DataFrame, key: str) -> pd.DataFrame:
    """The customers behind each key flow, one row each: ``flow`` (key), ``flow_name``,
    the key column, ``customer_id``, ``name``, ``phone`` (from the current snapshot),
    the previous and current ``rfm`` and type, and the current R/F/M values."""
    cols = [c for c in dict.fromkeys((key, "customer_id", "name", "phone", "recency_days", "frequency",
                                      "monetary", "rfm", "type_name")) if c in curr.columns]
    now = curr[cols].drop_duplicates(subset=[key]).set_index(curr[key].astype("str").rename("_k"))
    before = prev[[c for c in (key, "rfm", "type_name") if c in prev.columns]]
    before = before.set_index(prev[key].astype("str").rename("_k"))
    parts = []
    for fl in mig.flows:
        ids = list(fl["customer_ids"])
        part = now.reindex(ids).reset_index(drop=True)
        part.insert(0, "flow", fl["key"])
        part.insert(1, "flow_name", fl["name"])
        if key in part.columns:
            part[key] = pd.array(ids, dtype="str")
        else:
            part.insert(2, key, pd.array(ids, dtype="str"))
        prior = before.reindex(ids)
        part["prev_rfm"] = prior["rfm"].to_numpy() if "rfm" in prior else None
        part["prev_type_name"] = prior["type_name"].to_numpy() if "type_name" in prior else None
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["flow", "flow_name", key])
    return pd.concat(parts, ignore_index=True)


# =====================================================================================
# Snapshots (the shape the history store keeps; the store itself is not imported here)
# =====================================================================================
_SNAPSHOT_FIELDS = ("last_visit", "recency_days", "frequency", "monetary", "revenue", "r", "f", "m",
                    "rfm", "type_no", "kol", "kol_flag", "red_alert")


def snapshot_rows(result: RfmResult) -> pd.DataFrame:
    """One row per scored unit for the history store: ``customer_key`` (the unit: owner
    id or VIN), ``customer_id``, ``name``, ``phone``, ``label`` (type name), ``score``
    (type number) and the R/F/M values and scores."""
    c = result.customers
    rows = pd.DataFrame({"customer_key": c[result.unit_column],
                         "customer_id": c["customer_id"], "name": c["name"], "phone": c["phone"],
                         "label": c["type_name"], "score": c["type_no"]})
    for col in _SNAPSHOT_FIELDS:
        rows[col] = c[col]
    return rows


def snapshot_meta(result: RfmResult, **extra: Any) -> dict[str, Any]:
    """What a stored snapshot needs besides its rows: the edges (to freeze them later or
    to say which were used), the unit, the bases and the summary."""
    counts: dict[str, int] = {}
    for q in result.quality:
        counts[q["kind"]] = counts.get(q["kind"], 0) + 1
    return {
        "job": "rfm", "model": result.model_name, "unit": result.unit,
        "window_days": result.window_days, "window_start": result.window_start.isoformat(),
        "binning": result.binning, "frequency_basis": result.frequency_basis,
        "monetary_basis": result.monetary_basis, "edges": result.edges.to_dict(),
        "summary": [{k: _plain(v) for k, v in row.items()}
                    for row in result.summary.to_dict(orient="records")],
        "quality_counts": counts, **extra,
    }


def customers_from_snapshot(rows: pd.DataFrame, unit: str) -> pd.DataFrame:
    """A stored snapshot's rows back in the shape of :attr:`RfmResult.customers` (the
    columns that were stored), for :func:`migrate` and :func:`rescore`."""
    unit_col = "vin" if unit == "vin" else "customer_id"
    out = rows.drop(columns=["score"] + (["type_name"] if "label" in rows else []), errors="ignore")
    out = out.rename(columns={"label": "type_name"})
    if unit_col == "vin":
        out = out.rename(columns={"customer_key": "vin"})
    else:
        out = out.drop(columns=["customer_key"]).assign(customer_id=rows["customer_key"])
    for col in (unit_col, "customer_id", "name", "phone", "type_name", "rfm"):
        if col in out:
            out[col] = out[col].astype("str")
    for col in ("recency_days", "frequency", "r", "f", "m", "type_no"):
        if col in out:
            out[col] = pd.to_numeric(out[col]).astype(np.int64)
    for col in ("monetary", "revenue"):
        if col in out:
            out[col] = pd.to_numeric(out[col]).astype(np.float64)
    return out


def rescore(customers: pd.DataFrame, model: RfmModel, edges: Edges, *,
            monetary_basis: str | None = None) -> pd.DataFrame:
    """Re-score stored R/F/M values on other edges (e.g. last month's: frozen).

    ``customers`` needs ``recency_days``, ``frequency`` and ``monetary``; the scores, the
    ``rfm`` label, the type and the flags are recomputed, the values are not touched.
    ``monetary_basis``: the basis the values were computed with (must match the edges).
    """
    basis = monetary_basis or model.monetary
    if edges.monetary_basis != basis:
        raise UsageError(f"冻结的边界按 M={edges.monetary_basis} 计算，这一期是 M={basis}",
                         hint="两期的 M 口径必须一致才能比较")
    for col in DIMENSIONS:
        if col not in customers.columns:
            raise UsageError(f"快照缺少 {col}，不能按其他边界重新评分")
    out = customers.copy()
    scores = {dim: edges.score(dim, out[dim].to_numpy(dtype=np.float64)) for dim in DIMENSIONS}
    r, f, m = scores["recency_days"], scores["frequency"], scores["monetary"]
    type_no = rfm_types(r, f, m, model)
    by_no = {t.no: t for t in model.types}
    out["r"], out["f"], out["m"] = r, f, m
    out["rfm"] = pd.array([f"{a}-{b}-{c}" for a, b, c in zip(r, f, m, strict=True)], dtype="str")
    out["type_no"] = type_no.astype(np.int64)
    out["type_name"] = pd.array([by_no[int(k)].name_zh for k in type_no], dtype="str")
    if "strategy" in out:
        out["strategy"] = pd.array([by_no[int(k)].strategy_zh for k in type_no], dtype="str")
    if "kol" in out:
        kol = pd.array(out["kol"].astype(object).where(out["kol"].notna(), False), dtype="boolean")
        out["kol_flag"] = kol.to_numpy(dtype=bool, na_value=False) & (m < model.high_min)
    out["red_alert"] = np.isin(type_no, list(model.red_alert_types))
    # the order of RfmResult.customers: by type, biggest spenders first, then the key
    key = "vin" if "vin" in out.columns else "customer_id"
    order = np.lexsort((out[key].astype("str").rank(method="first").to_numpy(),
                        -out["monetary"].to_numpy(dtype=np.float64), out["type_no"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def _snapshot_types(snap: RfmResult | pd.DataFrame, key: str, model: RfmModel, label: str) -> pd.Series:
    frame = snap.customers if isinstance(snap, RfmResult) else snap
    for col in (key, "type_no"):
        if col not in frame.columns:
            raise UsageError(f"{label}客户表缺少列 {col}")
    ids = frame[key].astype("str")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        shown = "、".join(sorted(set(dup.tolist()))[:10])
        raise InputError(f"{label}客户表中有重复的{key}：{shown}", hint="每个客户只能出现一次")
    types = frame["type_no"].to_numpy()
    unknown = sorted(set(types.tolist()) - {t.no for t in model.types})
    if unknown:
        raise UsageError(f"{label}客户表中有模型不认识的类型编号：{unknown}")
    return pd.Series(types.astype(np.int64), index=pd.Index(ids.to_numpy(), name=key), name="type_no")
