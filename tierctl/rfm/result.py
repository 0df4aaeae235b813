"""What one RFM run produced (:class:`RfmResult`) and its JSON forms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from tierctl.kernels.json_records import Verbatim, json_document_bytes, json_records
from tierctl.rfm.model import Edges


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
        customers = Verbatim(json_records({k: c[col] for k, col in fields.items()}))
        quality = Verbatim(json_records(_quality_columns(self.quality)))
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
