"""The whole render: every document the registry lists, into one folder, all or nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierctl import render as _pkg
from tierctl.errors import ConfigError, RenderError
from tierctl.render.figures import TabooHit
from tierctl.render.registry import BY_NAME, DOCUMENTS, OUTPUTS, WORD_FILES, Document, Job
from tierctl.render.sheet import WorkbookSection
from tierctl.shortage import Crisis, ShortageResult


# -- the whole render ---------------------------------------------------------------------------
@dataclass
class RenderReport:
    out_dir: Path
    files: list[Path]  # the files written, in FILES order
    warnings: list[str]
    taboo: list[TabooHit]
    crisis: Crisis
    counts: dict[str, int]
    sms_segments: int
    skipped: dict[str, str] = field(default_factory=dict)  # document -> why it was not made


def existing_outputs(target: Path) -> list[Path]:
    return [target / f for f in OUTPUTS.values() if (target / f).exists()]


def render_documents(result: ShortageResult, config: Any, out_root: Path | str, *, lang: str = "zh",
                     templates: Path | None = None, force: bool = False, allow_taboo: bool = False,
                     eta_weeks: float | None = None, crisis: Crisis | None = None,
                     plan: WorkbookSection | Mapping[str, Any] | None = None,
                     allocation_model: Any = None, formats: Sequence[str] | None = None) -> RenderReport:
    """Render every document it can into ``out_root/<as-of>/``, all or nothing.

    Text documents are rendered in memory first (config, template and taboo errors
    surface before anything touches the disk); then everything is written into a
    temporary folder inside ``out_root`` and moved into place.  On any error the
    temporary folder is removed.  Existing outputs are kept unless ``force``.  A document
    today's configuration or export cannot support is left out (``skipped`` and the
    warnings say why; with ``force`` an earlier copy of it from the same day is removed,
    it would be out of date).

    ``plan``: the day's allocation plan (``tierctl allocate``'s stored mapping) decides
    each customer's offer in the SMS and call scripts, the e-mail's loaner and
    compensation costs, and puts each customer's package and cost into the evaluation
    sheet; or a :class:`WorkbookSection`.  ``allocation_model``: see :func:`prepare`.

    ``formats``: the formats of the letters-like documents (call scripts, transfer request,
    SMS list): ``md`` always, ``docx`` adds Word copies with the centre's name as letterhead;
    default the configuration's ``render.formats``."""
    out_root = Path(out_root)
    target = out_root / result.as_of.isoformat()
    if target.exists() and not target.is_dir():
        raise RenderError(f"{target} 已存在且不是文件夹")
    clash = existing_outputs(target)
    if clash and not force:
        raise RenderError(f"{target} 中已有今天的文件，未覆盖：{'、'.join(p.name for p in clash)}",
                          hint="加 --force 覆盖，或用 --out 换一个输出文件夹")
    word = "docx" in wanted_formats(config, formats)
    p = _pkg.prepare(result, config, lang=lang, eta_weeks=eta_weeks, crisis=crisis,
                plan=plan if isinstance(plan, Mapping) else None, allocation_model=allocation_model)
    env = _pkg.make_environment(lang, templates)
    rendered = _pkg.render_texts(p, env)
    warnings = list(rendered.warnings)
    pv = p.base["plan"]
    if pv is not None and pv["missing"]:
        warnings.append(f"资源分配方案（{pv['as_of']}）中没有 {pv['missing']} 位客户：方案是按另一份名单做的，"
                        "这些客户的短信和通话脚本按政策写「可为您申请」；需要时重新运行 tierctl allocate")
    if rendered.taboo:
        lines = []
        for f in dict.fromkeys(h.file for h in rendered.taboo):
            in_file = [h for h in rendered.taboo if h.file == f]
            lines += [h.describe() for h in in_file[:5]]
            if len(in_file) > 5:
                lines.append(f"{f} 另有 {len(in_file) - 5} 处")
        if not allow_taboo:
            raise RenderError("客户短信/通话脚本中出现禁忌用语，未生成任何文件：\n" + "\n".join(f"  - {x}" for x in lines),
                              hint="修改 tierctl.toml 中的进展文字或模板后重试；确需保留时加 --allow-taboo")
        warnings += [f"禁忌用语：{x}" for x in lines]

    written = _write_all(rendered, p, out_root, target, plan=plan, force=force, word=word, warnings=warnings)
    sms = rendered.sms
    return RenderReport(
        out_dir=target, files=[target / f for f in written], warnings=warnings, taboo=rendered.taboo,
        crisis=p.crisis, counts=result.counts(),
        sms_segments=int(sms[sms.columns[4]].sum()) if sms is not None and len(sms) else 0,
        skipped=dict(rendered.skipped),
    )




FORMATS = ("md", "docx")


def wanted_formats(config: Any, formats: Sequence[str] | None = None) -> list[str]:
    """``formats`` as given, else the configuration's ``render.formats`` (default ["md"]);
    checked against :data:`FORMATS`."""
    key = "render.formats"
    v = list(formats) if formats is not None else config.get(key)
    if v is None or v == []:
        return ["md"]
    if isinstance(v, str):
        v = [v]
    bad = [x for x in v if not isinstance(x, str) or x not in FORMATS]
    if not isinstance(v, list) or bad:
        raise ConfigError(f"不支持的文件格式 {bad or v}", path=config.path or Path("tierctl.toml"), key=key,
                          hint='可选：formats = ["md"] 或 ["md", "docx"]（docx = 另存 Word 文件）')
    return [str(x) for x in v]


def _order(docs_written: list[tuple[Document, list[str]]]) -> list[str]:
    """The written files: those with fixed names in FILES order, then the others as written."""
    fixed = {n for d, names in docs_written if d.fixed_names for n in names}
    rest = [n for d, names in docs_written if not d.fixed_names for n in names]
    return list(dict.fromkeys([*(f for f in OUTPUTS.values() if f in fixed), *rest]))


def _write_word(job: Job, word: bool) -> list[str]:
    if not word:
        return []
    from tierctl.render import docx

    out = []
    for wkey, key in WORD_FILES.items():
        text = job.rendered.texts.get(key)
        if text is not None:
            docx.write_markdown_docx(text, job.folder / OUTPUTS[wkey], letterhead=docx.letterhead(job.prepared.config),
                                     lang=job.prepared.lang)
            out.append(OUTPUTS[wkey])
    return out


def _write_all(rendered: Any, p: Any, out_root: Path, target: Path, *, plan: Any, force: bool, word: bool,
               warnings: list[str]) -> list[str]:
    """Write every document into a temporary folder inside ``out_root``, then move them into
    place: one rename when the day's folder is new, else file by file.  Returns the names."""
    created_root = not out_root.exists()
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tierctl-render-", dir=out_root))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the day's folder should not be
        job = Job(tmp, p, rendered, plan)
        done: list[tuple[Document, list[str]]] = []
        for d in sorted(DOCUMENTS, key=lambda d: d.stage):
            if d.name in rendered.skipped or (d.texts is not None and d.name not in rendered.made):
                continue
            if d.name == "sms_platform" and rendered.sms_platform is None:
                continue
            done.append((d, d.write(job, d)))
        done.append((BY_NAME["sms"], _write_word(job, word)))  # the .docx are listed after their .md (FILES order)
        names = _order(done)
        clash = [target / f for f in dict.fromkeys([*OUTPUTS.values(), *names]) if (target / f).exists()]
        if clash and not force:
            raise RenderError(f"{target} 中已有今天的文件，未覆盖：{'、'.join(x.name for x in clash)}",
                              hint="加 --force 覆盖")
        if not target.exists():
            os.rename(tmp, target)
        else:
            for f in names:
                os.replace(tmp / f, target / f)
            stale = [target / n for n in OUTPUTS.values() if n not in names and (target / n).exists()]
            for old in stale:
                old.unlink()
            if stale:
                warnings.append(f"已删除今天早些时候生成的 {'、'.join(x.name for x in stale)}：这次没有生成，旧文件已过时")
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created_root:
            with contextlib.suppress(OSError):
                out_root.rmdir()
        raise
    return names
