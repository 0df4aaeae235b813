"""The shortage result and its shapes: the frame most urgent first, one JSON record per
customer, and the flat CSV/xlsx table."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from tierctl.kernels.codes import join_categoricals
from tierctl.kernels.join_cache import JoinCache
from tierctl.shortage.escalation import parse_holds
from tierctl.shortage.model import ShortageModel


@dataclass
class ShortageResult:
    """``customers`` is the scored frame sorted most urgent first.  Sorting every column
    of a million rows costs half a second, so it happens on first use; ``columns()``
    sorts only the columns asked for, and ``unordered`` serves sums and counts."""

    as_of: dt.date
    now: dt.datetime
    model: ShortageModel
    frame: pd.DataFrame  # in the export's row order
    order: np.ndarray  # positions in ``frame``, most urgent first
    warnings: list[str]
    # each row of ``frame``: its position in the ``previous`` frame scoring compared with
    # (−1: not there), and that frame's keys — the store's morning run reuses the join
    # instead of hashing a million keys again
    previous_positions: np.ndarray | None = None
    previous_keys: pd.Series | None = None

    @classmethod
    def from_sorted(cls, *, as_of: dt.date, now: dt.datetime, model: ShortageModel, customers: pd.DataFrame,
                    warnings: list[str]) -> ShortageResult:
        """A result whose frame is already most urgent first (e.g. read back from the store)."""
        customers = customers.reset_index(drop=True)
        res = cls(as_of=as_of, now=now, model=model, frame=customers, order=np.arange(len(customers)),
                  warnings=warnings)
        res.__dict__["customers"] = customers
        return res

    @functools.cached_property
    def customers(self) -> pd.DataFrame:
        return self.frame.take(self.order).reset_index(drop=True)

    @property
    def unordered(self) -> pd.DataFrame:
        """Every customer, in no particular order (for counts, sums and maxima)."""
        return self.__dict__.get("customers", self.frame)

    @property
    def unordered_order(self) -> np.ndarray:
        """Positions in :attr:`unordered`, most urgent first."""
        return np.arange(len(self.frame)) if "customers" in self.__dict__ else self.order

    def columns(self, names: list[str]) -> pd.DataFrame:
        """Just these columns, most urgent first."""
        if "customers" in self.__dict__:
            return self.customers[names]
        return self.frame[names].take(self.order).reset_index(drop=True)

    def positions_in_previous(self, keys: pd.Series) -> np.ndarray | None:
        """For ``customers`` (most urgent first), each one's position in the previous
        run's rows whose keys are ``keys`` — when scoring joined with exactly those keys
        in that order (checked key by key); None otherwise."""
        return JoinCache(self.previous_positions, self.previous_keys).positions_for(keys, self.order)

    def counts(self) -> dict[str, int]:
        vc = self.unordered["tier"].value_counts()
        return {t: int(vc.get(t, 0)) for t in self.model.tier_names}

    def reasons(self, i: int) -> list[str]:
        row = self.customers.iloc[i]
        return row_reasons(row, self.model)

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per customer (the JSON shape), most urgent first."""
        return [customer_record(r, self.model) for r in self.customers.to_dict("records")]

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "model": self.model.name,
            "generated_at": self.now.isoformat(),
            "counts": self.counts(),
            "customers": self.records(),
            "warnings": list(self.warnings),
        }


def row_reasons(row: Any, model: ShortageModel) -> list[str]:
    out = [row[f"reason_{d.key}"] for d in model.dimensions]
    esc = row["escalations"]
    if isinstance(esc, str) and esc:
        out.extend(esc.split("\n"))
    return out


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _person(r: dict[str, Any]) -> str | None:
    """The named owner (an assignment, else the export's advisor): see tierctl.owners."""
    from tierctl.daily.owners import person_of

    return person_of(r)


def customer_record(r: dict[str, Any], model: ShortageModel) -> dict[str, Any]:
    esc = r["escalations"]
    return {
        "customer_id": _plain(r.get("customer_id")),
        "name": _plain(r.get("name")),
        "phone": _plain(r.get("phone")),
        "car": _plain(r.get("car")),
        "wait_days": int(r["wait_days"]),
        "dims": {d.key: int(r[d.key]) for d in model.dimensions},
        "score": float(Decimal(int(r["total_scaled"])) / model.scale),
        "model_tier": r["model_tier"],
        "tier": r["tier"],
        "reasons": row_reasons(r, model),
        "escalations": [e for e in esc.split("\n")] if isinstance(esc, str) and esc else [],
        "owner": r["owner"],
        "owner_role": _plain(r.get("owner_role")),
        "owner_person": _person(r),
        "respond_by": r["respond_by"].isoformat(),
        "cadence_days": int(r["cadence_days"]),
        "channel": r["channel"],
        "compensation": list(model.tier(r["tier"]).compensation),
        "alerts": [a for a in r["alerts"].split("\n")] if isinstance(r["alerts"], str) and r["alerts"] else [],
        # the raises that hold from an earlier run (or start today): rule, since, reason
        "holds": parse_holds(r.get("holds")),
        "media_attention": _flag(r.get(model.pr_plan_field)) if model.pr_plan_field else False,
        "row": int(r["_row"]),
    }


def _flag(v: Any) -> bool:
    v = _plain(v)
    return bool(v) if v is not None and not (isinstance(v, float) and np.isnan(v)) else False


def flat_frame(result: ShortageResult, *, ordered: bool = True) -> pd.DataFrame:
    """The CSV shape: one row per customer, reasons joined; most urgent first, or with
    ``ordered=False`` in :attr:`ShortageResult.unordered`'s order (the writer then goes
    through ``result.unordered_order``, so no sorted copy of the table is built)."""
    model = result.model
    want = ["customer_id", "name", "phone", "car", "wait_days", *model.dim_keys, "total_scaled", "model_tier", "tier",
            "owner", "owner_role", "owner_person", "advisor", "respond_by", "cadence_days", "channel",
            *(f"reason_{k}" for k in model.dim_keys), "escalations", "alerts"]
    names = [k for k in want if k in result.unordered]
    # unordered: the frame's own columns one by one (a selection of several would copy the
    # integer columns out of their shared block)
    c: Any = result.columns(names) if ordered else _Columns(result.unordered, names)
    cols: dict[str, Any] = {}
    for k in ("customer_id", "name", "phone", "car"):
        cols[k] = c[k] if k in c else pd.Series([None] * len(c))
    cols["wait_days"] = c["wait_days"]
    for d in model.dimensions:
        cols[d.key] = c[d.key]
    cols["score"] = (c["total_scaled"] / model.scale).round(model.decimals)
    cols["model_tier"] = c["model_tier"]
    cols["tier"] = c["tier"]
    cols["owner"] = c["owner"]
    cols["owner_role"] = c["owner_role"]
    person = c["owner_person"] if "owner_person" in c else (c["advisor"] if "advisor" in c else None)
    cols["owner_person"] = person if person is not None else pd.Series([None] * len(c), dtype=object)
    codes, stamps = pd.factorize(c["respond_by"])
    cols["respond_by"] = pd.Categorical.from_codes(codes, categories=[t.isoformat() for t in stamps])
    cols["cadence_days"] = c["cadence_days"]
    cols["channel"] = c["channel"]
    cols["reasons"] = join_categoricals([c[f"reason_{d.key}"] for d in model.dimensions], "；")
    for k in ("escalations", "alerts"):
        cols[k] = c[k].cat.rename_categories([x.replace("\n", "；") for x in c[k].cat.categories])
    return pd.DataFrame(cols, copy=False)  # (the columns as they are: no copy of a million rows)


class _Columns:
    """Some columns of a frame, each read as a Series on the frame's own data, with a
    fresh 0…n−1 index (the little of a frame that :func:`flat_frame` uses)."""

    def __init__(self, frame: pd.DataFrame, names: list[str]) -> None:
        self.frame, self.names = frame, set(names)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, name: str) -> pd.Series:
        s = self.frame[name]
        return s if isinstance(s.index, pd.RangeIndex) and s.index.start == 0 and s.index.step == 1 \
            else s.reset_index(drop=True)


def table_columns(model: ShortageModel) -> dict[str, Any]:
    """The model's own columns of the exported table: one per dimension, headed by its
    key and label (``R 舆情风险``)."""
    return {"@dimensions": [{"key": d.key, "zh": f"{d.key} {d.label}", "en": f"{d.key} {d.label_en or d.label}",
                             "type": "int"} for d in model.dimensions]}
