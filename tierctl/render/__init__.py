"""Rendering the daily documents (SPEC A8): the SPEC email (.eml + .md), the evaluation
sheet (.xlsx), the SMS per customer (.csv + .md), the call scripts and the cross-region
transfer request — and their Word copies (.docx, ``render.formats``).

ONE registry lists the documents (:mod:`tierctl.render.registry`): a new document is one
entry there plus its templates.  The Jinja environment is strict and searches a user's
template folder before the packaged one (:mod:`tierctl.render.environment`); pure of the
command line: :func:`render_documents` takes a scored result and a
:class:`~tierctl.config.Config` and writes one folder, all or nothing.

This module re-exports what other code and the tests import from ``tierctl.render``.
"""

from tierctl.render.catalogue import (
    BASE_VARIABLES,
    EMAIL_VARIABLES,
    VARIABLES,
    TemplateInfo,
    lint_file,
    list_templates,
    read_draft,
    receives,
)
from tierctl.render.context import (
    Prepared,
    _addresses,
    check_progress_date,
    email_context,
    prepare,
)
from tierctl.render.eml import XLSX_MIME, build_eml
from tierctl.render.environment import (
    LANGS,
    ConfigView,
    _text,
    make_environment,
    packaged_templates_dir,
    render_template,
)
from tierctl.render.plan_sheet import PLAN_LABELS
from tierctl.render.registry import (
    BY_NAME,
    CUSTOMER_FACING,
    DOCUMENTS,
    FILES,
    OUTPUTS,
    RECEIVES,
    TEMPLATE_NAMES,
    WORD_FILES,
    Document,
)
from tierctl.render.run import (
    FORMATS,
    RenderReport,
    existing_outputs,
    render_documents,
    wanted_formats,
)
from tierctl.render.sheet import (
    CRISIS_FILLS,
    SHEET_LABELS,
    TIER_FILLS,
    WorkbookSection,
    sheet_columns,
    write_evaluation_sheet,
)
from tierctl.render.texts import Rendered, render_texts

__all__ = [
    "BASE_VARIABLES", "BY_NAME", "CRISIS_FILLS", "CUSTOMER_FACING", "DOCUMENTS", "EMAIL_VARIABLES", "FILES", "FORMATS",
    "LANGS", "PLAN_LABELS", "RECEIVES", "SHEET_LABELS", "TEMPLATE_NAMES", "TIER_FILLS", "VARIABLES", "OUTPUTS", "WORD_FILES",
    "XLSX_MIME", "ConfigView", "Document", "Prepared", "RenderReport", "Rendered", "TemplateInfo", "WorkbookSection",
    "_addresses", "_text", "build_eml", "check_progress_date", "email_context", "existing_outputs", "lint_file",
    "list_templates", "make_environment", "packaged_templates_dir", "prepare", "read_draft", "receives",
    "render_documents", "render_template", "render_texts", "sheet_columns", "wanted_formats", "write_evaluation_sheet",
]
