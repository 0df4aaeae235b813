"""Texts as small integer codes, and rows of several codes as one integer (mixed radix).

A million rows carry a few hundred distinct reason texts: they travel as codes into a
short list of texts and are formatted once per distinct value.  Combining several code
columns into one integer per row (``code_0 + size_0 · (code_1 + size_1 · …)``) lets
``pd.factorize`` find the distinct combinations in one pass, far faster than a
MultiIndex on a million rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# beyond this the mixed-radix integer could overflow int64: fall back to a MultiIndex
RADIX_LIMIT = 2**62
# up to this many possible combinations they are told apart by a table of that size
# instead of a hash table sized for every row (a tenth of the memory on a million rows)
DENSE_LIMIT = 1 << 24


def cat(codes: np.ndarray, categories: list[str]) -> pd.Categorical:
    """Texts as codes into a few categories (``-1`` → the empty text)."""
    cats = list(categories)
    if "" not in cats:
        cats.append("")
    empty = cats.index("")
    # categories must be unique for a Categorical; map duplicate texts to one code
    uniq: dict[str, int] = {}
    remap = np.empty(len(cats), dtype=np.int64)
    for i, text in enumerate(cats):
        remap[i] = uniq.setdefault(text, len(uniq))
    # the smallest integer the categories need (the codes a Categorical keeps), and one
    # gather: −1 picks the appended code of the empty text
    small = remap.astype(np.int8 if len(uniq) < 2**7 else np.int16 if len(uniq) < 2**15 else np.int32)
    codes = np.asarray(codes)
    if len(codes) and codes.min() < -1:
        codes = np.where(codes >= 0, codes, -1)
    return pd.Categorical.from_codes(np.take(np.append(small, small[empty]), codes), categories=list(uniq),
                                     validate=False)


def combo_factorize(arrays: list[np.ndarray]) -> tuple[np.ndarray, list[tuple]]:
    """Factorise rows of several columns at once: codes per row and the distinct value
    tuples (in order of first appearance).  Each column is factorised alone and the
    codes are combined in mixed radix."""
    parts = [pd.factorize(np.asarray(a), use_na_sentinel=False) for a in arrays]
    combined = np.zeros(len(arrays[0]) if arrays else 0, dtype=np.int64)
    radix = 1
    for codes, uniq in parts:
        combined += codes.astype(np.int64) * radix
        radix *= max(len(uniq), 1)
        if radix > RADIX_LIMIT:
            mi = pd.MultiIndex.from_arrays([np.asarray(a) for a in arrays])
            c, u = pd.factorize(mi)
            return c, list(u)
    codes, uniq = pd.factorize(combined)
    out: list[tuple] = []
    for value in uniq:
        v = int(value)
        tup = []
        for _c, u in parts:
            size = max(len(u), 1)
            tup.append(u[v % size])
            v //= size
        out.append(tuple(tup))
    return codes, out


def join_codes(codes: list[np.ndarray], texts: list[list[str]], n: int, sep: str = "\n") -> pd.Categorical:
    """Combine several per-part codes (−1: the part is absent) into one text per row
    (``sep.join`` of the present parts' texts), formatting each distinct combination
    once."""
    if not codes:
        return cat(np.full(n, -1), [])
    sizes = [len(t) + 1 for t in texts]  # +1: the part is absent (code -1)
    prod = float(np.prod(np.array(sizes, dtype=float)))
    if prod >= float(RADIX_LIMIT):
        stacked = [np.asarray(c, dtype=np.int64) + 1 for c in codes]
        row_codes, uniq_t = combo_factorize(stacked)
        uniq_parts = [np.array([u[j] for u in uniq_t], dtype=np.int64) - 1 for j in range(len(codes))]
    else:
        dense = prod <= DENSE_LIMIT
        combined: np.ndarray = np.zeros(n, dtype=np.int32 if dense else np.int64)
        radix = 1
        for c, size in zip(codes, sizes, strict=True):
            part = np.asarray(c).astype(combined.dtype)
            part += 1
            part *= radix
            combined += part
            radix *= size
        del part
        row_codes, uniq = _dense_factorize(combined, int(prod)) if dense else pd.factorize(combined)
        del combined
        uniq_parts = []
        for size in sizes:
            uniq_parts.append(uniq % size - 1)
            uniq = uniq // size
    return _cat_of_arrow(np.asarray(row_codes), _joined(texts, uniq_parts, sep))


def _joined(texts: list[list[str]], uniq_parts: list[np.ndarray], sep: str):
    """Each distinct combination's text, in Arrow: the present parts joined by ``sep``
    (an absent part, or an empty text, is skipped; no part at all: "")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    every = pa.array([x for t in texts for x in t], pa.large_string())
    starts = np.cumsum([0, *(len(t) for t in texts)])[:-1]
    # per combination (a row) and part (a column): the part's text among ``every``, or −1
    picked = np.stack([np.where(p >= 0, p + start, -1) for p, start in zip(uniq_parts, starts, strict=True)], axis=1)
    if len(every):
        picked[picked >= 0] = np.where(pc.equal(every, "").to_numpy(zero_copy_only=False)[picked[picked >= 0]], -1,
                                       picked[picked >= 0])
    present = picked >= 0
    offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
    values = every.take(pa.array(picked[present]))  # row by row, parts in order
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), pa.scalar(sep, pa.large_string()))


def _cat_of_arrow(codes: np.ndarray, texts) -> pd.Categorical:
    """:func:`cat` of texts given as an Arrow array (missing: the empty text), without
    a Python string per text: the same categories in the same order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pc.fill_null(texts, "")
    if not pc.any(pc.equal(texts, "")).as_py():
        texts = pa.concat_arrays([texts, pa.array([""], texts.type)])
    enc = pc.dictionary_encode(texts)  # the distinct texts in order of first appearance, as cat's dict
    remap = enc.indices.to_numpy(zero_copy_only=False)
    size = len(enc.dictionary)
    empty = pc.index(enc.dictionary, "").as_py()
    small = remap.astype(np.int8 if size < 2**7 else np.int16 if size < 2**15 else np.int32)
    codes = np.asarray(codes)
    if len(codes) and codes.min() < -1:
        codes = np.where(codes >= 0, codes, -1)
    categories = pd.Index(pd.Series(enc.dictionary, dtype=pd.StringDtype("pyarrow", na_value=np.nan)))
    return pd.Categorical.from_codes(np.take(np.append(small, small[empty]), codes),
                                     dtype=pd.CategoricalDtype(categories), validate=False)


def _dense_factorize(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` of integers in ``0 … size−1`` (the distinct values in order of
    first appearance, and each row's code into them) through a table of ``size``."""
    n = len(values)
    first: np.ndarray = np.full(size, n, dtype=np.int64 if n >= 2**31 else np.int32)
    np.minimum.at(first, values, np.arange(n, dtype=first.dtype))
    present = np.flatnonzero(first < n)
    uniq = present[np.argsort(first[present], kind="stable")]
    rank = np.empty(size, dtype=first.dtype)  # (no more distinct values than rows)
    rank[uniq] = np.arange(len(uniq), dtype=first.dtype)
    return rank[values], uniq.astype(np.int64)


def pair_codes(a: np.ndarray, b: np.ndarray, b_size: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Distinct pairs of two code columns (each −1 … size−1): a code per row and the
    pairs, in order of first appearance."""
    pair = (np.asarray(a, dtype=np.int64) + 1) * (b_size + 1) + (np.asarray(b, dtype=np.int64) + 1)
    pc, uniq = pd.factorize(pair)
    out = []
    for u in uniq:
        x, y = divmod(int(u), b_size + 1)
        out.append((x - 1, y - 1))
    return np.asarray(pc, dtype=np.int64), out


def join_categoricals(parts: list[pd.Categorical | pd.Series], sep: str) -> pd.Categorical:
    """Row-wise ``sep.join`` of several categorical text columns (empty parts skipped),
    formatting each distinct combination once."""
    cats = [p.cat if isinstance(p, pd.Series) else p for p in parts]
    codes = []
    texts = []
    for c in cats:
        categories = list(c.categories)
        code = np.asarray(c.codes).astype(np.int32)  # (a copy: the empty text's code becomes −1)
        if "" in categories:
            code[code == categories.index("")] = -1
        codes.append(code)
        texts.append(categories)
    n = len(codes[0]) if codes else 0
    return join_codes(codes, texts, n, sep)
