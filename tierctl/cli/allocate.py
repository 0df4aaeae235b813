"""``tierctl allocate``: who gets the loaner cars and the compensation budget (issue 9).

Thin: score the export (or load the day's stored scores), build the allocation frame
(:func:`tierctl.allocate.frame_from_scores`), solve (:func:`tierctl.allocate.allocate`),
show the plan, and keep it in the history store as the day's ``allocation`` snapshot so
that ``tierctl render`` puts it into the evaluation sheet and the SPEC e-mail.

Decisions:

- With a FILE the export is scored exactly as ``tierctl score`` would (history read for
  the escalation rules) but the *score* snapshot is not written: storing the morning run
  and firing its alerts is ``score``'s job.  The *plan* is stored unless ``--dry-run``
  or ``--no-store``.
- The plan is stored under the as-of date of the scores it was made from, as a snapshot
  of kind ``allocation``: one row per customer (key, package, cost, why) and the totals
  in the snapshot's meta.  Re-running the same day replaces it.
- Days to the ETA: ``--days-to-eta``, else the configuration's ``parts.eta_date`` /
  ``parts.eta_weeks`` (the date the e-mail uses), else the allocation model's default.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tierctl.cli import app
from tierctl.cli.common import (
    STATE,
    AsOfOpt,
    DbOpt,
    DryRunOpt,
    EncodingOpt,
    ForceOpt,
    LimitOpt,
    MappingOpt,
    NowOpt,
    OptFileArg,
    OutputOpt,
    SheetOpt,
    check_format,
    clock,
    db_path,
    dump_json,
    emit,
    err_console,
    open_store,
    out_console,
    shown_db,
    warn,
)
from tierctl.cli.options import (  # re-exported: other CLI modules imported them from here
    AllocFormatOpt,
    AllocModelOpt,
    BudgetOpt,
    DaysOpt,
    LoanersOpt,
    NoStoreOpt,
    PremiumOpt,
    ScoreModelOpt,
)
from tierctl.cli.score import RedListOpt
from tierctl.errors import StoreError, UsageError

PLAN_KIND = "allocation"  # = tierctl.allocate.history.PLAN_KIND

_YUAN = re.compile(r"^\s*([0-9][0-9,，]*(?:\.[0-9]+)?)\s*(万)?\s*(元)?\s*$")


def parse_yuan(text: str) -> Decimal:
    """An amount as a manager types it: 30000, 30,000, 3万, 3.5万元.  Anything else
    (including a negative amount) is a usage error."""
    m = _YUAN.match(text or "")
    if not m:
        raise UsageError(f"--budget 应为不小于 0 的金额（元），实际是「{text}」", hint="例如 --budget 30000 或 --budget 3万")
    try:
        v = Decimal(m.group(1).replace(",", "").replace("，", ""))
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets digits through
        raise UsageError(f"--budget「{text}」不是金额") from exc
    return v * 10000 if m.group(2) else v


# -- the library call ------------------------------------------------------------------------
def eta_days(config: Any, as_of: dt.date, model: Any) -> tuple[int, str]:
    """Days to the ETA (see :func:`tierctl.allocate.run.eta_days`)."""
    from tierctl.allocate.run import eta_days as days

    return days(config, as_of, model)


def _configured_model() -> str | None:
    """``allocate.model`` from the configuration (:func:`tierctl.allocate.configured_model`)."""
    from tierctl.allocate.model import configured_model

    return configured_model(STATE.config)


def load_scores(file: Path | None, *, score_model: str | None, sheet: str | None, encoding: str | None,
                mapping: Path | None, as_of: str | None, now: str | None, red: Path | None, db: Path | None,
                dry_run: bool, no_store: bool) -> tuple[Any, list[str], Path | None]:
    """(scored result, warnings, source file) — from FILE, or the stored snapshot of the
    as-of date (the latest on or before it; source None)."""
    if file is not None:
        from tierctl.cli.score import run_score

        # dry_run: the morning run's snapshot is score's to write, not allocate's.  Without a
        # database there is no history to read: skip the store altogether.
        no_history = no_store or not db_path(db).exists()
        run = run_score(file, model_name=score_model, sheet=sheet, encoding=encoding, mapping=mapping, as_of=as_of,
                        now=now, red=red, db=db, dry_run=True, no_store=no_history)
        result = run["result"]
        return result, list(run["export"].warnings) + list(result.warnings), Path(file)
    from tierctl.cli.morning import result_from_store

    as_of_d, _now = clock(as_of, now)
    result = result_from_store(db_path(db), as_of_d)
    return result, list(result.warnings), None


def run_allocate(file: Path | None, *, loaners: int, premium_loaners: int = 0, budget: str | Decimal | int,
                 days_to_eta: int | None = None, model_name: str | None = None, score_model: str | None = None,
                 sheet: str | None = None, encoding: str | None = None, mapping: Path | None = None,
                 as_of: str | None = None, now: str | None = None, red: Path | None = None, db: Path | None = None,
                 dry_run: bool = False, no_store: bool = False) -> dict[str, Any]:
    """Score (or load), allocate, store the plan.  Returns ``allocation`` (the library's
    :class:`~tierctl.allocate.Allocation`), ``result``, ``days_source``, ``resources``,
    ``warnings`` and ``stored`` (the snapshot, or None)."""
    from tierctl.allocate import check_resources, load_model
    from tierctl.allocate.run import run_allocate as run_job

    amount = parse_yuan(budget) if isinstance(budget, str) else Decimal(budget)
    # impossible resources are usage errors before any file is read
    check_resources(loaners, premium_loaners, amount, 0 if days_to_eta is None else days_to_eta)
    model = load_model(model_name or _configured_model() or "allocate")
    result, warnings, source = load_scores(
        file, score_model=score_model, sheet=sheet, encoding=encoding, mapping=mapping, as_of=as_of, now=now,
        red=red, db=db, dry_run=dry_run, no_store=no_store)
    run = run_job(result, model, config=STATE.config, loaners=loaners, premium_loaners=premium_loaners,
                  budget=amount, days_to_eta=days_to_eta, warnings=warnings, source=source,
                  open_store=None if (dry_run or no_store) else lambda: open_store(db))
    if run["stored"] is not None:
        run["stored"]["path"] = shown_db(db_path(db))
    return run


def _store(path: Path, readonly: bool = False) -> Any:
    return open_store(path, readonly=readonly)


# -- the plan in the history store ------------------------------------------------------------
def plan_rows(alloc: Any) -> Any:
    """One row per customer for the store (:func:`tierctl.allocate.history.plan_rows`)."""
    from tierctl.allocate.history import plan_rows as rows

    return rows(alloc)


def save_plan(db: Path, result: Any, alloc: Any, *, resources: dict[str, Any], days_source: str,
              source_name: str | None = None, source_hash: str | None = None) -> dict[str, Any]:
    """Store the plan as the ``allocation`` snapshot of the scores' as-of date (replacing
    an earlier plan of that day) and return the snapshot's summary."""
    from tierctl.allocate import history

    with _store(db) as store:
        out = history.save_plan(store, result, alloc, resources=resources, days_source=days_source,
                                source_name=source_name, source_hash=source_hash)
    out["path"] = str(db)
    return out


def stored_plan(db: Path | None, as_of: dt.date) -> dict[str, Any] | None:
    """The plan stored for ``as_of`` in the shape of ``Allocation.to_json()`` (plus
    ``resources``, ``days_source``, ``stored_at`` …), or None when there is none."""
    from tierctl.allocate import history

    path = db_path(db)
    if not path.exists():
        return None
    with _store(path, readonly=True) as store:
        return history.stored_plan(store, as_of)


def plan_for_documents(db: Path | None, as_of: dt.date) -> dict[str, Any] | None:
    """The stored plan for ``tierctl render``; a database that cannot be read means
    "no plan" (with a warning), never a failed render."""
    try:
        return stored_plan(db, as_of)
    except StoreError as err:
        warn([f"无法读取历史数据库中的资源分配方案，文件中不含方案：{err.message}"])
        return None


# -- the command ----------------------------------------------------------------------------
@app.command("allocate")
def allocate_cmd(
    loaners: LoanersOpt,
    budget: BudgetOpt,
    file: OptFileArg = None,
    premium_loaners: PremiumOpt = 0,
    days_to_eta: DaysOpt = None,
    as_of: AsOfOpt = None,
    fmt: AllocFormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
    no_store: NoStoreOpt = False,
    model: AllocModelOpt = None,
    score_model: ScoreModelOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    red: RedListOpt = None,
    limit: LimitOpt = 100,
    now: NowOpt = None,
) -> None:
    """分配代步车和补偿预算：在车辆数和预算之内，让被覆盖的风险最大（P0 优先），列出每位客户的方案、费用和原因。

    没有 FILE 时使用今天已保存的评分（tierctl score）。方案保存到历史数据库，tierctl render 生成的评估表和资源申请邮件会带上它。
    """
    fmt = check_format(fmt, ("table", "json"))
    run = run_allocate(file, loaners=loaners, premium_loaners=premium_loaners, budget=budget,
                       days_to_eta=days_to_eta, model_name=model, score_model=score_model, sheet=sheet,
                       encoding=encoding, mapping=mapping, as_of=as_of, now=now, red=red, db=db, dry_run=dry_run,
                       no_store=no_store)
    alloc = run["allocation"]
    if fmt == "json":
        emit(dump_json(alloc.to_json()), None if dry_run else output, force)
    else:
        show_plan(run, limit)
    warn(run["warnings"])
    stored = run["stored"]
    con = err_console()
    if stored is not None:
        con.print(f"已保存 {stored['as_of']} 的资源分配方案（{stored['path']}）：tierctl render 会把方案写进评估表和资源申请邮件")
    elif dry_run:
        con.print("[dim]预览（--dry-run）：方案未保存[/dim]")


# -- display ----------------------------------------------------------------------------------
def _num(x: float) -> str:
    return f"{x:,.2f}".rstrip("0").rstrip(".") if x != int(x) else f"{int(x):,}"


def _signed(x: float) -> str:
    return ("+" if x > 0 else "") + _num(x)


def marginal_line(m: Any) -> str:
    """One sentence per extra resource: how much more risk and how many more customers."""
    what = f"多 {m.step} 辆代步车" if m.resource == "loaners" else f"多 {m.step:,} 元预算"
    if m.gain_weighted == 0 and m.gain_first_raw == 0 and m.gain_customers == 0:
        return f"{what}：覆盖不变（这项资源目前不是瓶颈）"
    parts = [f"加权覆盖风险 {_signed(m.gain_weighted)}"]
    if m.gain_customers:
        parts.append(f"覆盖客户 {m.gain_customers:+d} 位")
    if m.gain_first_raw:
        parts.append(f"P0 风险 {_signed(m.gain_first_raw)}")
    text = f"{what}：" + "，".join(parts)
    if m.gain_first_raw > 0 and m.gain_weighted < 0:
        text += "（P0 优先：其他级别让出资源）"
    return text


def short_why(row: Any) -> list[str]:
    """The table's reasons: need, ride-hailing, why not the preferred package, why not
    covered.  The first line (tier and score) has its own columns and the cost formula
    is in ``--format json`` (``why``)."""
    return [w for w in row.why[1:] if not w.startswith("方案「") and not w.endswith("已先覆盖到资源允许的最大风险")]


def show_plan(run: dict[str, Any], limit: int) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from tierctl.cli.score import TIER_STYLE

    alloc = run["allocation"]
    result = run["result"]
    u = alloc.used
    con = out_console()
    title = (f"{result.as_of} 缺件资源分配（模型 {alloc.model}；{len(alloc.plan)} 位客户；"
             f"按到货还需 {u.days_to_eta} 天计，取自{run['days_source']}）")
    t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
              padding=(0, 1), expand=False)
    t.add_column("级别", no_wrap=True, min_width=4)
    t.add_column("总分", justify="right", no_wrap=True)
    t.add_column("客户", no_wrap=True, max_width=12)
    t.add_column("方案", min_width=12, max_width=30, overflow="fold")
    t.add_column("费用(元)", justify="right", no_wrap=True)
    t.add_column("原因", min_width=20, overflow="fold")
    plan = alloc.plan  # tier, then score (highest first): the order of the scored list
    shown = plan if not limit else plan[:limit]
    for r in shown:
        who = r.name or r.customer_id
        if r.name and r.customer_id and r.customer_id != r.name:
            who = f"{r.name}\n{r.customer_id}"
        option = Text(r.option_name) if r.covered else Text("未分配", style="dim")
        cost = f"{r.cost:,}" if r.covered else "—"
        t.add_row(Text(f" {r.tier} ", style=TIER_STYLE.get(r.tier, "bold")), f"{r.score:.2f}", escape(who), option,
                  cost, escape("\n".join(short_why(r))))
    con.print(t)
    if limit and len(plan) > limit:
        con.print(f"[dim]… 另有 {len(plan) - limit} 位未显示（--limit 0 显示全部，或用 --format json）[/dim]")
    con.print("[dim]每个方案的费用算式（元/天 × 天数 + 补偿项目）见 --format json 的 why[/dim]")

    # totals: used vs available, risk covered / uncovered
    left = u.budget_available - u.budget_used
    con.print(Text.assemble(("资源  ", "bold"),
                            f"代步车 {u.loaners_used}/{u.loaners_available} 辆（高端 {u.premium_used}/{u.premium_available}，"
                            f"普通 {u.regular_used}/{u.regular_available}）· 预算 {u.budget_used:,}/{u.budget_available:,} 元"
                            f"（剩 {left:,} 元）"))
    cov, unc = alloc.covered, alloc.uncovered
    per_tier = " · ".join(f"{k} {int(v['customers'])}/{int(v['customers']) + int(unc.by_tier[k]['customers'])}"
                          for k, v in cov.by_tier.items())
    nopkg = alloc.uncovered_no_package.customers
    con.print(Text.assemble(("风险  ", "bold"),
                            f"覆盖 {cov.customers} 位（总分合计 {_num(cov.raw)}，加权 {_num(cov.weighted)}）· "
                            f"未覆盖 {unc.customers} 位（总分合计 {_num(unc.raw)}"
                            + (f"；其中 {nopkg} 位的级别政策没有适用方案" if nopkg else "") + f"）· 各级覆盖 {per_tier}"))
    for key in ("loaners", "budget"):
        if key in alloc.marginal:
            con.print(Text.assemble(("边际  ", "bold"), marginal_line(alloc.marginal[key])))
    sf = alloc.p0_shortfall
    first = run["model"].first
    if sf is not None:
        con.print(Text.assemble(("缺口  ", "bold red"), (sf.message, "red")))
    elif first and any(cov.by_tier[t]["customers"] for t in first):
        con.print(Text.assemble(("缺口  ", "bold"), f"无：全部 {'/'.join(first)} 客户都已覆盖"))


__all__ = ["PLAN_KIND", "AllocFormatOpt", "AllocModelOpt", "BudgetOpt", "DaysOpt", "LoanersOpt", "NoStoreOpt",
           "PremiumOpt", "ScoreModelOpt", "allocate_cmd", "parse_yuan", "plan_for_documents", "run_allocate", "save_plan",
           "stored_plan"]
