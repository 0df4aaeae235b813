"""RFM model (job C): the model file loaded and validated, the bin edges, the type mapping.

See :mod:`tierctl.rfm` for every rule of the job."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tierctl.errors import UsageError
from tierctl.io.ingest import KINDS, ColumnSet
from tierctl.models.loader import Section

if TYPE_CHECKING:
    import pandas as pd

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
