"""The churn job's speed plumbing (tierctl/kernels) against the plain versions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tierctl.kernels.bool_rows import mask_lists, mask_lists_plain, row_codes
from tierctl.kernels.template_fill import fill_template, fill_template_plain

WORDS = st.text(alphabet="abc天数 :+{}", max_size=6)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.bool_, st.tuples(st.integers(0, 40), st.integers(0, 8))))
def test_mask_lists_equal_the_row_by_row_lists(mask):
    keys = [f"k{j}" for j in range(mask.shape[1])]
    assert mask_lists(mask, keys).tolist() == mask_lists_plain(mask, keys)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.bool_, st.tuples(st.integers(0, 40), st.integers(0, 8))))
def test_row_codes_are_one_per_distinct_row(mask):
    codes = row_codes(mask)
    rows = [tuple(r) for r in mask.tolist()]
    assert len(set(codes.tolist())) == len(set(rows))
    for c, r in zip(codes.tolist(), rows, strict=True):
        assert c == sum(1 << j for j, v in enumerate(r) if v)


@st.composite
def templates(draw):
    names = draw(st.lists(st.sampled_from(["days", "at", "value"]), max_size=4))
    parts = []
    for name in names:
        parts.append(draw(st.text(alphabet="距上次到店 ≥×:+ab", max_size=5)))
        parts.append("{" + name + "}")
    parts.append(draw(st.text(alphabet="天 ≥ab", max_size=4)))
    n = draw(st.integers(0, 12))
    fields = {k: np.array(draw(st.lists(WORDS.filter(lambda w: "\x00" not in w), min_size=n, max_size=n)), dtype=str)
              for k in ("days", "at", "value")}
    return "".join(parts), fields, n


@settings(max_examples=200, deadline=None)
@given(templates())
def test_fill_template_equals_str_format(case):
    template, fields, n = case
    assert fill_template(template, fields, n).tolist() == fill_template_plain(template, fields, n)


def test_fill_template_keeps_escaped_braces_and_numbers():
    out = fill_template("{{x}} {days} 天 ≥ {at}", {"days": np.array([200, 31]), "at": np.array(["180", "30"])}, 2)
    assert out.tolist() == ["{x} 200 天 ≥ 180", "{x} 31 天 ≥ 30"]
