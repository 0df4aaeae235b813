"""Typer option aliases shared by more than one command module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# -- the shortage job (score, render, allocate) ---------------------------------------------
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="模型：rite（默认）、rite100，或模型文件路径")]
RedListOpt = Annotated[Path | None, typer.Option("--red-list", help="红名单文件（客户编号或手机号）")]
EtaOpt = Annotated[float | None, typer.Option("--eta-weeks", help="配件预计到货还需几周（用于危机等级）")]
