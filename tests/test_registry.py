"""The one registry of typed rule classes (tierctl/models/registry.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierctl.errors import ModelError
from tierctl.models.loader import Section
from tierctl.models.registry import Registry
from tierctl.models.rules import DIMENSION_RULES, build_rule


def _sec(data: dict) -> Section:
    return Section(data, Path("m.toml"), "dimensions.E.rules[0]")


def test_unknown_type_names_file_key_and_choices():
    with pytest.raises(ModelError) as e:
        build_rule(_sec({"type": "nope"}))
    text = str(e.value)
    assert "nope" in text and "m.toml" in text and "keywords" in text


def test_register_and_build_passes_extra_arguments():
    reg: Registry[object] = Registry("测试规则")

    @reg.register
    class Double:
        type = "double"

        def __init__(self, sec: Section, factor: int) -> None:
            self.value = sec.int("n") * factor

    assert reg.build(_sec({"type": "double", "n": 4}), 2).value == 8
    assert "double" in reg and reg.names() == ("double",)


def test_same_name_twice_is_refused():
    reg: Registry[object] = Registry("测试规则")

    class A:
        type = "a"

    class B:
        type = "a"

    reg.register(A)
    with pytest.raises(TypeError):
        reg.register(B)


def test_dimension_rules_registered():
    assert {"keywords", "band", "flag", "category", "redlist"} <= set(DIMENSION_RULES.names())


def test_a_file_read_again_gives_its_own_copy_and_a_changed_file_is_parsed_anew(tmp_path):
    import datetime as dt

    from tierctl.models.loader import load_toml

    p = tmp_path / "m.toml"
    p.write_text('kind = "x"\nat = 2026-11-24T09:00:00+08:00\n[t]\nlist = [1, 2]\n', encoding="utf-8")
    first = load_toml(p)
    first["t"]["list"].append(3)  # a caller changing what it got changes nobody else's
    again = load_toml(p)
    assert again == {"kind": "x", "at": dt.datetime(2026, 11, 24, 9, tzinfo=dt.timezone(dt.timedelta(hours=8))),
                     "t": {"list": [1, 2]}}
    p.write_text('kind = "y"\n', encoding="utf-8")
    assert load_toml(p) == {"kind": "y"}
    p.write_text('kind = "y\n', encoding="utf-8")
    with pytest.raises(ModelError, match="TOML"):
        load_toml(p)
    p.write_bytes(b'kind = "\xff"\n')
    with pytest.raises(ModelError, match="UTF-8"):
        load_toml(p)
