"""Rendering every text document of the registry in memory (nothing is written)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tierctl.render.context import Prepared, check_progress_date
from tierctl.render.daily import Made
from tierctl.render.figures import TabooHit, find_taboo, taboo_phrases
from tierctl.render.registry import BY_NAME, CUSTOMER_FACING, DOCUMENTS, FILES, Document


@dataclass
class Rendered:
    texts: dict[str, str]  # key of FILES -> text (only the documents that were made)
    sms: pd.DataFrame | None  # the upload CSV (before neutralising); None when the SMS were not made
    subject: str
    email_ctx: dict[str, Any] | None
    taboo: list[TabooHit]
    warnings: list[str]
    skipped: dict[str, str]  # document -> why it was not made (see registry.DOCUMENTS)
    sms_platform: Any = None  # tierctl.render.sms_platform.Prepared: the upload files' rows
    made: dict[str, Made] = field(default_factory=dict)  # document name -> what it rendered


def _skip_reason(doc: str, why: str) -> str:
    d = BY_NAME[doc]
    return f"未生成{d.label}（{'、'.join(d.file_names())}）：{why}"


def _missing_keys(p: Prepared, doc: str) -> str | None:
    keys = p.missing.get(doc)
    if not keys:
        return None
    where = p.config.path or Path("tierctl.toml")
    return _skip_reason(doc, f"配置 {where} 缺少 {'、'.join(keys)}；填写后加 --force 重新生成")


def _why_not(p: Prepared, d: Document) -> str | None:
    if d.needs is not None and (why := d.needs(p)) is not None:
        return _skip_reason(d.name, why)
    return _missing_keys(p, d.name)


def render_texts(p: Prepared, env: Any) -> Rendered:
    """Render every text document in memory (nothing is written).

    A document that today's configuration or export cannot support (its configuration
    keys are missing; no part column for the transfer request) is left out and
    ``skipped`` says why; the others are made.  Template and configuration *errors*
    still stop everything."""
    check_progress_date(p.config, p.result.as_of)
    warnings: list[str] = []
    skipped: dict[str, str] = {}
    made: dict[str, Made] = {}
    for d in DOCUMENTS:
        if d.texts is None or d.variables is None:
            continue
        if (why := _why_not(p, d)) is not None:
            skipped[d.name] = why
            continue
        made[d.name] = m = d.texts(p, env, d.variables(p))
        warnings += m.warnings
    texts = {k: v for m in made.values() for k, v in m.texts.items()}
    extra = {k: v for m in made.values() for k, v in m.extra.items()}
    for m in made.values():
        warnings += m.extra.get("late_warnings", [])
    phrases = taboo_phrases(p.config)
    hits: list[TabooHit] = []
    for key in CUSTOMER_FACING:
        if key in texts:
            hits += find_taboo(texts[key], phrases, FILES[key])
    warnings += list(skipped.values())
    if extra.get("sms_platform") is not None:
        hits += find_taboo(extra["short_texts"], phrases, FILES["sms_check"])
    return Rendered(texts, extra.get("sms"), extra.get("subject", ""), extra.get("email_ctx"), hits, warnings,
                    skipped, sms_platform=extra.get("sms_platform"), made=made)
