"""``tierctl score``: the morning run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    STATE,
    AsOfOpt,
    DbOpt,
    DryRunOpt,
    EncodingOpt,
    FileArg,
    ForceOpt,
    HeadersOpt,
    LangOpt,
    LimitOpt,
    MappingOpt,
    NowOpt,
    OutputOpt,
    SheetOpt,
    TableFormatOpt,
    check_format,
    clock,
    emit,
    emit_table,
    mask_phone,
    out_console,
    progress,
    refuse_existing_output,
    warn,
)
from tierctl.cli.options import EtaOpt, ModelOpt, RedListOpt  # noqa: F401 - re-exported for render and allocate

# customers per kind of change (and with alerts) worked out in full under the table; the
# JSON lists everyone
DETAIL_LIMIT = 50

# the main reason gets at least this many cells (15 Chinese characters) before a column is dropped
REASON_MIN_WIDTH = 30

TIER_STYLE = {"P0": "bold white on red", "P1": "bold black on dark_orange", "P2": "black on yellow",
              "P3": "black on green"}


def run_score(file: Path, *, model_name: str | None = None, sheet: str | None = None,
              encoding: str | None = None, mapping: Path | None = None, as_of: str | None = None,
              now: str | None = None, red: Path | None = None, db: Path | None = None,
              dry_run: bool = False, eta_weeks: float | None = None, no_store: bool = False,
              detail_limit: int | None = DETAIL_LIMIT) -> dict[str, Any]:
    """The morning run (:func:`tierctl.shortage.run.run`) with the CLI's configuration,
    clock, store and progress line — returns the pieces the display needs.  Used by
    ``score``, ``render`` and ``allocate``.  The changes and alerts of the day are listed
    for the first ``detail_limit`` customers of each kind (None: all, for JSON)."""
    from tierctl.cli import morning as history
    from tierctl.shortage.run import run

    with progress(f"读取 {file.name} …") as p:
        done = run(file, config=STATE.config, clock=lambda: clock(as_of, now),
                   store=None if no_store else (lambda: history.open_for_score(db, dry_run)), close_store=True,
                   model_name=model_name, sheet=sheet, encoding=encoding, mapping=mapping, red=red,
                   eta_weeks=eta_weeks, dry_run=dry_run, detail_limit=detail_limit, progress=p.step)
    out = done.as_dict()
    if done.record is not None:
        out["changes_text"] = history.changes_text(done.record["changes"], done.record["snapshot"])
        out["alerts_text"] = history.alerts_text(done.record["alerts_fired"], done.record["snapshot"])
    return out


@app.command()
def score(
    file: FileArg,
    model: ModelOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    as_of: AsOfOpt = None,
    fmt: TableFormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    headers: HeadersOpt = None,
    red: RedListOpt = None,
    eta_weeks: EtaOpt = None,
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
    no_store: Annotated[bool, typer.Option("--no-store", help="不写入历史数据库（仍然输出结果和文件）")] = False,
    limit: LimitOpt = 100,
    lang: LangOpt = None,
    now: NowOpt = None,
    notify: Annotated[bool, typer.Option("--notify", help="保存后把晨报发到 tierctl.toml 中配置的群机器人（同 tierctl notify）")] = False,
) -> None:
    """给短缺导出表里的每位客户打分、定级（P0–P3），并列出负责人和响应时限。"""
    fmt = check_format(fmt, ("table", "json", "csv", "xlsx"))
    if notify and (dry_run or no_store):
        from tierctl.errors import UsageError

        raise UsageError("--notify 只能在保存评分时使用（不能与 --dry-run 或 --no-store 同用）",
                         hint="预览群消息：tierctl notify --dry-run")
    refuse_existing_output(output, force, dry_run)
    run = run_score(file, model_name=model, sheet=sheet, encoding=encoding, mapping=mapping, as_of=as_of,
                    now=now, red=red, db=db, dry_run=dry_run, eta_weeks=eta_weeks, no_store=no_store,
                    detail_limit=None if fmt == "json" else DETAIL_LIMIT)
    result = run["result"]
    sent: dict[str, Any] | None = None
    if fmt == "json":
        from tierctl.cli.common import dump_json

        doc = result.to_json()
        doc["crisis"] = run["crisis"].to_json()
        for k in ("changes", "alerts_fired", "snapshot"):
            if k in run:
                doc[k] = run[k]
        sent = _notify(as_of, now, db, lang) if notify else None
        if sent is not None:
            doc["notify"] = sent
        emit(dump_json(doc), None if dry_run else output, force)
    elif fmt in ("csv", "xlsx"):
        # the CSV goes through the urgency order as it is written: no sorted copy of the table
        emit_table(flat_frame(result, ordered=fmt == "xlsx"), "score", fmt, output, force, headers=headers,
                   lang=lang, dry_run=dry_run, unit="位客户", dynamic=table_columns(result.model),
                   order=result.unordered_order if fmt == "csv" else None,
                   formats={"score": "0" if result.model.decimals == 0 else "0." + "0" * result.model.decimals})
    else:
        from tierctl.cli.common import lang as pick_lang

        show_table(run, limit, pick_lang(lang))
    warn(run["export"].warnings + result.warnings)
    if notify:
        from tierctl.cli.notify import fail_if_needed, show

        if sent is None:  # (the JSON document carries it already)
            sent = _notify(as_of, now, db, lang)
            show(sent)
        fail_if_needed(sent)


def _notify(as_of: str | None, now: str | None, db: Path | None, lang: str | None) -> dict[str, Any]:
    """``--notify``: the group robots are told about the run just stored."""
    from tierctl.cli.common import lang as pick_lang
    from tierctl.cli.notify import run_notify

    day, now_dt = clock(as_of, now)
    return run_notify(day, now_dt, db=db, lang=pick_lang(lang))


def flat_frame(result: Any, *, ordered: bool = True) -> Any:
    """The CSV shape (see :func:`tierctl.shortage.report.flat_frame`)."""
    from tierctl.shortage.report import flat_frame as flat

    return flat(result, ordered=ordered)


def table_columns(model: Any) -> dict[str, Any]:
    from tierctl.shortage.report import table_columns as columns

    return columns(model)


def main_reason(row: dict[str, Any], model) -> str:
    """The one reason to print in the table: the escalation if any, else the
    dimension that contributes most to the total."""
    esc = row.get("escalations")
    if isinstance(esc, str) and esc:
        return esc.split("\n")[-1]
    best = max(zip(model.dimensions, model.weights_scaled, strict=True), key=lambda dw: int(row[dw[0].key]) * dw[1])
    return str(row[f"reason_{best[0].key}"])


def show_table(run: dict[str, Any], limit: int, lang: str = "zh") -> None:
    from rich.table import Table
    from rich.text import Text

    from tierctl.daily.owners import person_of
    from tierctl.i18n import t as L

    result = run["result"]
    model = result.model
    con = out_console()
    en = lang == "en"
    _show_crisis(con, run["crisis"], lang)
    title = L("title", lang, as_of=result.as_of, model=model.name, n=len(result.customers))
    from tierctl.cli.terminal import Wrapped, fit_columns

    c = result.customers
    shown = c if not limit else c.head(limit)
    rows = shown.to_dict("records")
    cols = _table_cols(model, lang)
    by = {col.key: col for col in cols}
    from tierctl.shortage import media_mask

    media = media_mask(shown, model)
    for i, r in enumerate(rows):
        tier = r["tier"]
        tier_txt = Text(f" {tier} ", style=TIER_STYLE.get(tier, "bold"))
        if r["model_tier"] != tier:
            tier_txt.append(f"↑{r['model_tier']}", style="dim")
        pol = model.tier(tier)
        owner = (pol.owner_short_en if en and pol.owner_short_en else pol.owner_short) or str(r["owner"])
        if media[i]:
            tier_txt.append(f" {L('media_mark', lang)}", style="bold magenta")
        person = person_of(r)
        if person:
            owner = f"{owner}·{person}"
        by["tier"].cells.append(tier_txt)
        by["score"].cells.append(model.format_score(r["total_scaled"]))
        by["customer"].cells.append(Wrapped(str(r.get("name") or r.get("customer_id") or "")))
        by["phone"].cells.append(mask_phone(r.get("phone")))
        by["car"].cells.append(Wrapped(str(r.get("car") or "")))
        by["wait"].cells.append(L("days", lang, n=r["wait_days"]))
        by["dims"].cells.append("·".join(str(r[d.key]) for d in model.dimensions))
        by["owner"].cells.append(owner)
        by["respond_by"].cells.append(r["respond_by"].strftime("%m-%d %H:%M"))
        by["reason"].cells.append(Wrapped(main_reason(r, model)))
    if not any(by["car"].cells[i].text for i in range(len(rows))):
        cols.remove(by["car"])
    from rich import box

    def build(chosen):
        t = Table(title=title, header_style="bold", expand=False, box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True, padding=(0, 1))
        for col in chosen:
            t.add_column(col.header, **col.options)
        for i in range(len(rows)):
            t.add_row(*(col.cells[i] for col in chosen))
        return t

    # narrow screens lose the least needed columns first (car, phone, R·I·T·E, score,
    # wait) so that the main reason keeps room to wrap; tier, customer, owner and the
    # respond-by time always stay (see README)
    t = build(fit_columns(con, cols, "reason", REASON_MIN_WIDTH, build))
    con.print(t)
    if limit and len(c) > limit:
        con.print(f"[dim]{L('more', lang, n=len(c) - limit)}[/dim]")
    _show_counts(con, result, lang)
    if lang == "en" and "alerts_fired" in run:  # the alert lines from the rules' English texts
        from tierctl import daily
        from tierctl.cli.morning import alerts_text

        run["alerts_text"] = alerts_text(run["alerts_fired"], run["snapshot"], "en", daily.model_meta(model))
    for extra in ("changes_text", "alerts_text"):
        if run.get(extra):
            con.print(run[extra])


def _table_cols(model: Any, lang: str) -> list[Any]:
    """The table's columns, in order; ``drop``: which go first on a narrow screen."""
    from tierctl.cli.terminal import Col
    from tierctl.i18n import t as L

    return [
        Col("tier", L("tier", lang), [], options={"no_wrap": True, "min_width": 7}),
        Col("score", L("score", lang), [], drop=4, options={"justify": "right", "no_wrap": True}),
        Col("customer", L("customer", lang), [], options={"max_width": 12}),
        Col("phone", L("phone", lang), [], drop=2, options={"no_wrap": True}),
        Col("car", L("car", lang), [], drop=1, options={"max_width": 16}),
        Col("wait", L("wait", lang), [], drop=5, options={"justify": "right", "no_wrap": True}),
        Col("dims", "·".join(model.dim_keys), [], drop=3, options={"no_wrap": True}),
        Col("owner", L("owner", lang), [], options={"no_wrap": True}),
        Col("respond_by", L("respond_by", lang), [], options={"no_wrap": True}),
        Col("reason", L("reason", lang), [], options={}),
    ]


def _show_crisis(con: Any, crisis: Any, lang: str) -> None:
    """The crisis line, its criteria and the media-attention line above the table."""
    from rich.text import Text

    from tierctl.i18n import t as L

    colors = {"green": "green", "yellow": "yellow", "orange": "dark_orange", "red": "red"}
    en = lang == "en"
    label = crisis.label_en if en and crisis.label_en else crisis.label
    response = crisis.response_en if en and crisis.response_en else crisis.response
    con.print(Text.assemble(
        (L("crisis", lang) + " ", "bold"),
        (f" {crisis.level} {label} ", f"bold white on {colors.get(crisis.color, 'red')}"), f"  {response}"))
    con.print(Text("  " + " · ".join(f"{c['name'] if en else c['label']} {_val(c['value'])}→{c['level']}"
                                     f"{L('level_suffix', lang)}" for c in crisis.criteria), style="dim"))
    if crisis.pr_plan:
        who = "、".join(str(m.get("name") or m.get("customer_id") or "") for m in crisis.media_customers[:10])
        more = " …" if crisis.media_attention > min(len(crisis.media_customers), 10) else ""
        con.print(Text("  ⚑ " + L("media_line", lang, n=crisis.media_attention, who=who + more),
                       style="bold magenta"))


def _show_counts(con: Any, result: Any, lang: str) -> None:
    """The count per tier under the table, flagging a share far from the expected one."""
    from tierctl.i18n import t as L

    model = result.model
    c = result.customers
    counts = result.counts()
    n = max(len(c), 1)
    parts = []
    for tier in model.tier_names:
        share = counts[tier] / n
        lo, hi = model.expected_share.get(tier, (0.0, 1.0))
        flag = "" if lo * 0.5 <= share <= min(1.0, hi * 1.5) or len(c) < 20 else L("off_share", lang)
        parts.append(L("count", lang, tier=tier, n=counts[tier], share=f"{share:.0%}", flag=flag))
    con.print(L("total", lang) + " · ".join(parts))


def _val(v: Any) -> str:
    if isinstance(v, dict):
        return "/".join(f"{k}:{x}" for k, x in v.items())
    return str(v)
