"""Typer option and argument aliases shared by more than one command module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# -- allocation (tierctl allocate; the documents read its plan) -------------------------------
LoanersOpt = Annotated[int, typer.Option("--loaners", help="可用的代步车总数（含高端车）", show_default=False)]
PremiumOpt = Annotated[int, typer.Option("--premium-loaners", help="其中高端代步车的数量（不能多于 --loaners）")]
BudgetOpt = Annotated[str, typer.Option("--budget", help="补偿预算（元），如 30000、30,000、3万", show_default=False)]
DaysOpt = Annotated[int | None, typer.Option(
    "--days-to-eta", help="距配件到货还有几天（按天计费的代步车和补贴乘以它）；默认取配置 parts.eta_date / "
                          "parts.eta_weeks，都没有时用分配模型的默认值")]
AllocModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help="分配模型（单价、方案、规则）：allocate（默认），或你修改过的模型文件路径；"
                          "也可在配置文件中设 allocate.model")]
ScoreModelOpt = Annotated[str | None, typer.Option(
    "--score-model", help="给 FILE 打分用的模型（默认 rite；I 必须是用车影响程度）")]
AllocFormatOpt = Annotated[str, typer.Option("--format", "-f", help="输出格式：table | json")]
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="不读写历史数据库（方案不保存，文件不会带上方案）")]
# -- the shortage job (score, render, allocate) ---------------------------------------------
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="模型：rite（默认）、rite100，或模型文件路径")]
RedListOpt = Annotated[Path | None, typer.Option("--red-list", help="红名单文件（客户编号或手机号）")]
EtaOpt = Annotated[float | None, typer.Option("--eta-weeks", help="配件预计到货还需几周（用于危机等级）")]
# -- the daily loop (issue 15): history, why, override, tasks, contact, collect -------------------
CustomerArg = Annotated[str, typer.Argument(help="客户编号（也可用姓名或手机号）", show_default=False)]
DateOpt = Annotated[str | None, typer.Option("--date", help="日期 YYYY-MM-DD（默认今天）")]
ByOpt = Annotated[str | None, typer.Option("--by", help="操作人姓名（写入记录）")]

HolidaysOpt = Annotated[list[Path] | None, typer.Option(
    "--holidays", help="节假日文件（一年一个，可多次给出；格式见 README）：按工作日计算联系周期，该年的放假和调休以此为准"
                       "（代替配置 calendar.file）", show_default=False)]
