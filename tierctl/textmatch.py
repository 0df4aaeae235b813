"""Negation-aware keyword matching over a whole column at once.

A keyword fires in a text when it occurs at least once *not* directly preceded by a
negation word (不/没/没有/未/无/别 …, a list from the model file): "没有投诉" does not
mention a complaint, "没有投诉，但要去12315投诉" does.

An A-not-A question is not a negation: in "你们是不是骗我", "有没有投诉渠道" or
"会不会曝光" the character(s) right before the negation word repeat the ones right after
its first character (是|不|是, 有|没|有; also two characters: 理解|不|理解), so the keyword
still fires.  When every occurrence of a rule's keywords is cancelled, the match says which
keyword was cancelled and by which negation word, so the reasons can say so.

Columns are factorised first and each *distinct* text is examined once, so a column of
a million rows with a few hundred distinct usage texts costs a few hundred matches.
For many distinct texts the work is vectorised in pyarrow's regex engine: the count of
plain occurrences is compared with the count of negated ones, which needs no
look-behind.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

# below this many distinct texts a plain Python scan is faster than vectorised calls
_SCALAR_LIMIT = 2000
# an A-not-A question repeats up to this many characters around the negation word
_ECHO_CHARS = (1, 2)


def _alt(words: Sequence[str]) -> str:
    # longest first so that 没有 wins over 没 at the same position
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


@functools.lru_cache(maxsize=4096)
def _questions(keyword: str, negations: tuple[str, ...]) -> tuple[str, ...]:
    """The texts that end an A-not-A question just before ``keyword``: the one or two
    characters after a negation word's first character, repeated before it — 是+不是,
    有+没有, 会+不会; with a one-character negation the keyword's own start (理+不 before
    理解; 理解+不 before 理解)."""
    out = []
    for neg in negations:
        after = neg[1:] + keyword
        for k in _ECHO_CHARS:
            if len(after) >= k:
                out.append(after[:k] + neg)
    return tuple(sorted(set(out), key=len, reverse=True))


def factorize_text(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes per row (-1 for empty) and the distinct texts; reusable across rules that
    read the same column."""
    return pd.factorize(text, use_na_sentinel=True)


@dataclass
class Match:
    """Per row: ``code`` — index of the first keyword that fires (-1: none fires);
    ``cancelled`` — where none fires but a keyword occurs, the first such keyword's index
    (else -1) and ``negation`` — the index into ``negations`` of the word that cancelled it."""

    code: np.ndarray
    cancelled: np.ndarray
    negation: np.ndarray
    keywords: tuple[str, ...]
    negations: tuple[str, ...]

    def cancel_notes(self, template: str = "「{keyword}」前有否定词「{negation}」，不计") -> tuple[np.ndarray, list[str]]:
        """Per row a code into the returned texts (-1: nothing cancelled)."""
        has = self.cancelled >= 0
        code = np.full(len(self.code), -1, dtype=np.int64)
        texts: list[str] = []
        if has.any():
            pair = self.cancelled[has] * (len(self.negations) + 1) + self.negation[has]
            c, uniq = pd.factorize(pair)
            code[has] = c
            for u in uniq:
                k, g = divmod(int(u), len(self.negations) + 1)
                texts.append(template.format(keyword=self.keywords[k], negation=self.negations[g]))
        return code, texts


def keyword_match(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = (),
                  factorized: tuple[np.ndarray, np.ndarray] | None = None) -> Match:
    """:func:`keyword_codes` plus, for the rows where no keyword fires, the keyword a
    negation word cancelled and that word."""
    n = len(text)
    kws, negs = tuple(keywords), tuple(dict.fromkeys(negations))
    none = np.full(n, -1, dtype=np.int64)
    if not kws or n == 0:
        return Match(none, none.copy(), none.copy(), kws, negs)
    codes, uniques = factorized if factorized is not None else factorize_text(text)
    if len(uniques) == 0:
        return Match(none, none.copy(), none.copy(), kws, negs)
    if len(uniques) <= _SCALAR_LIMIT:
        scanned = [_scan(str(u), kws, negs) for u in uniques]
        per = np.array(scanned, dtype=np.int64).reshape(len(uniques), 3)
    else:
        per = _vectorised(pd.Series(np.asarray(uniques, dtype=object), dtype="str"), kws, negs)
    # one gather per column: code −1 (no text) picks the appended row of −1s
    cols = np.vstack([per, np.full((1, 3), -1, dtype=np.int64)]).T.copy()
    idx = np.asarray(codes, dtype=np.intp)
    out = [np.take(cols[j], idx) for j in range(3)]
    return Match(out[0], out[1], out[2], kws, negs)


def keyword_codes(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = (),
                  factorized: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per row, the index in ``keywords`` of the first keyword that fires, or -1."""
    return keyword_match(text, keywords, negations, factorized).code


def _vectorised(s: pd.Series, keywords: Sequence[str], negations: Sequence[str]) -> np.ndarray:
    """Columns (fired keyword, cancelled keyword, cancelling negation) per text."""
    out = np.full((len(s), 3), -1, dtype=np.int64)
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
            # some occurrence not right after a negation word, or one that ends a question
            fired = plain > cand.str.count(f"(?:{neg_alt}){re.escape(kw)}").to_numpy()
            fired |= cand.str.count(f"(?:{_alt(_questions(kw, tuple(negations)))}){re.escape(kw)}").to_numpy() > 0
        else:
            fired = plain > 0
        pos = np.flatnonzero(pending)[fired]
        out[idx[pos], 0] = k
        pending[pos] = False
    if neg_alt and pending.any():
        # every occurrence was cancelled: the first keyword present, and its first negation
        rest = np.flatnonzero(pending)
        cand = sub.iloc[rest]
        todo = np.ones(len(rest), dtype=bool)
        neg_index = {w: g for g, w in enumerate(negations)}
        for k, kw in enumerate(keywords):
            if not todo.any():
                break
            word = cand[todo].str.extract(f"({neg_alt}){re.escape(kw)}", expand=False)
            got = word.notna().to_numpy()
            at = idx[rest[np.flatnonzero(todo)[got]]]
            out[at, 1] = k
            out[at, 2] = [neg_index[w] for w in word[got].tolist()]
            todo[np.flatnonzero(todo)[got]] = False
    return out


def keyword_hits(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = ()) -> pd.Series:
    """For each row, the first keyword (in the given order) that fires, or ``None``."""
    codes = keyword_codes(text, keywords, negations)
    table = np.array([*keywords, None], dtype=object)
    return pd.Series(table[codes], index=text.index, dtype=object)


_NEG_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def _neg_pattern(negations: Sequence[str]) -> re.Pattern[str]:
    key = tuple(negations)
    pat = _NEG_CACHE.get(key)
    if pat is None:
        pat = _NEG_CACHE[key] = re.compile(f"(?:{_alt(negations)})$")
    return pat


def _scan(text: str, keywords: Sequence[str], negations: Sequence[str]) -> tuple[int, int, int]:
    """(fired keyword, cancelled keyword, cancelling negation) as indexes, -1 for none."""
    neg = _neg_pattern(negations) if negations else None
    cancelled = (-1, -1)
    for k, kw in enumerate(keywords):
        start = 0
        while True:
            i = text.find(kw, start)
            if i < 0:
                break
            m = neg.search(text, 0, i) if neg is not None else None
            if m is None or any(text.endswith(q, 0, i) for q in _questions(kw, tuple(negations))):
                return k, -1, -1
            if cancelled[0] < 0:
                cancelled = (k, list(negations).index(m.group()))
            start = i + 1
    return -1, *cancelled


def fires(text: str | None, keywords: Sequence[str], negations: Sequence[str] = ()) -> str | None:
    """Scalar version for one text: the first keyword (in list order) that fires."""
    if not isinstance(text, str) or not text:
        return None
    k = _scan(text, tuple(keywords), tuple(dict.fromkeys(negations)))[0]
    return keywords[k] if k >= 0 else None


def any_hit(text: pd.Series, keywords: Sequence[str], negations: Sequence[str] = ()) -> np.ndarray:
    """Boolean array: does any keyword fire in the row."""
    return keyword_codes(text, keywords, negations) >= 0
