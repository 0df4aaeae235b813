"""The 降级说明函 of one grading run: rendered from templates in memory, checked
(taboo phrases, the day's folder), then written atomically beside their place."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierctl.errors import RenderError
from tierctl.grade.changes import GradeChanges
from tierctl.grade.indicators import NORMALISERS
from tierctl.grade.inputs import _fmt_num
from tierctl.grade.result import GradeResult

LETTER_TEMPLATE = "downgrade_letter.md.j2"
LETTERS_DIR = "letters"


@dataclass
class Letters:
    """Letters rendered for one run: ``texts`` maps a file name to its text."""

    folder: Path  # <out>/<as-of>/letters
    texts: dict[str, str]
    customers: dict[str, str]  # file name -> customer id
    unchanged: list[str] = field(default_factory=list)  # files already there with the same text
    stale: list[str] = field(default_factory=list)  # letters of this day no longer due
    clash: list[str] = field(default_factory=list)  # files there with other text
    warnings: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [self.folder / n for n in self.texts]

    def to_json(self) -> list[dict[str, str]]:
        return [{"customer_id": self.customers[n], "file": str(self.folder / n)} for n in self.texts]


UNIT_EN = {"元": "yuan", "次": "visits", "年": "years", "分": "points"}
_UNSAFE = re.compile(r"[^\w\-.]+", re.UNICODE)


def letter_file_name(customer_id: str, name: str | None) -> str:
    """``<id>_<name>.md`` with anything a file system dislikes replaced."""
    base = _UNSAFE.sub("_", customer_id).strip("._") or "customer"
    if name:
        nm = _UNSAFE.sub("_", name).strip("._")
        if nm:
            base = f"{base}_{nm}"
    return base[:120] + ".md"


def letter_context(letter: dict[str, Any], result: GradeResult, lang: str) -> dict[str, Any]:
    """What the template sees of one downgrade: the library's letter data, with names in
    the letter's language and a few flags the wording depends on."""
    model = result.model
    en = lang == "en"
    by_name = {g.name: g for g in model.grades}

    def grade_name(n: str) -> str:
        g = by_name.get(n)
        return (g.name_en or g.name) if (g is not None and en) else n

    def label(key: str, fallback: str) -> str:
        try:
            ind = model.indicator(key)
        except KeyError:
            return fallback
        return (ind.label_en or ind.label) if en else ind.label

    def unit(u: str) -> str:
        return UNIT_EN.get(u, u) if en else u

    def exact(key: str) -> bool:
        try:
            return not NORMALISERS[model.indicator(key).normalise].relative
        except KeyError:
            return False

    moved = []
    for m in letter["moved"]:
        moved.append({**m, "label": label(m["indicator"], m["label"]), "unit": unit(m["unit"]),
                      "drop": round(-float(m["impact"]), 2),
                      "same_value": m["value"] is not None and m["value"] == m["prev_value"],
                      "relative": not exact(m["indicator"])})
    options = [{**o, "label": label(o["indicator"], o["label"]), "unit": unit(o["unit"]),
                "exact": exact(o["indicator"])}
               for o in letter["restore"]["options"] if o["reachable"]]
    prev_band = by_name.get(letter["prev_grade"])
    return {
        "customer_id": letter["customer_id"],
        "name": letter["name"],
        "prev_grade": grade_name(letter["prev_grade"]),
        "grade": grade_name(letter["grade"]),
        "prev_composite": letter["prev_composite"],
        "composite": letter["composite"],
        "needed": letter["restore"]["composite_needed"],
        "gap": letter["restore"]["gap"],
        "overridden": letter["overridden"],
        "override_reason": letter["override_reason"],
        "prev_overridden": letter["prev_overridden"],
        "moved": moved,
        "options": options,
        "prev_grade_description": prev_band.description if prev_band is not None and not en else "",
        "basis": letter["basis"],
        "restore_text": letter["restore"]["text"],
    }


def _score(x: Any) -> str:
    return "" if x is None else f"{float(x):.2f}"


def _num_text(x: Any) -> str:
    """Figures as a letter writes them: 1,000 and above in whole units with separators
    (5,906), smaller ones with at most two decimals (2.5, 0.83)."""
    if x is None:
        return ""
    v = float(x)
    if abs(v) >= 1000:
        return f"{int(v + (0.5 if v >= 0 else -0.5)):,}"
    return _fmt_num(v)


def render_letters(changes: GradeChanges, result: GradeResult, config: Any, out_root: Path, *, lang: str = "zh",
                   templates: Path | None = None, allow_taboo: bool = False) -> Letters:
    """Render one 降级说明函 per downgrade, in memory; nothing is written.

    Raises :class:`RenderError` for template errors and for taboo phrases (a letter goes
    to a customer) unless ``allow_taboo``; :class:`ConfigError` when the centre's name,
    manager or phone is missing (the letter is signed with them)."""
    from tierctl.render import ConfigView, make_environment, render_template
    from tierctl.render import figures as docs

    folder = Path(out_root) / result.as_of.isoformat() / LETTERS_DIR
    texts: dict[str, str] = {}
    customers: dict[str, str] = {}
    if not changes.letters:
        return _check_folder(Letters(folder, texts, customers))
    env = make_environment(lang, templates)
    env.filters.update({"score": _score, "num": _num_text})
    base = {"as_of": result.as_of, "lang": lang, "centre": ConfigView(config, "centre"),
            "model": {"name": result.model.name, "title": result.model.title}}
    phrases = docs.taboo_phrases(config)
    hits = []
    for letter in changes.letters:
        ctx = {**base, "letter": letter_context(letter, result, lang)}
        text = render_template(env, f"{lang}/{LETTER_TEMPLATE}", ctx)
        fname = letter_file_name(letter["customer_id"], letter["name"])
        if fname in texts:  # two ids that read the same once made safe for a file name
            fname = fname[:-3] + "_" + hashlib.sha1(letter["customer_id"].encode()).hexdigest()[:6] + ".md"
        texts[fname] = text
        customers[fname] = letter["customer_id"]
        hits += docs.find_taboo(text, phrases, fname)
    out = Letters(folder, texts, customers)
    if hits:
        lines = [h.describe() for h in hits[:10]] + ([f"另有 {len(hits) - 10} 处"] if len(hits) > 10 else [])
        if not allow_taboo:
            raise RenderError("降级说明函中出现禁忌用语，未生成任何文件：\n" + "\n".join(f"  - {x}" for x in lines),
                              hint="修改人工调整的原因或模板后重试；确需保留时加 --allow-taboo")
        out.warnings += [f"禁忌用语：{x}" for x in lines]
    return _check_folder(out)


def _check_folder(letters: Letters) -> Letters:
    """Compare with what the day's folder already holds: same text = nothing to do;
    other text, or a letter of this day no longer due, needs --force."""
    folder = letters.folder
    if folder.exists() and not folder.is_dir():
        raise RenderError(f"{folder} 已存在且不是文件夹")
    if not folder.is_dir():
        return letters
    for p in sorted(folder.glob("*.md")):
        if p.name not in letters.texts:
            letters.stale.append(p.name)
        elif p.read_text(encoding="utf-8") == letters.texts[p.name]:
            letters.unchanged.append(p.name)
        else:
            letters.clash.append(p.name)
    return letters


def check_letters_writable(letters: Letters, force: bool) -> None:
    """Refuse to change the day's letters without ``force`` (checked before anything is
    stored, so a refused run leaves no trace)."""
    if force or not (letters.clash or letters.stale):
        return
    parts = []
    if letters.clash:
        parts.append(f"内容不同的说明函 {len(letters.clash)} 份：{'、'.join(letters.clash[:5])}"
                     + (" 等" if len(letters.clash) > 5 else ""))
    if letters.stale:
        parts.append(f"本次不再需要的说明函 {len(letters.stale)} 份（这些客户本次没有降级）："
                     f"{'、'.join(letters.stale[:5])}" + (" 等" if len(letters.stale) > 5 else ""))
    raise RenderError(f"{letters.folder} 中已有这一天的降级说明函，未覆盖：" + "；".join(parts),
                      hint="加 --force 用本次结果替换（不再需要的会删除），或用 --out 换一个输出文件夹")


@contextlib.contextmanager
def staged_letters(letters: Letters) -> Iterator[Path | None]:
    """Write the letters into a temporary folder beside their place; on leaving the
    block normally they move into place (one rename when the folder is new), on an
    error the temporary folder is removed.  Yields the temporary folder."""
    folder = letters.folder
    if not letters.texts and not letters.stale:
        yield None
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tierctl-letters-", dir=folder.parent))
    try:
        os.chmod(tmp, 0o755)
        for name, text in letters.texts.items():
            (tmp / name).write_text(text, encoding="utf-8")
        yield tmp
        if not folder.exists():
            os.rename(tmp, folder)
        else:
            for name in letters.texts:
                os.replace(tmp / name, folder / name)
            for name in letters.stale:
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# =======================================================================================
# The result as a table (CSV/xlsx export, the terminal's order)
# =======================================================================================


def display_order(c: Any, limit: int | None = None) -> Any:
    """Row positions, highest grade first, then the highest composite; ids break ties
    (row order never matters).  With ``limit`` only the rows shown are sorted (a million
    rows: top-k, not a full sort), every tie at the cut kept."""
    import numpy as np

    from tierctl.kernels.topk import top_order

    key = c["grade"].cat.codes.to_numpy().astype(np.int64) * 100_000 + np.rint(
        c["composite"].to_numpy(dtype=float) * 100).astype(np.int64)
    return top_order(key, c["customer_id"].to_numpy(dtype=object), limit)


def flat_frame(result: Any) -> Any:
    """The CSV/xlsx shape: one row per customer in the table's order."""
    import pandas as pd

    c = result.customers
    order = display_order(c)
    sub = c.iloc[order]
    reasons = result.reason_lists()
    cols: dict[str, Any] = {"customer_id": sub["customer_id"].to_numpy(dtype=object),
                            "name": sub["name"].to_numpy(dtype=object) if "name" in sub else None,
                            "grade": sub["grade"].astype(str).to_numpy(dtype=object),
                            "composite": sub["composite"].to_numpy(dtype=float)}
    for ind in result.indicators:
        cols[ind.score_column] = sub[ind.score_column].to_numpy(dtype=float)
    cols["computed_grade"] = sub["computed_grade"].astype(str).to_numpy(dtype=object)
    cols["overridden"] = sub["overridden"].to_numpy(dtype=bool)
    cols["override_reason"] = sub["override_reason"].to_numpy(dtype=object)
    cols["reasons"] = ["；".join(reasons[i]) for i in order]
    return pd.DataFrame(cols)


def table_columns(result: Any) -> dict[str, Any]:
    """The grade model's indicator scores as exported columns, headed by their labels."""
    return {"@indicators": [{"key": i.score_column, "zh": f"{i.label}得分", "en": f"{i.label_en or i.label} score",
                             "type": "number", "format": "0.0"} for i in result.indicators]}
