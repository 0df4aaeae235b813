"""The whole allocation run: the scored list (job A's result) → the allocation frame →
the plan → the store → the result.

Takes the configuration (days to the ETA: ``parts.eta_date`` / ``parts.eta_weeks``) and
the store (a callable opening it; ``None``: do not store) as parameters; the scored list
comes from the caller (the CLI scores a FILE, or loads the day's stored scores).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from tierctl.allocate.history import save_plan
from tierctl.allocate.ingest import frame_from_scores
from tierctl.allocate.model import AllocateModel
from tierctl.allocate.score import allocate


def eta_days(config: Any, as_of: dt.date, model: Any) -> tuple[int, str]:
    """Days to the ETA from the configuration (``parts.eta_date`` / ``parts.eta_weeks``,
    as the documents read it), else the model's default; with where it came from."""
    from tierctl.render import values as docs

    plan = docs.eta_plan(config, as_of)
    if plan.general is not None:
        return max((plan.general - as_of).days, 0), f"配置 {plan.general_source}（{plan.general.isoformat()} 到货）"
    return int(model.days_to_eta), f"分配模型 {model.name} 的默认值"


def run_allocate(result: Any, model: AllocateModel, *, config: Any, loaners: int, premium_loaners: int,
                 budget: Decimal, days_to_eta: int | None, warnings: list[str],
                 open_store: Callable[[], Any] | None = None, source: Path | None = None) -> dict[str, Any]:
    """Allocate on ``result`` and store the plan (when ``open_store`` is given).  Returns
    ``allocation``, ``result``, ``model``, ``days_source``, ``resources``, ``warnings`` and
    ``stored`` (the snapshot's summary, or None)."""
    if days_to_eta is None:
        days, days_source = eta_days(config, result.as_of, model)
    else:
        days, days_source = days_to_eta, "命令行 --days-to-eta"
    alloc = allocate(frame_from_scores(result), model, loaners=loaners, premium_loaners=premium_loaners,
                     budget=budget, days_to_eta=days)
    resources = {"loaners": loaners, "premium_loaners": premium_loaners, "budget": int(budget),
                 "days_to_eta": days}
    stored = None
    if open_store is not None:
        from tierctl.kernels.file_hash import sha256_file

        source_hash = sha256_file(source) if source else None
        with open_store() as store:
            stored = save_plan(store, result, alloc, resources=resources, days_source=days_source,
                               source_name=source.name if source else None, source_hash=source_hash)
    return {"allocation": alloc, "result": result, "model": model, "days_source": days_source,
            "resources": resources, "warnings": warnings + list(alloc.warnings), "stored": stored}
