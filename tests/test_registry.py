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
