"""Reading a grading export and an overrides file through the shared ingest
(:mod:`tierctl.io.ingest`: headers, encodings, Excel row numbers as for every export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.grade.model import GradeModel
from tierctl.io.ingest import (
    ColumnSet,
    ColumnSpec,
    Export,
    _parse_one_date,
    load_mapping,
    read_export,
)
from tierctl.models.loader import Section


def read_grading_export(file: Path, model: GradeModel, *, sheet: str | None = None, encoding: str | None = None,
                        mapping: Path | None = None) -> Export:
    """The export, with the columns the model's file declares."""
    columns = ColumnSet.from_model(Section.load(model.path, kind="grade"))
    return read_export(file, columns, sheet=sheet, encoding=encoding, mapping=load_mapping(mapping),
                       mapping_path=mapping)


# The columns of an overrides file (CSV or xlsx), read through the shared ingest so
# headers, encodings and Excel row numbers behave as for every export.
OVERRIDE_COLUMNS = ColumnSet({
    "customer_id": ColumnSpec("customer_id", "text", ("客户编号", "客户ID", "客户id", "会员编号", "ID", "id",
                                                      "customer_id", "customer id"), required=True, label="客户编号"),
    "name": ColumnSpec("name", "text", ("客户姓名", "姓名", "name"), label="客户姓名"),
    "grade": ColumnSpec("grade", "text", ("等级", "调整为", "调整后等级", "人工等级", "客户等级", "新等级", "grade"),
                        required=True, label="等级"),
    "reason": ColumnSpec("reason", "text", ("原因", "调整原因", "理由", "说明", "reason"), required=True,
                         label="原因"),
    "by": ColumnSpec("by", "text", ("调整人", "经办人", "操作人", "审批人", "by"), label="调整人"),
    "at": ColumnSpec("at", "text", ("调整时间", "调整日期", "时间", "日期", "at"), label="调整时间"),
    "until": ColumnSpec("until", "text", ("有效期至", "截止日期", "到期日", "until"), label="有效期至"),
})



def read_overrides_file(path: Path, *, sheet: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """An overrides file as the frame :func:`grade_customers` takes (``_row`` = Excel
    row).  Dates may be written the ways Chinese Excel writes them."""
    ex = read_export(path, OVERRIDE_COLUMNS, sheet=sheet, encoding=encoding)
    f = ex.frame
    for col in ("at", "until"):
        if col in f.columns:
            f[col] = _times_as_text(f[col])
    return f


def _times_as_text(s: pd.Series) -> pd.Series:
    """ISO text (local wall time, as written) for every time pandas or the ingest's date
    forms (2026年11月20日, Excel serials) understand; anything else is left as written,
    for the grading to report with its row.  Override files are a few rows: one value
    at a time is fine, and lets one odd cell not spoil the others."""
    return pd.Series([_one_time(v) for v in s.astype(object).tolist()], index=s.index, dtype=object)


def _one_time(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    text = str(v).strip()
    if not text:
        return None
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError):
        t = None
    if t is None or t is pd.NaT:
        d = _parse_one_date(text)
        return text if d is None else pd.Timestamp(d).isoformat()
    if t.tzinfo is not None:
        t = t.tz_localize(None)  # the wall time as written
    return t.isoformat()

