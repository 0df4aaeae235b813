"""Solving: the lexicographic optimum with HiGHS (:func:`scipy.optimize.milp`), and the
fewest extra resources that would cover every first-tier customer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from tierctl.allocate.model import AllocateModel
from tierctl.allocate.problem import _Prob


@dataclass(frozen=True)
class _Caps:
    regular: int
    premium: int
    budget: int


_HIGHS = {"presolve": True}


def _opts(model: AllocateModel) -> dict[str, Any]:
    # mip_rel_gap 0: HiGHS' default 1e-4 would stop "within 0.01 %", not at the optimum.
    return {**_HIGHS, "mip_rel_gap": 0.0, "time_limit": model.time_limit_s}


def _run_milp(p: _Prob, model: AllocateModel, cls_sel: np.ndarray, z_obj: np.ndarray,
              y_obj: np.ndarray, caps: _Caps,
              floor: tuple[np.ndarray, float] | None = None) -> tuple[np.ndarray, bool]:
    """Maximise over the selected classes; return (integer count per (class, package), optimal).

    Columns: the counts ``y`` (integer) then the customers' ``z`` (continuous).
    ``floor`` = (coefficient per customer, bound) adds Σ coef·z ≥ bound (stage 2).
    """
    counts = np.zeros(p.y_cls.size, dtype=np.int64)
    ysel = np.flatnonzero(cls_sel[p.y_cls]) if p.y_cls.size else np.zeros(0, dtype=np.int64)
    if ysel.size == 0:
        return counts, True
    zsel = np.flatnonzero((p.cls_of >= 0) & cls_sel[np.maximum(p.cls_of, 0)])
    my, mz = ysel.size, zsel.size
    remap = np.full(p.cls_first.size, -1, dtype=np.int64)
    chosen_cls = np.flatnonzero(cls_sel)
    remap[chosen_cls] = np.arange(chosen_cls.size)
    # Per class: Σ z (customers covered) − Σ y (packages handed out) = 0.
    link = sparse.csr_matrix(
        (np.concatenate([-np.ones(my), np.ones(mz)]),
         (np.concatenate([remap[p.y_cls[ysel]], remap[p.cls_of[zsel]]]),
          np.arange(my + mz))),
        shape=(chosen_cls.size, my + mz))
    blocks = [link]
    lb = [np.zeros(chosen_cls.size)]
    ub = [np.zeros(chosen_cls.size)]
    for coef, cap in ((p.y_premium[ysel], caps.premium), (p.y_regular[ysel], caps.regular),
                      (p.y_cost[ysel], caps.budget)):
        if coef.any():
            blocks.append(sparse.csr_matrix(
                np.concatenate([coef.astype(float), np.zeros(mz)]).reshape(1, -1)))
            lb.append(np.array([-np.inf]))
            ub.append(np.array([float(cap)]))
    if floor is not None:
        coef, bound = floor
        blocks.append(sparse.csr_matrix(
            np.concatenate([np.zeros(my), coef[zsel].astype(float)]).reshape(1, -1)))
        lb.append(np.array([bound]))
        ub.append(np.array([np.inf]))
    res = milp(
        c=-np.concatenate([y_obj[ysel], z_obj[zsel]]).astype(float),
        integrality=np.concatenate([np.ones(my), np.zeros(mz)]),
        bounds=Bounds(np.zeros(my + mz),
                      np.concatenate([p.y_ub[ysel].astype(float), np.ones(mz)])),
        constraints=LinearConstraint(sparse.vstack(blocks, format="csr"),
                                     np.concatenate(lb), np.concatenate(ub)),
        options=_opts(model),
    )
    if res.x is None:
        return counts, False
    counts[ysel] = np.rint(res.x[:my]).astype(np.int64)
    # Exact integer re-check of the rounded answer: a plan that overspends by one yuan
    # because of a solver tolerance must never reach a manager.
    prem, reg, money = p.usage(counts)
    if prem > caps.premium or reg > caps.regular or money > caps.budget:  # pragma: no cover
        raise RuntimeError("求解器返回的方案超出资源限制")
    return counts, res.status == 0


def _solve(p: _Prob, model: AllocateModel, caps: _Caps) -> tuple[np.ndarray, bool]:
    """The lexicographic optimum.

    Stage 1, first tiers only: their raw risk, then how many of them are covered.
    Stage 2, everyone, keeping stage 1's optimum: the weighted risk, then a tie-break
    bonus per package handed out that favours covering more customers and the packages
    listed first.  Each tie-break adds up to less than ½ over all customers, while the
    quantity above it moves in steps of ≥ 1, so a tie-break never costs coverage.
    """
    n = len(p.ids)
    optimal = True
    floor = None
    if p.cls_first.any():
        # δ·count ≤ n·δ < ½: "cover more P0" only decides between equal P0 risk.
        delta = 1.0 / (2.0 * (n + 1))
        first_obj = p.cents + delta
        counts1, ok1 = _run_milp(p, model, p.cls_first, first_obj,
                                 np.zeros(p.y_cls.size), caps)
        optimal &= ok1
        # The optimum from exact integers, not from the solver's floating objective.
        cov1 = p.covered(counts1)
        best = int(p.cents[cov1].sum()) + delta * int(cov1.sum())
        floor = (np.where(p.first, first_obj, 0.0), best - delta / 2)
    eps = 1.0 / (2.0 * (p.max_rank + 1) * (n + 1))
    counts, ok = _run_milp(p, model, np.ones(p.cls_first.size, dtype=bool),
                           p.value.astype(float), (p.max_rank + 1 - p.y_rank) * eps, caps, floor)
    return counts, optimal and ok


def _shortfall_extras(p: _Prob, model: AllocateModel, caps: _Caps) -> tuple[int, int, int, bool]:
    """Fewest extra cars, then least extra money, to cover every coverable first-tier customer.

    Solved on the first-tier classes alone (they come first, so nobody else competes).
    Columns: the counts y (integer), extra regular cars eR and premium cars eP (integer),
    extra money eB (continuous; integral at the optimum since costs are integers).
    """
    ysel = np.flatnonzero(p.cls_first[p.y_cls])
    my = ysel.size
    chosen_cls = np.flatnonzero(p.cls_first)
    remap = np.full(p.cls_first.size, -1, dtype=np.int64)
    remap[chosen_cls] = np.arange(chosen_cls.size)
    n_cols = my + 3
    cover = sparse.csr_matrix((np.ones(my), (remap[p.y_cls[ysel]], np.arange(my))),
                              shape=(chosen_cls.size, n_cols))
    sizes = np.array([p.cls_members[g].size for g in chosen_cls], dtype=float)
    prem = np.zeros(n_cols)
    prem[:my] = p.y_premium[ysel]
    prem[my + 1] = -1
    reg = np.zeros(n_cols)
    reg[:my] = p.y_regular[ysel]
    reg[my] = -1
    money = np.zeros(n_cols)
    money[:my] = p.y_cost[ysel]
    money[my + 2] = -1
    a = sparse.vstack([cover, sparse.csr_matrix(np.vstack([prem, reg, money]))], format="csr")
    lb = np.concatenate([sizes, np.full(3, -np.inf)])
    ub = np.concatenate([sizes, [caps.premium, caps.regular, caps.budget]])
    integrality = np.concatenate([np.ones(my + 2), [0]])
    total = float(sizes.sum())
    bounds = Bounds(np.zeros(n_cols),
                    np.concatenate([p.y_ub[ysel].astype(float), [total, total, np.inf]]))
    c_cars = np.zeros(n_cols)
    c_cars[my] = c_cars[my + 1] = 1
    # Among equally few extra cars, ask for regular ones: a premium car costs < 1 extra.
    c_first = c_cars.copy()
    c_first[my + 1] += 1.0 / (total + 1.0)
    r1 = milp(c_first, integrality=integrality, bounds=bounds,
              constraints=LinearConstraint(a, lb, ub), options=_opts(model))
    if r1.x is None:  # pragma: no cover - only on a solver time-out without any solution
        return 0, 0, 0, False
    cars = int(np.rint(r1.x[my] + r1.x[my + 1]))
    premium_cars = int(np.rint(r1.x[my + 1]))
    c_money = np.zeros(n_cols)
    c_money[my + 2] = 1
    only_prem = np.zeros(n_cols)
    only_prem[my + 1] = 1
    r2 = milp(c_money, integrality=integrality, bounds=bounds,
              constraints=[LinearConstraint(a, lb, ub),
                           LinearConstraint(np.vstack([c_cars, only_prem]), -np.inf,
                                            [cars + 0.5, premium_cars + 0.5])],
              options=_opts(model))
    x = r2.x if r2.x is not None else r1.x
    counts = np.zeros(p.y_cls.size, dtype=np.int64)
    counts[ysel] = np.rint(x[:my]).astype(np.int64)
    # Exact figures from the integral counts, not from the solver's floats.
    prem_used, reg_used, money_used = p.usage(counts)
    extra_p = max(0, prem_used - caps.premium)
    extra_r = max(0, reg_used - caps.regular)
    extra_b = max(0, money_used - caps.budget)
    return extra_r + extra_p, extra_p, extra_b, r1.status == 0 and r2.status == 0

