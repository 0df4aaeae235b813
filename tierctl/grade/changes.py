"""Changes of the final grade against the previous grading, and for every downgrade the
data a 降级说明函 needs (pure: frames in, plain JSON out)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import InputError
from tierctl.grade.indicators import FULL, NORMALISERS
from tierctl.grade.inputs import _fmt_num, _some
from tierctl.grade.model import Indicator
from tierctl.grade.result import GradeResult, _nan_none, _records


@dataclass
class GradeChanges:
    """Upgrades and downgrades of the final grade since the previous grading.

    ``upgrades``/``downgrades``: customer_id, name, prev_grade, grade, prev_composite,
    composite, overridden.  ``letters``: one dict per downgrade (plain JSON types) with
    what a 降级说明函 needs — ``basis`` (sentences), ``moved`` (the indicators that fell
    most, with their weighted effect on the composite) and ``restore`` (the composite
    the previous grade needs, the gap, and per actionable indicator the score — and
    approximately the value — that alone would close it).
    """

    upgrades: pd.DataFrame
    downgrades: pd.DataFrame
    letters: list[dict[str, Any]]
    new: list[str]
    gone: list[str]
    unchanged: int
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "upgrades": _records(self.upgrades),
            "downgrades": self.letters,
            "new": list(self.new),
            "gone": list(self.gone),
            "unchanged": self.unchanged,
            "warnings": list(self.warnings),
        }


def _prev_scores(prev: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Indicator scores of the previous grading, from ``<key>_score`` columns or an
    ``indicators`` column of dicts / JSON text (how a store may keep them)."""
    out = pd.DataFrame(index=prev.index)
    nested = None
    if "indicators" in prev.columns:
        items = [json.loads(x) if isinstance(x, str) else (x if isinstance(x, dict) else {})
                 for x in prev["indicators"].tolist()]
        nested = pd.DataFrame(items, index=prev.index)
    for k in keys:
        for suffix in ("score", "value"):
            col = f"{k}_{suffix}"
            if col in prev.columns:
                out[col] = pd.to_numeric(prev[col], errors="coerce").astype(float)
            elif suffix == "score" and nested is not None and k in nested.columns:
                out[col] = pd.to_numeric(nested[k], errors="coerce").astype(float)
            else:
                out[col] = np.nan
    return out


def compare(prev: pd.DataFrame, curr: GradeResult) -> GradeChanges:
    """Changes of the final grade from ``prev`` (the previous grading) to ``curr``.

    ``prev`` needs ``customer_id`` and ``grade``; ``composite``, ``overridden``,
    ``override_reason`` and the indicator scores (``<key>_score`` columns, or an
    ``indicators`` column of dicts) make the letters richer.  The shape of
    :attr:`GradeResult.customers` is accepted as is.  Only downgrades get a letter;
    customers new in ``curr`` or gone from it are listed, not compared.
    """
    model = curr.model
    keys = [i.key for i in curr.indicators]
    warnings: list[str] = []
    if "customer_id" not in prev.columns or "grade" not in prev.columns:
        raise InputError("上次分级的数据缺少 customer_id 或 grade 列")
    p = pd.DataFrame({"customer_id": prev["customer_id"].astype("string").str.strip()}, index=prev.index)
    if p["customer_id"].duplicated().any():
        raise InputError("上次分级中有重复的客户编号：" + _some(p.loc[p["customer_id"].duplicated(), "customer_id"]))
    p["prev_rank"] = model.ranks(prev["grade"])
    # the canonical name, even if the previous grading (or an override) used an alias
    p["prev_grade"] = np.where(np.isnan(p["prev_rank"].to_numpy(dtype=float)),
                               prev["grade"].astype(object).to_numpy(),
                               np.array(model.categories + [""], dtype=object)[
                                   np.nan_to_num(p["prev_rank"].to_numpy(dtype=float), nan=-1).astype(int)])
    p["prev_composite"] = (pd.to_numeric(prev["composite"], errors="coerce").astype(float)
                           if "composite" in prev.columns else np.nan)
    p["prev_overridden"] = (prev["overridden"].fillna(False).astype(bool).to_numpy()
                            if "overridden" in prev.columns else False)
    p["prev_override_reason"] = (prev["override_reason"].astype(object).to_numpy()
                                 if "override_reason" in prev.columns else None)
    ps = _prev_scores(prev, keys).add_prefix("prev_")
    p = pd.concat([p, ps], axis=1)
    unknown = p["prev_rank"].isna()
    if unknown.any():
        names = sorted({str(x) for x in p.loc[unknown, "prev_grade"].tolist()})
        warnings.append(f"上次分级中的等级 {'、'.join(names)} 不在当前模型中，{int(unknown.sum())} 位客户不作比较")
        p = p[~unknown]

    c = curr.customers.copy()
    c["rank"] = c["grade"].cat.codes.to_numpy()
    m = c.reset_index(drop=True).merge(p.reset_index(drop=True), on="customer_id", how="outer", indicator=True)
    new = sorted(m.loc[m["_merge"] == "left_only", "customer_id"].astype(str).tolist())
    gone = sorted(m.loc[m["_merge"] == "right_only", "customer_id"].astype(str).tolist())
    both = m[m["_merge"] == "both"].copy()
    both["prev_rank"] = both["prev_rank"].astype(int)
    up = both[both["rank"] > both["prev_rank"]]
    down = both[both["rank"] < both["prev_rank"]].sort_values("customer_id")
    cols = ["customer_id", *(["name"] if "name" in both.columns else []), "prev_grade", "grade",
            "prev_composite", "composite", "overridden"]
    upgrades = up.sort_values("customer_id")[cols].reset_index(drop=True)
    upgrades["grade"] = upgrades["grade"].astype(object)
    downgrades = down[cols].reset_index(drop=True)
    downgrades["grade"] = downgrades["grade"].astype(object)
    letters = _letters(down.reset_index(drop=True), curr) if len(down) else []
    return GradeChanges(upgrades=upgrades, downgrades=downgrades, letters=letters, new=new, gone=gone,
                        unchanged=int((both["rank"] == both["prev_rank"]).sum()), warnings=warnings)



def _needed_value(ind: Indicator, curr: GradeResult, target_h: np.ndarray) -> np.ndarray:
    """Roughly the value that earns ``target_h`` hundredths today (NaN if none does).

    Thresholds: the minimum of the lowest band giving that many points.  Percentile:
    the lowest value among today's customers whose score reaches the target —
    approximate, since one customer moving also moves the ranks (hence "约" in letters).
    """
    c = curr.customers
    return NORMALISERS[ind.normalise].needed_value(ind, c[ind.value_column].to_numpy(dtype=float),
                                                   c[ind.score_column].to_numpy(dtype=float), target_h)


def _col(df: pd.DataFrame, name: str, default: Any = None) -> list[Any]:
    """A column as a list of plain Python values (NaN/NA → None), or ``default`` for all."""
    if name not in df.columns:
        return [default] * len(df)
    s = df[name]
    if pd.api.types.is_float_dtype(s.dtype):
        a = s.to_numpy(dtype=float, na_value=np.nan)
        o = a.astype(object)
        o[np.isnan(a)] = None
        return o.tolist()
    return [_nan_none(v) for v in s.astype(object).tolist()]



@dataclass
class _LetterMath:
    """The arithmetic of every downgrade's letter, on whole columns (row j, indicator k)."""

    score: np.ndarray  # today's indicator scores (NaN: not counted)
    prev_score: np.ndarray
    cents: np.ndarray  # today's composite, hundredths
    needed: np.ndarray  # the composite the previous grade needs, hundredths
    gap: np.ndarray
    impact: np.ndarray  # weighted effect of each indicator's change on the composite
    sort_key: np.ndarray  # most negative impact first; rises and unknowns = inf
    order: np.ndarray  # the indicators that moved most, per row
    target: np.ndarray  # score each indicator alone needs (hundredths), -1 = not counted
    value_needed: np.ndarray


def _letter_math(down: pd.DataFrame, curr: GradeResult) -> _LetterMath:
    model = curr.model
    present = curr.indicators
    bands_low = model.grades[::-1]
    w = np.array([i.weight_units for i in present], dtype=np.int64)
    score = np.column_stack([down[i.score_column].to_numpy(dtype=float) for i in present])
    prev_score = np.column_stack([down[f"prev_{i.score_column}"].to_numpy(dtype=float) for i in present])
    counted = ~np.isnan(score)
    score_h = np.where(counted, np.rint(np.nan_to_num(score) * 100), 0).astype(np.int64)
    wsum = (counted * w).sum(axis=1)
    num = (score_h * w).sum(axis=1)
    cents = np.rint(down["composite"].to_numpy(dtype=float) * 100).astype(np.int64)
    needed = np.array([g.min_h for g in bands_low], dtype=np.int64)[down["prev_rank"].to_numpy(dtype=int)]
    gap = np.maximum(needed - cents, 0)

    # weighted effect of each indicator's change on the composite (composite points);
    # the most negative first, rises and unknowns (NaN) never count as "moved"
    impact = (score - prev_score) * w / np.maximum(wsum, 1)[:, None]
    sort_key = np.where(np.isnan(impact) | (impact >= 0), np.inf, impact)
    order = np.argsort(sort_key, axis=1, kind="stable")[:, : model.letter_top_indicators]

    # score each indicator alone needs: the smallest d with
    # round_half_up((num + w·d)/wsum) ≥ needed  ⇔  2(num + w·d) + wsum ≥ 2·wsum·needed
    lack = (2 * wsum * needed - wsum - 2 * num)[:, None]
    d = np.maximum(-(-lack // (2 * w[None, :])), 0)
    target = np.where(counted, score_h + d, -1)
    value_needed = np.column_stack([_needed_value(i, curr, np.maximum(target[:, k], 0))
                                    for k, i in enumerate(present)])
    return _LetterMath(score, prev_score, cents, needed, gap, impact, sort_key, order, target, value_needed)


def _letters(down: pd.DataFrame, curr: GradeResult) -> list[dict[str, Any]]:
    """Letter data for each downgraded row of the merged frame.

    The arithmetic is done on whole columns; the loop at the end only assembles dicts.
    """
    present = curr.indicators
    m = _letter_math(down, curr)
    cols = {name: _col(down, name) for name in ("customer_id", "name", "phone", "prev_grade", "grade",
                                                "prev_composite", "override_reason", "prev_overridden")}
    over = down["overridden"].to_numpy(dtype=bool).tolist()
    values = {i.key: _col(down, i.value_column) for i in present}
    prev_values = {i.key: _col(down, f"prev_{i.value_column}") for i in present}
    lists = {"score": m.score.tolist(), "prev": m.prev_score.tolist(), "impact": m.impact.tolist(),
             "target": m.target.tolist(), "vneed": m.value_needed.tolist()}
    out: list[dict[str, Any]] = []
    for j in range(len(down)):
        prev_g, g = str(cols["prev_grade"][j]), str(cols["grade"][j])
        prev_c, comp = cols["prev_composite"][j], m.cents[j] / 100
        need_txt = _fmt_num(m.needed[j] / 100)
        moved = []
        for k in m.order[j].tolist():
            if m.sort_key[j, k] == np.inf:
                break
            i = present[k]
            moved.append({"indicator": i.key, "label": i.label, "unit": i.unit,
                          "prev_score": _nan_none(lists["prev"][j][k]), "score": _nan_none(lists["score"][j][k]),
                          "prev_value": prev_values[i.key][j], "value": values[i.key][j],
                          "impact": round(lists["impact"][j][k], 2)})
        basis = _basis(moved, prev_g, g, prev_c, comp, need_txt, over[j], cols["override_reason"][j],
                       bool(cols["prev_overridden"][j]))
        options = _options(present, moved, lists, j)
        text = _restore_text(options, prev_g, int(m.gap[j]), need_txt, over[j])
        out.append({
            "customer_id": str(cols["customer_id"][j]),
            "name": cols["name"][j],
            "phone": cols["phone"][j],
            "prev_grade": prev_g,
            "grade": g,
            "prev_composite": prev_c,
            "composite": comp,
            "overridden": over[j],
            "override_reason": cols["override_reason"][j] if over[j] else None,
            "prev_overridden": bool(cols["prev_overridden"][j]),
            "basis": basis,
            "moved": moved,
            "restore": {"grade": prev_g, "composite_needed": m.needed[j] / 100, "gap": m.gap[j] / 100,
                        "options": options, "text": text},
        })
    return out


def _basis(moved: list[dict[str, Any]], prev_g: str, g: str, prev_c: Any, comp: float, need_txt: str,
           over: bool, override_reason: Any, prev_overridden: bool) -> list[str]:
    """Why the grade fell, in sentences."""
    basis = [f"综合分由 {prev_c:.2f} 变为 {comp:.2f}；{prev_g}需 ≥{need_txt}" if prev_c is not None
             else f"本次综合分 {comp:.2f}；{prev_g}需 ≥{need_txt}"]
    for mv in moved:
        frm = "" if mv["prev_value"] is None else f"{_fmt_num(mv['prev_value'])}{mv['unit']} → "
        to = "" if mv["value"] is None else f"{_fmt_num(mv['value'])}{mv['unit']}，"
        same = mv["value"] is not None and mv["value"] == mv["prev_value"]
        why = "（数值未变，其他客户提高后排名下降）" if same else ""
        basis.append(f"{mv['label']}：{frm}{to}得分 {_fmt_num(mv['prev_score'])} → "
                     f"{_fmt_num(mv['score'])}{why}，综合分因此减少 {abs(mv['impact']):.2f}")
    if over:
        basis.append(f"人工调整为 {g}：{override_reason}")
    elif prev_overridden:
        basis.append(f"上次的{prev_g}为人工调整，本次按综合评分定级")
    return basis


def _options(present: list[Indicator], moved: list[dict[str, Any]], lists: dict[str, list[Any]],
             j: int) -> list[dict[str, Any]]:
    """Per actionable indicator, the score (and roughly the value) that alone restores the grade."""
    options = []
    for k, i in enumerate(present):
        t = lists["target"][j][k]
        if not i.actionable or t < 0:
            continue
        reach = t <= FULL
        options.append({"indicator": i.key, "label": i.label, "unit": i.unit,
                        "score": _nan_none(lists["score"][j][k]), "score_needed": t / 100, "reachable": reach,
                        "value_needed": _nan_none(lists["vneed"][j][k]) if reach else None})
    # the indicators that fell first: that is where the customer most easily recovers
    rank = {mv["indicator"]: r for r, mv in enumerate(moved)}
    options.sort(key=lambda o: (rank.get(o["indicator"], len(rank)), not o["reachable"], o["score_needed"]))
    return options


def _restore_text(options: list[dict[str, Any]], prev_g: str, gap: int, need_txt: str, over: bool) -> list[str]:
    if over and gap == 0:
        return [f"综合分已达到{prev_g}标准，当前等级由人工调整决定；调整原因消除后即可恢复{prev_g}"]
    text = [f"综合分提高 {gap / 100:.2f} 分（达到 {need_txt}）即可恢复{prev_g}"]
    for o in options:
        if o["reachable"]:
            val = "" if o["value_needed"] is None else f"（约 {_fmt_num(o['value_needed'])}{o['unit']}）"
            text.append(f"例如单靠{o['label']}：得分由 {_fmt_num(o['score'])} 提高到 "
                        f"{_fmt_num(o['score_needed'])}{val}")
    return text
