"""Negation-aware keyword matching over a whole column at once.

A keyword fires in a text when it occurs at least once *not* directly preceded by a
negation word (不/没/没有/未/无/别 …, a list from the model file): "没有投诉" does not
mention a complaint, "没有投诉，但要去12315投诉" does.  The count of plain occurrences is
compared with the count of negated ones, which needs no look-behind and therefore runs
in pyarrow's regex engine as well as in Python's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd


def _alt(words: Sequence[str]) -> str:
    # longest first so that 没有 wins over 没 at the same position
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


def keyword_hits(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = ()) -> pd.Series:
    """For each row, the first keyword (in the given order) that fires, or ``None``.

    Only rows that contain any keyword at all are examined keyword by keyword, so the
    cost on a large column is one regex pass plus work proportional to the hits.
    """
    out = pd.Series([None] * len(text), index=text.index, dtype=object)
    if not keywords or len(text) == 0:
        return out
    s = text.fillna("").astype(str)
    # literal check is cheap: any keyword anywhere
    any_kw = s.str.contains(_alt(keywords), regex=True)
    if not any_kw.any():
        return out
    sub = s[any_kw]
    found = pd.Series([None] * len(sub), index=sub.index, dtype=object)
    neg_alt = _alt(negations) if negations else None
    for kw in keywords:
        pending = found.isna()
        if not pending.any():
            break
        cand = sub[pending]
        plain = cand.str.count(re.escape(kw))
        if neg_alt:
            negated = cand.str.count(f"(?:{neg_alt}){re.escape(kw)}")
            fires = plain > negated
        else:
            fires = plain > 0
        hit_idx = fires[fires].index
        found.loc[hit_idx] = kw
    out.loc[found.index] = found
    return out


def fires(text: str | None, keywords: Sequence[str], negations: Sequence[str] = ()) -> str | None:
    """Scalar version of :func:`keyword_hits` for one text (used by ``why`` and linting)."""
    if not isinstance(text, str) or not text:
        return None
    neg = re.compile(f"(?:{_alt(negations)})$") if negations else None
    for kw in keywords:
        start = 0
        while True:
            i = text.find(kw, start)
            if i < 0:
                break
            if neg is None or not neg.search(text[:i]):
                return kw
            start = i + 1
    return None


def any_hit(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = ()) -> np.ndarray:
    """Boolean array: does any keyword fire in the row."""
    return keyword_hits(text, keywords, negations).notna().to_numpy()
