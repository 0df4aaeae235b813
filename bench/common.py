"""Helpers shared by the benchmark scripts: timing a command in a fresh process with
its peak memory, and a cache folder for generated inputs."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
sys.path.insert(0, str(ROOT / "sample_data"))
sys.path.insert(0, str(ROOT / "bench"))


def data_dir() -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    return DATA


def run_measured(args: list[str], env: dict | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MB) of one child process (a fresh interpreter)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if p.returncode != 0:
        raise SystemExit(f"benchmark command failed ({p.returncode}): {' '.join(args)}\n{p.stderr[-2000:]}")
    # ru_maxrss of children is the max over all children so far: run the biggest last or
    # read it per process via /usr/bin/time when available
    return wall, max(peak, before) / 1024, p


def peak_of(args: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and this process's own peak RSS via GNU time if present."""
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists():
        t0 = time.perf_counter()
        p = subprocess.run([str(gnu_time), "-f", "%M", *args], capture_output=True, text=True,
                           env={**os.environ, **(env or {})})
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(args)}\n{p.stderr[-2000:]}")
        kb = int(p.stderr.strip().splitlines()[-1])
        return wall, kb / 1024
    wall, mb, _ = run_measured(args, env)
    return wall, mb


def line(label: str, value: str, goal: str = "") -> str:
    s = f"  {label:<58} {value:>14}"
    if goal:
        s += f"   (goal {goal})"
    print(s, flush=True)
    return s
