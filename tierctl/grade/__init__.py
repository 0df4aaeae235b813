"""Customer grading (客户分级, job D): a 0–100 composite, five grades, overrides, changes.

The package: ``model`` (load + validate), ``indicators`` (the registered derive and
normalise classes), ``inputs`` and ``score`` (pure grading), ``result`` (the result, its
reasons and JSON), ``changes`` (against the previous grading), ``history`` (the store),
``report`` (the 降级说明函), ``ingest`` and ``run`` (the whole run).

How the numbers are made (the model file ``tierctl/models/grade.toml`` says the same in
Chinese, for the user who copies it):

* **Indicator values.** Each indicator reads one column; a blank cell or a missing
  column can be *derived* (客单价 = 近12个月消费 ÷ 到店次数 when visits > 0;
  客户年限 = calendar months completed since 首次到店 up to ``as_of``, ÷ 12, so three
  full years is exactly 3.0).  A cell still blank afterwards follows the indicator's
  ``blank`` policy: ``zero`` (counts as 0 and is ranked), ``reweight`` (that customer is
  graded on his other indicators, their weights scaled up proportionally) or ``error``.
* **Missing indicator (decision for issue 7).** An indicator whose column is absent and
  cannot be derived — or whose column is entirely blank — is an :class:`InputError`
  when the model marks it ``required`` (spend, frequency, ticket in the default model:
  grading without them is meaningless); otherwise the remaining indicators are
  re-weighted proportionally (weight ÷ sum of the available weights) and the result
  carries a warning naming the missing indicator, the headers we looked for, and the
  weights actually used.
* **Percentile rank** (default normalisation), ties sharing a value::

      score = 100 × (below + (equal − 1) / 2) / (n − 1)

  where ``n`` counts the customers with a value for that indicator, ``below`` those with
  a strictly lower value and ``equal`` those with the same value (the customer
  included).  In words: the share of the *other* customers this one beats, a tie
  counting half.  Unique lowest = 0, unique highest = 100, all equal = 50, a single
  customer = 50 (nobody to compare with: the same rule as all equal).  The mean over
  all customers is always 50 whatever the ties, and row order cannot change anything.
* **Thresholds** (option): the points of the highest band whose ``min`` the value
  reaches, else ``below``.  Bands are checked at load to give never fewer points for a
  higher value, so raising an indicator never lowers the composite.
* **Which one (decision for issue 7).**  The model file's top-level ``normalise``
  (an indicator may override it; ``load_grade_model(normalise=…)``, the CLI's
  ``--normalise``, overrides both).  The packaged model keeps SPEC D's percentile
  default and carries calibrated bands for every indicator, so thresholds are one switch
  away.  Percentile composites bunch around 50 (the mean of several ranks), so the
  usual shares (VIP ~5 %, 休眠 ~15 %) are not met — on the sample VIP ≈ 2 %, 休眠 ≈ 42 %.
  That is reported as one explanation (:attr:`GradeResult.share_gap`, also one warning)
  that says how far off the shares are, why, and what to do — with the shares
  ``--normalise thresholds`` would give on the same file — and the CLI shows it before
  anything else (issue 14); a share is "far off" beyond ``share_tolerance_pct`` points *or* outside
  ``usual ÷ ratio … usual × ratio`` (so VIP at 1 % against 5 % is flagged although only
  4 points apart).
* **Exact composite.** Each indicator score is rounded half-up to 2 decimals (the
  number shown); the composite is ``Σ shown score × weight ÷ Σ weights used``, computed in
  integers (scores in hundredths, weights in units of 0.0001) and rounded half-up to 2
  decimals; that shown value is compared with the band minimums.  So 90.00 is VIP,
  89.99 is 核心, and a user who recomputes the composite in Excel from the shown
  indicator scores gets the same number and grade.
* **Overrides.** A manual grade always wins over the computed one (up or down); the
  computed grade stays visible, and the override's reason (required), who and when are
  carried in the result and its :attr:`GradeResult.audit`.  Among several overrides for
  one customer the one with the latest ``at`` wins (one without ``at`` counts as the
  oldest); two without a distinguishable ``at`` are an error (row order must not
  decide).  Overrides dated after ``as_of``
  are not yet in force, and those with an ``until`` before ``as_of`` have expired; both
  are reported as warnings.
* **Changes.** :func:`compare` lists upgrades and downgrades of the *final* grade
  against the previous grading, and for every downgrade (only downgrades) the data
  a 降级说明函 needs: the basis, the indicators that moved most, and what restores the
  grade (composite needed, and per indicator the score — and, approximately, the value
  — that alone would close the gap).
"""

from __future__ import annotations

from tierctl.grade.changes import GradeChanges, compare
from tierctl.grade.indicators import (
    DERIVES,
    FULL,
    NORMALISERS,
    Derive,
    DeriveRule,
    Normaliser,
    Percentile,
    Ratio,
    Thresholds,
    YearsSince,
    _band_index,
    _percentile_h,
    _thresholds_h,
    percentile_rank,
)
from tierctl.grade.inputs import _fmt_num
from tierctl.grade.model import (
    NORMALISE,
    WEIGHT_PLACES,
    WEIGHT_SCALE,
    Band,
    BlankPolicy,
    GradeBand,
    GradeModel,
    Indicator,
    Normalise,
    load_grade_model,
)
from tierctl.grade.result import GradeResult
from tierctl.grade.score import grade_customers
from tierctl.io.ingest import ColumnSpec

__all__ = [
    "DERIVES", "FULL", "NORMALISE", "NORMALISERS", "WEIGHT_PLACES", "WEIGHT_SCALE", "Band", "BlankPolicy",
    "ColumnSpec", "Derive", "DeriveRule", "GradeBand", "GradeChanges", "GradeModel", "GradeResult", "Indicator",
    "Normalise", "Normaliser", "Percentile", "Ratio", "Thresholds", "YearsSince", "_band_index", "_fmt_num",
    "_percentile_h", "_thresholds_h", "compare", "grade_customers", "load_grade_model", "percentile_rank",
]
