"""Negation-aware keyword matching over a whole column at once.

A keyword fires in a text when it occurs at least once *not* directly preceded by a
negation word (不/没/没有/未/无/别 …, a list from the model file): "没有投诉" does not
mention a complaint, "没有投诉，但要去12315投诉" does.

Columns are factorised first and each *distinct* text is examined once, so a column of
a million rows with a few hundred distinct usage texts costs a few hundred matches.
For many distinct texts the work is vectorised in pyarrow's regex engine: the count of
plain occurrences is compared with the count of negated ones, which needs no
look-behind.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

# below this many distinct texts a plain Python scan is faster than vectorised calls
_SCALAR_LIMIT = 2000


def _alt(words: Sequence[str]) -> str:
    # longest first so that 没有 wins over 没 at the same position
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


def factorize_text(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes per row (-1 for empty) and the distinct texts; reusable across rules that
    read the same column."""
    return pd.factorize(text, use_na_sentinel=True)


def keyword_codes(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = (),
                  factorized: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per row, the index in ``keywords`` of the first keyword that fires, or -1."""
    n = len(text)
    if not keywords or n == 0:
        return np.full(n, -1, dtype=np.int64)
    codes, uniques = factorized if factorized is not None else factorize_text(text)
    if len(uniques) == 0:
        return np.full(n, -1, dtype=np.int64)
    if len(uniques) <= _SCALAR_LIMIT:
        per_unique = np.array([_first(str(u), keywords, negations) for u in uniques], dtype=np.int64)
    else:
        per_unique = _vectorised(pd.Series(np.asarray(uniques, dtype=object), dtype="str"), keywords, negations)
    out = np.full(n, -1, dtype=np.int64)
    has = codes >= 0
    out[has] = per_unique[codes[has]]
    return out


def _vectorised(s: pd.Series, keywords: Sequence[str], negations: Sequence[str]) -> np.ndarray:
    out = np.full(len(s), -1, dtype=np.int64)
    any_kw = s.str.contains(_alt(keywords), regex=True).to_numpy(dtype=bool, na_value=False)
    if not any_kw.any():
        return out
    idx = np.flatnonzero(any_kw)
    sub = s.iloc[idx]
    neg_alt = _alt(negations) if negations else None
    pending = np.ones(len(sub), dtype=bool)
    for k, kw in enumerate(keywords):
        if not pending.any():
            break
        cand = sub[pending]
        plain = cand.str.count(re.escape(kw)).to_numpy()
        if neg_alt:
            fired = plain > cand.str.count(f"(?:{neg_alt}){re.escape(kw)}").to_numpy()
        else:
            fired = plain > 0
        pos = np.flatnonzero(pending)[fired]
        out[idx[pos]] = k
        pending[pos] = False
    return out


def _first(text: str, keywords: Sequence[str], negations: Sequence[str]) -> int:
    kw = fires(text, keywords, negations)
    return -1 if kw is None else list(keywords).index(kw)


def keyword_hits(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = ()) -> pd.Series:
    """For each row, the first keyword (in the given order) that fires, or ``None``."""
    codes = keyword_codes(text, keywords, negations)
    table = np.array([*keywords, None], dtype=object)
    return pd.Series(table[codes], index=text.index, dtype=object)


_NEG_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def fires(text: str | None, keywords: Sequence[str], negations: Sequence[str] = ()) -> str | None:
    """Scalar version for one text: the first keyword (in list order) that fires."""
    if not isinstance(text, str) or not text:
        return None
    neg = None
    if negations:
        key = tuple(negations)
        neg = _NEG_CACHE.get(key)
        if neg is None:
            neg = _NEG_CACHE[key] = re.compile(f"(?:{_alt(negations)})$")
    for kw in keywords:
        start = 0
        while True:
            i = text.find(kw, start)
            if i < 0:
                break
            if neg is None or not neg.search(text, 0, i):
                return kw
            start = i + 1
    return None


def any_hit(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = ()) -> np.ndarray:
    """Boolean array: does any keyword fire in the row."""
    return keyword_codes(text, keywords, negations) >= 0
