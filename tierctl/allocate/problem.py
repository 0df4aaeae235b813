"""The integer program's data: customers in canonical order, grouped into classes of
interchangeable customers (see :mod:`tierctl.allocate`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tierctl.allocate.model import REQUIRED_COLUMNS, AllocateModel
from tierctl.errors import InputError, Problem


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass
class _Prob:
    """Customers in canonical order, grouped into classes of interchangeable customers.

    Costs depend only on the package and applicability only on (tier, needs a car,
    ride-hailing), so customers of one tier with the same applicable packages form a
    *class* whose members differ only in their score.  If a class gets ``n`` packages,
    giving them to its ``n`` highest scores is optimal, so the integer program needs one
    integer per (class, package) — "how many" — plus one continuous ``z`` in [0, 1] per
    customer.  For integer counts, the ``z`` part is an LP with a totally unimodular
    matrix (one equality per class), so it is integral: the formulation is exact.  It
    is also free of the symmetry between equal customers that made the per-customer
    binary formulation take 10–30 s on 2,000 customers with a binding budget.
    """

    ids: np.ndarray  # str
    names: list[str]
    tiers: np.ndarray  # str
    cents: np.ndarray  # int64 score × 10**decimals
    weights: np.ndarray  # int64 tier weight
    impact: np.ndarray  # float
    ride: np.ndarray  # bool
    ride_why: list[str]  # why a driver counts as ride-hailing ("" when not, or not given)
    first: np.ndarray  # bool: tier in model.first
    pkg_keys: list[str]  # all package keys; package index = position
    cls_of: np.ndarray  # customer -> class index, -1 when no package applies
    cls_first: np.ndarray  # bool per class
    cls_members: list[np.ndarray]  # customer indices per class, best score first
    cls_pkgs: list[list[int]]  # package indices per class, most preferred first
    y_cls: np.ndarray  # one entry per (class, package): the class …
    y_pkg: np.ndarray  # … the package index
    y_rank: np.ndarray  # … its position in the tier's preference list
    y_cost: np.ndarray  # … its cost in yuan (int64)
    y_premium: np.ndarray  # … takes a premium car
    y_regular: np.ndarray  # … takes a regular car
    y_ub: np.ndarray  # … the class size (upper bound of the count)
    max_rank: int

    @property
    def value(self) -> np.ndarray:
        return self.cents * self.weights

    def covered(self, counts: np.ndarray) -> np.ndarray:
        """Customer mask covered by integer ``counts`` per (class, package)."""
        return self.assign(counts) >= 0

    def assign(self, counts: np.ndarray) -> np.ndarray:
        """Customer -> package index (-1 = nothing) for integer ``counts``.

        The best scores of a class get packages, the most preferred package going to
        the highest score; ties in score were already broken by customer id.
        """
        pick = np.full(len(self.ids), -1, dtype=np.int64)
        for g, members in enumerate(self.cls_members):
            sel = np.flatnonzero(self.y_cls == g)  # already in preference order
            pkgs = np.repeat(self.y_pkg[sel], counts[sel].astype(np.int64))
            pick[members[:pkgs.size]] = pkgs
        return pick

    def usage(self, counts: np.ndarray) -> tuple[int, int, int]:
        """(premium cars, regular cars, yuan) used by ``counts`` — exact integers."""
        c = counts.astype(np.int64)
        return (int((c * self.y_premium).sum()), int((c * self.y_regular).sum()),
                int((c * self.y_cost).sum()))


def _checked(frame: pd.DataFrame, model: AllocateModel) -> dict[str, Any]:
    """The frame's columns checked, all bad rows reported at once."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"分配需要这些列，但表中没有：{', '.join(missing)}",
                         hint="先用 tierctl score 给客户打分（得到级别、总分、I 分和是否网约车），再分配")
    n = len(frame)
    rows = (frame["_row"].tolist() if "_row" in frame.columns else [None] * n)
    problems: list[Problem] = []

    ids_s = frame["customer_id"].astype("string")
    for pos in np.flatnonzero(ids_s.isna().to_numpy()):
        problems.append(Problem(rows[pos], "customer_id", None, "缺少客户编号"))
    dup = (ids_s.duplicated(keep=False) & ids_s.notna()).to_numpy(dtype=bool)
    for pos in np.flatnonzero(dup):
        problems.append(Problem(rows[pos], "customer_id", ids_s.iloc[pos],
                                "客户编号重复：同一位客户只能分配一次，请合并或更正"))
    tiers_s = frame["tier"].astype("string")
    bad_tier = (~tiers_s.isin(list(model.tiers))).fillna(True).to_numpy(dtype=bool)
    for pos in np.flatnonzero(bad_tier):
        v = tiers_s.iloc[pos]
        problems.append(Problem(rows[pos], "tier", None if pd.isna(v) else v,
                                f"级别不在分配模型中（可用：{', '.join(model.tiers)}）"))
    score = pd.to_numeric(frame["score"], errors="coerce").astype("Float64")
    sv = score.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad_score = ~np.isfinite(sv) | (sv < 0)
    for pos in np.flatnonzero(bad_score):
        problems.append(Problem(rows[pos], "score", frame["score"].iloc[pos],
                                "总分应为不小于 0 的数字"))
    impact = pd.to_numeric(frame["I"], errors="coerce").astype("Float64")
    iv = impact.to_numpy(dtype=float, na_value=np.nan)
    for pos in np.flatnonzero(~np.isfinite(iv)):
        problems.append(Problem(rows[pos], "I", frame["I"].iloc[pos],
                                "缺少 I（影响程度）分：判断是否需要代步车要用到它"))
    try:
        # Unknown usage is not ride-hailing: the subsidy needs a positive answer.
        ride_all = frame["ride_hailing"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    except (TypeError, ValueError) as exc:
        raise InputError("「是否网约车」列（ride_hailing）应为 是/否（true/false）",
                         hint="检查 ride_hailing 列") from exc
    if problems:
        raise InputError("分配前发现问题", problems=problems, hint="更正后重新运行")
    ride_why_all = (frame["ride_hailing_reason"].astype("string").fillna("").tolist()
                    if "ride_hailing_reason" in frame.columns else [""] * n)

    return {"ids_s": ids_s, "tiers_s": tiers_s, "sv": sv, "iv": iv, "ride_all": ride_all,
            "ride_why_all": ride_why_all}


def _prepare(frame: pd.DataFrame, model: AllocateModel, days: int) -> _Prob:
    c = _checked(frame, model)
    ids_s, tiers_s, sv, iv = c["ids_s"], c["tiers_s"], c["sv"], c["iv"]
    ride_all, ride_why_all = c["ride_all"], c["ride_why_all"]
    scale = 10 ** model.score_decimals
    cents_all = np.rint(sv * scale).astype(np.int64)
    ids_all = ids_s.to_numpy(dtype=str)
    tiers_all = tiers_s.to_numpy(dtype=str)
    tier_rank = {t: i for i, t in enumerate(model.tiers)}
    trank = np.array([tier_rank[t] for t in tiers_all], dtype=np.int64)
    # Canonical order (tier, score desc, id) so that row order never changes the plan,
    # not even between customers the optimiser sees as interchangeable.
    order = np.lexsort((ids_all, -cents_all, trank))
    names_all = frame["name"].astype("string").fillna("").tolist()

    tiers = tiers_all[order]
    imp = iv[order]
    ride = ride_all[order]
    need = imp >= model.need_impact
    pkg_keys = list(model.packages)
    pkg_index = {k: i for i, k in enumerate(pkg_keys)}
    cost_of = np.array([model.package_cost(k, days) for k in pkg_keys], dtype=np.int64)
    pool_of = [_pool(model, k) for k in pkg_keys]

    cls_of, cls_members, cls_pkgs, cls_first, y_cls, y_pkg, y_rank, max_rank = _classes(
        model, tiers, need, ride, pkg_index)
    yp = np.array(y_pkg, dtype=np.int64)
    yc = np.array(y_cls, dtype=np.int64)
    sizes = np.array([m.size for m in cls_members], dtype=np.int64)
    return _Prob(
        ids=ids_all[order], names=[names_all[i] for i in order], tiers=tiers,
        cents=cents_all[order],
        weights=np.array([model.tiers[t].weight for t in tiers], dtype=np.int64),
        impact=imp, ride=ride, ride_why=[ride_why_all[i] for i in order],
        first=np.isin(tiers, list(model.first)), pkg_keys=pkg_keys,
        cls_of=cls_of, cls_first=np.array(cls_first, dtype=bool), cls_members=cls_members,
        cls_pkgs=cls_pkgs, y_cls=yc, y_pkg=yp, y_rank=np.array(y_rank, dtype=np.int64),
        y_cost=cost_of[yp] if yp.size else np.zeros(0, dtype=np.int64),
        y_premium=np.array([pool_of[i] == "premium" for i in y_pkg], dtype=bool),
        y_regular=np.array([pool_of[i] == "regular" for i in y_pkg], dtype=bool),
        y_ub=sizes[yc] if yc.size else np.zeros(0, dtype=np.int64),
        max_rank=max_rank,
    )


def _classes(model: AllocateModel, tiers: np.ndarray, need: np.ndarray, ride: np.ndarray,
             pkg_index: dict[str, int]) -> tuple[Any, ...]:
    """One class per (tier, pattern of applicable packages); one (class, package) entry
    per count the program chooses."""
    n = len(tiers)
    cls_of = np.full(n, -1, dtype=np.int64)
    cls_members: list[np.ndarray] = []
    cls_pkgs: list[list[int]] = []
    cls_first: list[bool] = []
    y_cls: list[int] = []
    y_pkg: list[int] = []
    y_rank: list[int] = []
    max_rank = 0
    for t, pol in model.tiers.items():
        in_tier = tiers == t
        if not pol.packages or not in_tier.any():
            continue
        max_rank = max(max_rank, len(pol.packages) - 1)
        # Applicability pattern as a bitmask over the tier's packages: one class per pattern.
        code = np.zeros(n, dtype=np.int64)
        for j, pk in enumerate(pol.packages):
            code |= _applies(model, pk, need, ride).astype(np.int64) << j
        for u in np.unique(code[in_tier]).tolist():
            if u == 0:
                continue  # nothing applies: these customers stay uncovered
            g = len(cls_members)
            members = np.flatnonzero(in_tier & (code == u))
            cls_of[members] = g
            cls_members.append(members)
            cls_first.append(t in model.first)
            ranks = [j for j in range(len(pol.packages)) if u >> j & 1]
            cls_pkgs.append([pkg_index[pol.packages[j]] for j in ranks])
            for j in ranks:
                y_cls.append(g)
                y_pkg.append(pkg_index[pol.packages[j]])
                y_rank.append(j)
    return cls_of, cls_members, cls_pkgs, cls_first, y_cls, y_pkg, y_rank, max_rank


def _pool(model: AllocateModel, key: str) -> str | None:
    """The car pool a package takes a car from, or None."""
    kind = model.packages[key].loaner
    return None if kind is None else model.loaners[kind].pool


def _applies(model: AllocateModel, key: str, need: np.ndarray, ride: np.ndarray) -> np.ndarray:
    """Which customers a package may go to under ``[rules]`` (vectorised)."""
    p = model.packages[key]
    mask = np.ones(need.shape, dtype=bool)
    if p.loaner is not None and model.loaner_only_if_needed:
        mask &= need
    if p.subsidy and model.subsidy_only_ride_hailing:
        mask &= ride
    if p.loaner is None and not p.subsidy and model.mobility_if_needed:
        # Someone who needs a car is not "covered" by a coupon.
        mask &= ~need
    return mask


def _not_applicable_reason(model: AllocateModel, key: str, impact: float, ride: bool) -> str | None:
    p = model.packages[key]
    need = impact >= model.need_impact
    i_txt = _fmt_num(impact)
    if p.loaner is not None and model.loaner_only_if_needed and not need:
        return f"「{p.name}」不适用：代步车只给需要用车的客户（I={i_txt} < {model.need_impact}）"
    if p.subsidy and model.subsidy_only_ride_hailing and not ride:
        return f"「{p.name}」不适用：{model.subsidy_name}只给网约车/出租车司机"
    if p.loaner is None and not p.subsidy and model.mobility_if_needed and need:
        return (f"「{p.name}」不适用：客户需要用车（I={i_txt} ≥ {model.need_impact}），"
                f"只送权益不算覆盖，须给代步车或{model.subsidy_name}")
    return None

