"""``tierctl render``, ``init``, ``templates list`` and ``lint``: the documents of SPEC A8.

Thin: each command parses options, calls one function of :mod:`tierctl.render` and shows
what comes back.  Errors are :class:`~tierctl.errors.TierctlError` and reach the single
handler in :mod:`tierctl.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    STATE,
    AsOfOpt,
    DbOpt,
    EncodingOpt,
    ForceOpt,
    JsonFormatOpt,
    LangOpt,
    MappingOpt,
    NowOpt,
    OptFileArg,
    SheetOpt,
    check_format,
    clock,
    dump_json,
    err_console,
    out_console,
    warn,
)
from tierctl.cli.common import lang as pick_lang
from tierctl.cli.score import EtaOpt, ModelOpt, RedListOpt
from tierctl.errors import RenderError, UsageError

OutDirOpt = Annotated[Path | None, typer.Option("--out", help="输出文件夹（默认配置 render.out，即 out/）；文件写入 <文件夹>/<评估日期>/")]
TemplatesOpt = Annotated[Path | None, typer.Option("--templates", help="自定义模板文件夹，同名文件覆盖内置模板（默认配置 render.templates）")]
AllowTabooOpt = Annotated[bool, typer.Option("--allow-taboo", help="出现禁忌用语时只警告、照常生成（默认报错，不生成任何文件）")]
DocxOpt = Annotated[bool, typer.Option("--docx", help="另存 Word 文件：通话脚本、跨区调度申请、短信清单各一份 .docx，信头是服务中心名称（也可在配置 render.formats = [\"md\", \"docx\"] 中打开）；.md 照常生成")]

templates_app = typer.Typer(help="查看文件模板：有哪些、来自哪里、各自能用哪些变量。", no_args_is_help=True)
app.add_typer(templates_app, name="templates")


def _templates_dir(opt: Path | None) -> Path | None:
    """--templates, else the config's render.templates (relative to the config file)."""
    if opt is not None:
        return opt
    cfg = STATE.config
    v = cfg.get("render.templates") or ""
    if not v:
        return None
    p = Path(v).expanduser()
    if not p.is_absolute() and cfg.path is not None:
        p = cfg.path.parent / p
    return p


def _result_from_store(db: Path | None, as_of: str | None, now: str | None):
    """Today's stored snapshot (the latest on or before the as-of date), with the manual
    overrides made or cleared since it was stored (``tierctl override``): the documents
    follow the manager's decision without a new ``score``."""
    from tierctl.cli.common import db_path
    from tierctl.cli.loop_common import _open
    from tierctl.cli.morning import result_from_store
    from tierctl.daily import reading as loop

    as_of_d, now_dt = clock(as_of, now)
    result = result_from_store(db_path(db), as_of_d)
    store = _open(db)
    try:
        applied = loop.apply_late_overrides(store, result, now_dt)
    finally:
        store.close()
    if applied:
        err_console().print(f"按 {len(applied)} 项今天评分之后的人工调整生成："
                            + "、".join(f"{a['name'] or a['customer_id']} → {a['to']}" for a in applied[:10]))
    return result


def _allocation_model(plan: dict[str, Any] | None) -> Any:
    """The allocation model a stored plan was made with, as ``tierctl allocate`` picks it
    by default (``allocate.model`` in the configuration, else the packaged one), so that
    the documents can spell a package out item by item; None when it does not load (the
    documents then use the packages' names)."""
    if plan is None:
        return None
    from tierctl.allocate import load_model
    from tierctl.cli.allocate import _configured_model
    from tierctl.errors import TierctlError

    try:
        return load_model(_configured_model() or "allocate")
    except TierctlError:
        return None


@app.command()
def render(
    file: OptFileArg = None,
    out: OutDirOpt = None,
    lang: LangOpt = None,
    templates: TemplatesOpt = None,
    force: ForceOpt = False,
    allow_taboo: AllowTabooOpt = False,
    model: ModelOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    as_of: AsOfOpt = None,
    red: RedListOpt = None,
    eta_weeks: EtaOpt = None,
    db: DbOpt = None,
    now: NowOpt = None,
    docx: DocxOpt = False,
    send: Annotated[bool, typer.Option("--send", help="生成后直接通过 SMTP 发送资源申请邮件（配置 [mail]；密码取自 password_env 指定的环境变量）；发送失败时草稿留在输出文件夹，退出码 1")] = False,
) -> None:
    """生成今天的全部文件：资源申请邮件（.eml 草稿 + .md）、客户分层评估表（.xlsx）、每位客户的短信（sms.csv + sms.md）、P0/P1 通话脚本、跨区调度申请。

    中心信息、进展、到货时间、单价和补偿取自配置文件（tierctl init 生成），缺项会报错并指出是哪一项；
    只有某个文件缺的配置项或导出列（如没有缺件列 → 没有跨区调度申请），就跳过那个文件、说明原因，其他照常生成。
    有今天的资源分配方案（tierctl allocate）时，短信和通话脚本只写方案给每位客户的安排；
    没有 FILE 时用今天保存的评分，并按评分之后的人工调整（tierctl override）生成。
    加 --docx（或配置 render.formats = ["md", "docx"]）另存通话脚本、跨区调度申请和短信清单的 Word 文件。
    """
    from tierctl.render import render_documents

    lg = pick_lang(lang)
    cfg = STATE.config
    mail_settings = None
    if send:  # a mistake in [mail] stops before anything is rendered
        from tierctl.render import mail

        mail_settings = mail.settings(cfg)
    out_root = out or Path(cfg.get("render.out") or "out")
    if not force:  # fail before scoring when today's files are already there
        from tierctl.render import existing_outputs

        day = out_root / clock(as_of, now)[0].isoformat()
        if existing_outputs(day):
            raise RenderError(f"{day} 中已有今天的文件，未覆盖：{'、'.join(p.name for p in existing_outputs(day))}",
                              hint="加 --force 覆盖，或用 --out 换一个输出文件夹")
    if file is not None:
        from tierctl.cli.score import run_score

        run = run_score(file, model_name=model, sheet=sheet, encoding=encoding, mapping=mapping, as_of=as_of,
                        now=now, red=red, db=db, dry_run=True, eta_weeks=eta_weeks)
        result = run["result"]
        warn(result.warnings)
    else:
        result = _result_from_store(db, as_of, now)
    from tierctl.cli.allocate import plan_for_documents

    plan = plan_for_documents(db, result.as_of)  # the day's stored allocation plan (issue 9), if any
    report = render_documents(result, cfg, out_root, lang=lg, templates=_templates_dir(templates), force=force,
                              allow_taboo=allow_taboo, eta_weeks=eta_weeks, plan=plan,
                              allocation_model=_allocation_model(plan), formats=["md", "docx"] if docx else None)
    warn(report.warnings)
    if plan is not None:
        err_console().print(f"短信、通话脚本、资源申请邮件和评估表按 {plan['as_of']} 的资源分配方案（tierctl allocate）"
                            "写明每位客户的安排")
    con = err_console()
    counts = " · ".join(f"{k} {v}" for k, v in report.counts.items())
    con.print(f"已生成 {report.out_dir}/（{counts}；危机等级 {report.crisis.level} {report.crisis.label}；"
              f"短信计费 {report.sms_segments} 条）")
    for p in report.files:
        typer.echo(str(p))
    if mail_settings is not None:
        from tierctl.render import FILES, mail

        _, now_dt = clock(as_of, now)
        sent = mail.send_draft(report.out_dir / FILES["email_eml"], mail_settings, now=now_dt)
        cc = f"，抄送 {', '.join(sent['cc'])}" if sent["cc"] else ""
        con.print(f"[green]资源申请邮件已发送[/green]（{sent['server']}）：{', '.join(sent['to'])}{cc}")


@app.command()
def init(
    path: Annotated[Path | None, typer.Argument(help="要生成的配置文件（默认当前文件夹的 tierctl.toml）",
                                                show_default=False)] = None,
    user: Annotated[bool, typer.Option("--user", help="写到用户配置文件夹（Windows：%APPDATA%\\tierctl；其他："
                                                      "~/.config/tierctl），在任何文件夹运行都会用到")] = False,
    force: ForceOpt = False,
) -> None:
    """生成一份带注释的配置文件 tierctl.toml（已存在时不覆盖，除非 --force）。"""
    from tierctl.config import user_config_path
    from tierctl.io.writers import write_text

    if user and path is not None:
        raise UsageError("--user 和文件路径只能二选一", hint="tierctl init --user，或 tierctl init 路径/tierctl.toml")
    starter = (Path(__file__).resolve().parent.parent / "data" / "init.toml").read_text(encoding="utf-8")
    target = user_config_path() if user else (path or Path("tierctl.toml"))
    if target.is_dir():
        target = target / "tierctl.toml"
    write_text(target, starter, force=force)
    where = "（用户配置：在任何文件夹运行 tierctl 都会用它，当前文件夹的 tierctl.toml 优先）" if user else ""
    err_console().print(f"已生成 {target}{where}：请填写服务中心、到货时间、今天的进展、补偿和单价后再运行 tierctl render",
                        markup=False, soft_wrap=True)  # a path is never broken over lines


@templates_app.command("list")
def templates_list(
    templates: TemplatesOpt = None,
    lang: Annotated[str | None, typer.Option("--lang", help="只列出一种语言：zh 或 en（默认全部）")] = None,
    fmt: JsonFormatOpt = "table",
) -> None:
    """列出全部模板：名称、来源（内置或自定义文件夹）、模板用到的变量及含义。"""
    from tierctl.render import VARIABLES, list_templates

    fmt = check_format(fmt, ("table", "json"))
    if lang is not None and lang not in ("zh", "en"):
        raise UsageError(f"--lang 不支持「{lang}」", hint="可选：zh | en")
    infos = list_templates(_templates_dir(templates), lang)
    if fmt == "json":
        typer.echo(dump_json([i.to_json() for i in infos]))
        return
    con = out_console()
    from rich.markup import escape

    con.print("用户模板优先于内置模板；用户模板可以用 {% extends \"default:zh/sms.txt.j2\" %} 继承内置模板，"
              "只覆盖其中的 block。", markup=False, soft_wrap=True)
    for i in infos:
        src = i.source + ("，覆盖内置模板" if i.overrides else "")
        con.print(f"\n[bold]{escape(i.name)}[/bold]（{src}）[dim]{escape(str(i.path))}[/dim]", soft_wrap=True)
        if not i.receives:
            con.print("  tierctl 不直接渲染这个模板（可被其他模板 include/extends）；它用到：", soft_wrap=True)
        for v in i.receives or i.variables:
            desc = VARIABLES.get(v, "")
            mark = "[green]●[/green]" if v in i.variables else " "
            con.print(f" {mark} {escape(v)}" + (f" — {escape(desc)}" if desc else ""), soft_wrap=True)
        unknown = [v for v in i.variables if i.receives and v not in i.receives]
        if unknown:
            con.print(f"  [red]模板用到了不存在的变量：{escape('、'.join(unknown))}[/red]", soft_wrap=True)
    con.print("\n● = 模板中已经用到的变量", style="dim")


@app.command()
def lint(
    files: Annotated[list[Path], typer.Argument(help="要检查的草稿（文本文件，可多个）", show_default=False)],
    fmt: JsonFormatOpt = "table",
) -> None:
    """检查短信、话术等草稿中有没有禁忌用语（如「会尽快」「大家都在等」）；有则列出文件、行号和用语，退出码 1。"""
    from tierctl.render import lint_file

    fmt = check_format(fmt, ("table", "json"))
    hits: list[Any] = []
    for f in files:
        hits += lint_file(f, STATE.config)
    if fmt == "json":
        typer.echo(dump_json([{"file": h.file, "line": h.line, "phrase": h.phrase, "text": h.text} for h in hits]))
    else:
        for h in hits:
            typer.echo(f"{h.file}:{h.line}: 禁忌用语「{h.phrase}」 {h.text.strip()[:60]}")
        if not hits:
            err_console().print(f"未发现禁忌用语（{len(files)} 个文件）")
    if hits:
        raise typer.Exit(1)




@app.command("docx")
def docx_cmd(
    files: Annotated[list[Path], typer.Argument(help="要转换的 .md 文件或文件夹（文件夹：其中全部 .md，如 out/<日期>/letters/ 的降级说明函）",
                                                show_default=False)],
    lang: LangOpt = None,
    force: ForceOpt = False,
) -> None:
    """把 tierctl 生成的 Markdown 文件（降级说明函、通话脚本、跨区调度申请、短信清单）另存为 Word 文件（.docx，同名、同一文件夹），信头是配置中的服务中心名称。"""
    from tierctl.render import docx

    written = docx.convert_files(files, STATE.config, lang=pick_lang(lang), force=force)
    for p in written:
        typer.echo(str(p))
    err_console().print(f"已生成 {len(written)} 个 Word 文件")
