"""Churn-risk graded response (流失风险分级响应), SPEC part B — the job's package.

Modules: :mod:`~tierctl.churn.model` (load + validate), :mod:`~tierctl.churn.signals`
(the signal rule classes, in the one registry), :mod:`~tierctl.churn.score` (pure),
:mod:`~tierctl.churn.effect` and :mod:`~tierctl.churn.roi` (the closed loop's
arithmetic), :mod:`~tierctl.churn.history` (what the job stores and reads back),
:mod:`~tierctl.churn.report` / :mod:`~tierctl.churn.workbook` (the period report),
:mod:`~tierctl.churn.touches` / :mod:`~tierctl.churn.festivals` (upkeep) and
:mod:`~tierctl.churn.run` (the job's whole runs).  This package re-exports the pure
core; the store-facing parts are imported from their modules.

``score_churn(frame, model, as_of, now)`` gives every customer a 0–100 risk score, the
reasons behind it, a level (低 / 中 / 高 / 极高), who must act and by when, the budget,
a plan chosen by churn reason (and, for 中, an incentive by customer type — never one
coupon for everybody) and the follow-up dates.  The rest of the module is the closed
loop: follow-up dates, whether an intervention worked, win-back, ROI with the
counterfactual, KPIs against targets and win-back benchmarks.

Everything numeric comes from the model file (``tierctl/models/churn.toml``); :mod:`tierctl.churn.signals`
holds the rule *classes* (``type = "overdue" | "days_since" | "band" | "drop" |
"pct_drop" | "keywords" | "flag"``), each checked when the model loads.

No I/O, no clock: ``as_of`` and ``now`` are parameters.  Thresholds are compared in
exact arithmetic (values scaled to hundredths as integers, thresholds as fractions), so
a ticket falling from 2000 to 1000 is exactly a 50 % drop.

Decisions where the playbook is silent (the model file repeats the tunable ones):

* A ``risk_score`` cell is used as given per row; rows where it is empty are scored
  from the signals.  Fractional scores are kept and banded by upper bounds (40.5 → 中).
* Signals sharing a ``group`` (open-complaint flag and complaint words) count once; the
  losing one is still listed with ``+0`` so ``why`` shows everything that was seen.
* Overdue needs both ratio (≥ 1.25 × usual interval) and lateness (≥ 30 days), so a
  customer on a 20-day rhythm is not "wavering" after 25 days.
* 高价值 is annual spend strictly above 8,000; an empty spend counts as ordinary.  The
  value matrix only ever raises the level's own owner; so does a churn reason with an
  ``owner`` (none in the packaged model) when its plan is part of the customer's plan.
* Every plan text is said to the customer's final owner: ``{owner}`` in an action or
  plan is that owner's label, ``actions.<owner>`` gives an owner a sentence of its own,
  and a text that would name another owner than the one it is said to is refused when
  the model loads (an owner of 店长 is never told "SA 3日内电话关怀").
* Plan: 低 gets upkeep only; 中 gets the incentive of its customer type, else the plan
  of its churn reason(s), else "ask first"; 高/极高 get the plan of every churn reason
  found.  Reasons come from the 流失原因 column, else are inferred from 备注 keywords.
* Follow-ups in a scoring run count from ``as_of`` (the alert day).  Deadlines count
  from ``now``; day targets may count China's official working days (off by default).
  Each level's follow-ups are data (``followups = [{ days, owner?, channel?, detail? }]``,
  or the short ``followup_days``); the store-facing loop (:mod:`tierctl.churn.history`)
  schedules them after an intervention.
* What ``churn log --result`` accepts is data too (``[[outcomes]]``): each outcome says
  whether the customer was reached (客户接触率) and the problem solved (问题解决率).
* ``model.ingest_columns`` is the model's ``[columns]`` for the shared ingest
  (``read_export``), so headers, aliases, mapping files, encodings and row numbers
  behave as in ``tierctl score``; ``model.visit_columns`` reads a visits export.
* Duplicated customer ids stop the run (InputError naming the rows): merging them
  silently would mix two people's history.
* ``roi`` is the playbook's (all won-back customers credited); ``incremental_roi``
  credits only churn avoided versus the base rate — on the seed table it is −23 %.
"""

from __future__ import annotations

from tierctl.churn.effect import (
    add_months,
    followup_dates,
    intervention_effect,
    rows_per_level,
    win_back_flags,
    won_back,
)
from tierctl.churn.model import (
    COLUMN_KINDS,
    VALUE_SEGMENTS,
    ChurnModel,
    CustomerType,
    FollowupStep,
    Kpi,
    Level,
    Outcome,
    Reason,
    load_churn_model,
)
from tierctl.churn.roi import (
    KpiResult,
    LevelROI,
    ROIReport,
    benchmark_status,
    evaluate_kpis,
    percent,
    roi_report,
    wan,
)
from tierctl.churn.score import ChurnResult, score_churn
from tierctl.churn.signals import (
    SIGNALS,
    Band,
    BandSignal,
    DaysSinceSignal,
    DropSignal,
    FlagSignal,
    KeywordsSignal,
    OverdueSignal,
    PctDropSignal,
    Signal,
)
from tierctl.io.ingest import ColumnSpec

__all__ = [
    "COLUMN_KINDS", "SIGNALS", "VALUE_SEGMENTS", "Band", "BandSignal", "ChurnModel", "ChurnResult", "ColumnSpec",
    "CustomerType", "DaysSinceSignal", "DropSignal", "FlagSignal", "FollowupStep", "KeywordsSignal", "Kpi",
    "KpiResult", "Level", "LevelROI", "Outcome", "OverdueSignal", "PctDropSignal", "ROIReport", "Reason", "Signal",
    "add_months", "benchmark_status", "evaluate_kpis", "followup_dates", "intervention_effect", "load_churn_model",
    "percent", "roi_report", "rows_per_level", "score_churn", "wan", "win_back_flags", "won_back",
]
