"""Job A: parts-shortage crisis tiers (SPEC A1–A7).

* :mod:`.model` — the model's dataclasses, loading and validating a model file
* :mod:`.escalation` — the escalation rules (typed classes in ``ESCALATION_RULES``)
* :mod:`.score` — scoring a typed export, pure
* :mod:`.report` — the result: most urgent first, JSON records, the flat CSV table
* :mod:`.crisis` — the crisis level (A7)
* :mod:`.run` — the morning run: ingest → score → store → result

The names below are what other code and tests imported from ``tierctl.shortage``
when it was one module.
"""

from tierctl.kernels.codes import cat as _cat
from tierctl.kernels.codes import combo_factorize, join_categoricals
from tierctl.kernels.codes import join_codes as _join_codes
from tierctl.shortage.crisis import MEDIA_LISTED, Crisis, crisis_level
from tierctl.shortage.escalation import (
    ESCALATION_RULES,
    ContactSpike,
    Escalation,
    EscalationView,
    FlagTo,
    NewKeywords,
    WaitFloor,
    escalate,
    escalate_holding,
    parse_holds,
)
from tierctl.shortage.model import (
    HOLD_TEXT,
    TIER_FIELDS_TEXT,
    AlertRule,
    CrisisRules,
    Dimension,
    DimScale,
    ShortageModel,
    Tier,
    load_model,
    packaged_scales,
)
from tierctl.shortage.report import (
    ShortageResult,
    _plain,
    customer_record,
    flat_frame,
    row_reasons,
    table_columns,
)
from tierctl.shortage.score import (
    _dimension,
    _tier_index,
    check_given_scores,
    complaint_mask,
    customer_key,
    media_mask,
    score,
    tier_for,
    wait_days,
)

__all__ = [
    "ESCALATION_RULES", "HOLD_TEXT", "MEDIA_LISTED", "TIER_FIELDS_TEXT", "AlertRule", "ContactSpike", "Crisis",
    "CrisisRules", "DimScale", "Dimension", "Escalation", "EscalationView", "FlagTo", "NewKeywords",
    "ShortageModel", "ShortageResult", "Tier", "WaitFloor", "_cat", "_dimension", "_join_codes", "_plain",
    "_tier_index", "check_given_scores", "combo_factorize", "complaint_mask", "crisis_level", "customer_key",
    "customer_record", "escalate", "escalate_holding", "flat_frame", "join_categoricals", "load_model",
    "media_mask", "packaged_scales", "parse_holds", "row_reasons", "score", "table_columns", "tier_for",
    "wait_days",
]
