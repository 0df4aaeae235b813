"""The job's constants and the small value helpers every part of the daily loop shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tierctl.kernels.records import column_records

KIND = "shortage"
# columns of ShortageResult.customers that follow from the tier (re-derived on reading)
POLICY_COLUMNS = ("owner", "owner_role", "channel", "action", "cadence_days")
OVERRIDE_ID = "人工调整"
CALL_TIERS = 2  # the 16:00 call list: the two most urgent tiers (P0, P1)
EVENING_MIN_DAYS = 15  # the evening written update: everyone waiting at least this long


def _lines(text: Any) -> list[str]:
    return [x for x in str(text).split("\n") if x] if isinstance(text, str) and text else []


def _rule_id(line: str) -> str:
    return line.split(":", 1)[0].strip()


def _after_colon(text: str) -> str:
    return text.split(": ", 1)[1] if ": " in text else text



def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _who(r: dict[str, Any]) -> dict[str, Any]:
    return {"customer_key": r.get("customer_key"), "customer_id": _plain(r.get("customer_id")),
            "name": _plain(r.get("name"))}


def _plain(v: Any) -> Any:
    if v is None or _isna(v):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _records(frame: pd.DataFrame, cols: Sequence[str], rename: dict[str, str] | None = None,
             rows: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Plain dicts of a few columns (:func:`tierctl.kernels.records.column_records`)."""
    return column_records(frame, cols, rename, rows)
