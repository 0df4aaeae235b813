"""Output files: CSV cells Excel would run are neutralised, writes are atomic, and the
parallel CSV writer gives the same bytes as the single-threaded one."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from tierctl.errors import RenderError
from tierctl.io import writers


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "n": np.arange(n),
        "cat": pd.Categorical(np.array(["甲,乙", "=SUM(A1)", "普通"])[np.arange(n) % 3]),
        "text": pd.array([f"客户{i}" if i % 7 else "-1" for i in range(n)], dtype="str"),
        "x": np.arange(n) / 4,
    })


@pytest.mark.parametrize("copy_file_range", [True, False])
def test_parallel_csv_equals_single_threaded(tmp_path, monkeypatch, copy_file_range):
    frame = _frame(50_003)
    one = tmp_path / "one.csv"
    writers.write_csv(frame, one)  # below the threshold: one writer
    monkeypatch.setattr(writers.os, "cpu_count", lambda: 3)
    if not copy_file_range:
        def broken(*a, **k):
            raise OSError("not supported here")
        monkeypatch.setattr(writers.os, "copy_file_range", broken, raising=False)
    orig = writers._write_table_csv
    monkeypatch.setattr(writers, "_write_table_csv", lambda t, p, **kw: orig(t, p, parallel_from=1000, **kw))
    many = tmp_path / "many.csv"
    writers.write_csv(frame, many)
    assert many.read_bytes() == one.read_bytes()
    back = pd.read_csv(many, encoding="utf-8-sig", dtype=str)
    assert len(back) == 50_003 and list(back.columns) == ["n", "cat", "text", "x"]
    assert back["cat"].iloc[1] == "'=SUM(A1)" and back["text"].iloc[0] == "'-1"
    assert sorted(os.listdir(tmp_path)) == ["many.csv", "one.csv"]  # no part files left


def test_csv_not_overwritten_without_force(tmp_path):
    p = tmp_path / "o.csv"
    writers.write_csv(_frame(3), p)
    with pytest.raises(RenderError, match="已存在"):
        writers.write_csv(_frame(5), p)
    writers.write_csv(_frame(5), p, force=True)
    assert len(pd.read_csv(p, encoding="utf-8-sig")) == 5


def test_failed_parallel_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(writers.os, "cpu_count", lambda: 2)
    orig = writers._write_table_csv

    def fail_after(t, p, **kw):
        orig(t, p, parallel_from=10, **kw)
        raise OSError("disk full")

    monkeypatch.setattr(writers, "_write_table_csv", fail_after)
    with pytest.raises(OSError):
        writers.write_csv(_frame(100), tmp_path / "o.csv")
    assert os.listdir(tmp_path) == []
