"""Typer option and argument aliases shared by more than one command module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# -- the daily loop (issue 15): history, why, override, tasks, contact, collect -------------------
CustomerArg = Annotated[str, typer.Argument(help="客户编号（也可用姓名或手机号）", show_default=False)]
DateOpt = Annotated[str | None, typer.Option("--date", help="日期 YYYY-MM-DD（默认今天）")]
ByOpt = Annotated[str | None, typer.Option("--by", help="操作人姓名（写入记录）")]

HolidaysOpt = Annotated[list[Path] | None, typer.Option(
    "--holidays", help="节假日文件（一年一个，可多次给出；格式见 README）：按工作日计算联系周期，该年的放假和调休以此为准"
                       "（代替配置 calendar.file）", show_default=False)]
