"""RFM segmentation (job C): score every customer 1–5 on R, F and M and sort them into 8 types.

The package, one module per concern (issue 15):

* :mod:`~tierctl.rfm.model` – the model file, bin edges, the type mapping;
* :mod:`~tierctl.rfm.score` – :func:`compute_rfm`, pure (every rule is in its docstring);
* :mod:`~tierctl.rfm.engine` – the per-unit grouping, DuckDB over Arrow;
* :mod:`~tierctl.rfm.result` – :class:`RfmResult` and its JSON;
* :mod:`~tierctl.rfm.history` – month-over-month migration and the stored snapshot shape;
* :mod:`~tierctl.rfm.report` – the weekly and migration workbooks;
* :mod:`~tierctl.rfm.run` – the whole run: ingest → score → store → result.
"""

from tierctl.kernels.json_records import json_document, json_document_bytes, json_records
from tierctl.rfm.history import (
    Migration,
    customers_from_snapshot,
    flow_customers,
    migrate,
    rescore,
    snapshot_meta,
    snapshot_rows,
)
from tierctl.rfm.model import (
    DIMENSIONS,
    N_SCORES,
    Edges,
    KeyFlow,
    RfmModel,
    RfmType,
    load_rfm_model,
    rfm_type,
    rfm_types,
)
from tierctl.rfm.result import RfmResult
from tierctl.rfm.score import compute_rfm, quantile_scores

__all__ = [
    "DIMENSIONS",
    "N_SCORES",
    "Edges",
    "KeyFlow",
    "Migration",
    "RfmModel",
    "RfmResult",
    "RfmType",
    "compute_rfm",
    "customers_from_snapshot",
    "flow_customers",
    "json_document",
    "json_document_bytes",
    "json_records",
    "load_rfm_model",
    "migrate",
    "quantile_scores",
    "rescore",
    "rfm_type",
    "rfm_types",
    "snapshot_meta",
    "snapshot_rows",
]
