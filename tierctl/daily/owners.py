"""Named owners, pure: the tier policy decides the *role* that must act (服务经理, SA主管,
SA, 系统), the export's advisor column (服务顾问 / SA / 顾问 / advisor) or a stored
assignment (``tierctl assign``) decides the *person*.

``owner_person`` is the column name everywhere (run rows, tasks, JSON, CSV), beside the
existing ``owner`` (the role's text) and ``owner_role`` (the role's key); the group robot
and anyone else who needs the person read that field.  :func:`tierctl.daily.actions.assign_owner` (``tierctl
assign``) records a person on the store (:mod:`tierctl.store.owners`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    pass

PERSON = "owner_person"
ADVISOR = "advisor"


def _norm(text: Any) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().casefold().replace(" ", "")


def with_person(frame: pd.DataFrame, assigned: pd.DataFrame | None, *, key: str = "key") -> pd.DataFrame:
    """``frame`` with ``owner_person``: the active assignment of the customer (``assigned``:
    ``customer_key``, ``person``), else the export's advisor, else missing."""
    n = len(frame)
    if ADVISOR in frame:
        base = frame[ADVISOR].astype(object).where(frame[ADVISOR].notna(), None).to_numpy(dtype=object)
    else:
        base = np.full(n, None, dtype=object)
    if assigned is not None and len(assigned) and n:
        by_key = dict(zip(assigned["customer_key"].astype(str), assigned["person"], strict=True))
        keys = frame[key].astype(str).to_numpy(dtype=object)
        hit = pd.Series(keys).map(by_key).to_numpy(dtype=object)
        took = pd.notna(hit)
        if took.any():
            base = base.copy()
            base[took] = hit[took]
    out = frame.copy(deep=False)
    out[PERSON] = pd.Series(base, index=frame.index, dtype=object)
    return out


def person_of(row: Mapping[str, Any]) -> str | None:
    """The person of one customer row (``owner_person``, else the advisor)."""
    for col in (PERSON, ADVISOR):
        if col in row:
            v = row[col]
            if v is not None and not (isinstance(v, float) and v != v) and v is not pd.NA and str(v).strip():
                return str(v).strip()
            if col == PERSON:
                return None
    return None


def role_names(tier: Mapping[str, Any]) -> set[str]:
    """Every way a user may name a tier's owner role (normalised)."""
    out = set()
    for k in ("owner", "owner_short", "owner_short_en", "owner_role"):
        v = tier.get(k)
        if v:
            out.add(_norm(v))
    return out


def owner_mask(labels: pd.Series, persons: pd.Series | None, who: str,
               tiers: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Rows whose person is ``who``, or whose tier's owner role is named ``who``
    (服务经理 / SA主管 / SA / service_manager …)."""
    want = _norm(who)
    roles = {t["name"]: role_names(t) for t in tiers}
    by_role = labels.astype(object).map(lambda t: want in roles.get(t, set())).to_numpy(dtype=bool, na_value=False)
    if persons is None:
        return by_role
    p = persons.astype(object)
    by_person = p.map(lambda v: v is not None and v == v and _norm(v) == want).to_numpy(dtype=bool, na_value=False)
    return by_role | by_person


def known_people(persons: pd.Series | None) -> list[str]:
    if persons is None:
        return []
    return sorted({str(v) for v in persons.dropna().tolist() if str(v).strip()})
