"""The ONE list of documents ``tierctl render`` makes.

Each :class:`Document` is one entry: its name, the files it writes, the templates it
renders (each with the variables it receives on top of the shared ones), the function
that works out its variables, the function that renders its texts and the writer that
puts its files into the day's folder.  Everything else is derived from this list: the
file names (:data:`FILES`), the template names (:data:`TEMPLATE_NAMES`), what each
template receives (:data:`RECEIVES`, shown by ``tierctl templates list``), which texts
are checked for taboo phrases and which can also be written as Word documents.

A new document = one entry here + its templates (zh/ and en/) + its variables and
texts functions (:mod:`tierctl.render.daily`).
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierctl import render as _pkg
from tierctl.render import daily


@dataclass
class Job:
    """What a writer gets: the folder to write into and the day's rendered documents."""

    folder: Path
    prepared: Any  # tierctl.render.context.Prepared
    rendered: Any  # tierctl.render.texts.Rendered
    plan: Any  # the allocation plan or WorkbookSection for the evaluation sheet


Writer = Callable[[Job, "Document"], list[str]]


@dataclass(frozen=True)
class Document:
    name: str
    label: str  # what a warning calls it
    files: tuple[tuple[str, str], ...]  # (file key, file name), in the order they are listed
    write: Writer
    templates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # template -> variables beyond the base
    variables: Callable[[Any], dict[str, Any]] | None = None  # Prepared -> the document's variables
    texts: Callable[[Any, Any, dict[str, Any]], daily.Made] | None = None  # (Prepared, env, variables) -> texts
    needs: Callable[[Any], str | None] | None = None  # why the export cannot support it (None: it can)
    customer_facing: tuple[str, ...] = ()  # text keys said or sent to customers: checked for taboo phrases
    word: tuple[str, ...] = ()  # text keys that can also be written as .docx (render.formats, --docx)
    stage: int = 1  # writers run by stage (the sheet first: the e-mail attaches it)
    fixed_names: bool = True  # False: the writer names its files (listed after the others, as written)

    def file_names(self) -> list[str]:
        return [name for _k, name in self.files]


def word_key(key: str) -> str:
    return f"{key}_docx"


# -- writers ------------------------------------------------------------------------------------
def _write_texts(job: Job, doc: Document) -> list[str]:
    """Each text of the document whose key is one of its files, as UTF-8."""
    out = []
    for key, name in doc.files:
        text = job.rendered.texts.get(key)
        if text is not None:
            (job.folder / name).write_text(text, encoding="utf-8")
            out.append(name)
    return out


def _write_sheet(job: Job, doc: Document) -> list[str]:
    p = job.prepared
    name = FILES["sheet"]
    _pkg.write_evaluation_sheet(p.result, job.folder / name, lang=p.lang, crisis=p.crisis,
                                centre=str(p.config.get("centre.name") or ""), plan=job.plan)
    return [name]


def _write_email(job: Job, doc: Document) -> list[str]:
    r, cfg = job.rendered, job.prepared.config
    ectx = r.email_ctx
    (job.folder / FILES["email_md"]).write_text(r.texts["email_md"], encoding="utf-8")
    sender = None
    if ectx["manager_email"]:
        sender = email.utils.formataddr((str(cfg.get("centre.manager") or ""), ectx["manager_email"]))
    eml = _pkg.build_eml(subject=r.subject, body=r.texts["email_body"], to=ectx["to"], cc=ectx["cc"],
                         sender=sender, date=job.prepared.result.now,
                         attachments=[(ectx["attachment"], (job.folder / FILES["sheet"]).read_bytes(), _pkg.XLSX_MIME)],
                         html=r.texts["email_html"])
    (job.folder / FILES["email_eml"]).write_bytes(eml)
    return [FILES["email_eml"], FILES["email_md"]]


def _write_sms(job: Job, doc: Document) -> list[str]:
    from tierctl.io.writers import neutralise_frame

    safe = neutralise_frame(job.rendered.sms)
    safe.to_csv(job.folder / FILES["sms_csv"], index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return [FILES["sms_csv"], *_write_texts(job, doc)]


def _write_platform(job: Job, doc: Document) -> list[str]:
    from tierctl.render import sms_platform

    if job.rendered.sms_platform is None:
        return []
    return [f.name for f in sms_platform.write_files(job.rendered.sms_platform, job.folder, lang=job.prepared.lang)]


# -- the documents ------------------------------------------------------------------------------
EMAIL = ("EMAIL",)  # the e-mail's templates receive every variable of email_context (catalogue.EMAIL_VARIABLES)

DOCUMENTS: tuple[Document, ...] = (
    Document("email", "资源申请邮件", (("email_eml", "spec_email.eml"), ("email_md", "spec_email.md")), _write_email,
             templates={"email_subject.txt.j2": EMAIL, "email.md.j2": EMAIL, "email.html.j2": EMAIL},
             variables=daily.email_variables, texts=daily.email_texts),
    Document("sheet", "客户分层评估表", (("sheet", "evaluation_sheet.xlsx"),), _write_sheet, stage=0),
    Document("sms", "客户短信", (("sms_csv", "sms.csv"), ("sms_md", "sms.md")), _write_sms,
             templates={"sms.txt.j2": ("c", "band"), "sms_short.txt.j2": ("c", "band", "fit"),
                        "sms.md.j2": ("messages", "short_max", "standard_max")},
             variables=daily.sms_variables, texts=daily.sms_texts, customer_facing=("sms_md",), word=("sms_md",)),
    Document("calls", "通话脚本", (("calls", "call_scripts.md"),), _write_texts,
             templates={"call_scripts.md.j2": ("customers", "call_tiers", "loaner", "next_call_date",
                                               "next_call_time")},
             variables=daily.calls_variables, texts=daily.calls_texts, customer_facing=("calls",), word=("calls",)),
    Document("transfer", "跨区调度申请", (("transfer", "transfer_request.md"),), _write_texts,
             templates={"transfer_request.md.j2": ("parts_list", "requested", "high_risk", "complained",
                                                   "needed_hours", "needed_by", "hq_status", "long_wait")},
             variables=daily.transfer_variables, texts=daily.transfer_texts, needs=daily.transfer_needs,
             word=("transfer",)),
    # SMS ready for a platform (tierctl.render.sms_platform): one upload file per [sms.platforms] entry
    # (these two by default) and the check sheet; made with the SMS
    Document("sms_platform", "短信平台文件", (("sms_aliyun", "sms_aliyun.xlsx"), ("sms_tencent", "sms_tencent.xlsx"),
                                         ("sms_check", "sms_check.xlsx")), _write_platform, fixed_names=False),
)
BY_NAME = {d.name: d for d in DOCUMENTS}


def _listed() -> dict[str, str]:
    out: dict[str, str] = {}
    for d in DOCUMENTS:
        for key, name in d.files:
            out[key] = name
            if key in d.word:
                out[word_key(key)] = str(Path(name).with_suffix(".docx"))
    return out


OUTPUTS = _listed()  # every file key -> file name a render may write, in the order they are listed
WORD_FILES = {word_key(k): k for d in DOCUMENTS for k in d.word}  # .docx key -> the text key it is made from
FILES = {k: v for k, v in OUTPUTS.items() if k not in WORD_FILES}  # the files written by default
CUSTOMER_FACING = tuple(k for d in DOCUMENTS for k in d.customer_facing)
TEMPLATE_NAMES = tuple(t for d in DOCUMENTS for t in d.templates)
RECEIVES: dict[str, tuple[str, ...]] = {t: extra for d in DOCUMENTS for t, extra in d.templates.items()}
