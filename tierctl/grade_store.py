"""The I/O edge of customer grading (job D): history in the store, override files, and
the 降级说明函 written from templates.

:mod:`tierctl.grade` is pure (a frame in, a result out).  Everything here touches the
outside world but still knows nothing of the command line: the CLI
(:mod:`tierctl.cli.grade`) opens the store, calls these functions and shows what
comes back.

How history is kept (kind ``"grade"``):

* every grading run is a snapshot (one per as-of date; re-running a day replaces it,
  never duplicates it), one row per customer: final grade (``label``), composite
  (``score``), the computed grade, whether and why it was overridden, and each
  indicator's value and score — enough for :func:`tierctl.grade.compare` to explain
  the next run's downgrades, and for :func:`grade_history` to show a customer's story;
* an override made with ``tierctl grade override`` is a row of the store's overrides
  table: it applies to every later run until cleared; replacing or clearing it ends the
  row (with who, when and why) instead of deleting it.

Override precedence (decided for issue 7): an overrides *file* given for a run is that
run's instruction and, like any command-line input, beats stored state — a file row
without a time replaces the customer's stored override for that run (with a warning);
a file row with a time competes on time with the stored one (the latest decision wins,
as in :func:`tierctl.grade.grade_customers`).  File overrides are recorded in the run's
snapshot, not kept for later runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import NotFoundError, RenderError, UsageError
from tierctl.grade import GradeChanges, GradeModel, GradeResult, _fmt_num
from tierctl.io.ingest import ColumnSet, ColumnSpec, _parse_one_date, read_export

KIND = "grade"
LETTER_TEMPLATE = "downgrade_letter.md.j2"
LETTERS_DIR = "letters"

# The columns of an overrides file (CSV or xlsx), read through the shared ingest so
# headers, encodings and Excel row numbers behave as for every export.
OVERRIDE_COLUMNS = ColumnSet({
    "customer_id": ColumnSpec("customer_id", "text", ("客户编号", "客户ID", "客户id", "会员编号", "ID", "id",
                                                      "customer_id", "customer id"), required=True, label="客户编号"),
    "name": ColumnSpec("name", "text", ("客户姓名", "姓名", "name"), label="客户姓名"),
    "grade": ColumnSpec("grade", "text", ("等级", "调整为", "调整后等级", "人工等级", "客户等级", "新等级", "grade"),
                        required=True, label="等级"),
    "reason": ColumnSpec("reason", "text", ("原因", "调整原因", "理由", "说明", "reason"), required=True,
                         label="原因"),
    "by": ColumnSpec("by", "text", ("调整人", "经办人", "操作人", "审批人", "by"), label="调整人"),
    "at": ColumnSpec("at", "text", ("调整时间", "调整日期", "时间", "日期", "at"), label="调整时间"),
    "until": ColumnSpec("until", "text", ("有效期至", "截止日期", "到期日", "until"), label="有效期至"),
})


# =======================================================================================
# Overrides
# =======================================================================================


def read_overrides_file(path: Path, *, sheet: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """An overrides file as the frame :func:`grade_customers` takes (``_row`` = Excel
    row).  Dates may be written the ways Chinese Excel writes them."""
    ex = read_export(path, OVERRIDE_COLUMNS, sheet=sheet, encoding=encoding)
    f = ex.frame
    for col in ("at", "until"):
        if col in f.columns:
            f[col] = _times_as_text(f[col])
    return f


def _times_as_text(s: pd.Series) -> pd.Series:
    """ISO text (local wall time, as written) for every time pandas or the ingest's date
    forms (2026年11月20日, Excel serials) understand; anything else is left as written,
    for the grading to report with its row.  Override files are a few rows: one value
    at a time is fine, and lets one odd cell not spoil the others."""
    return pd.Series([_one_time(v) for v in s.astype(object).tolist()], index=s.index, dtype=object)


def _one_time(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    text = str(v).strip()
    if not text:
        return None
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError):
        t = None
    if t is None or t is pd.NaT:
        d = _parse_one_date(text)
        return text if d is None else pd.Timestamp(d).isoformat()
    if t.tzinfo is not None:
        t = t.tz_localize(None)  # the wall time as written
    return t.isoformat()


def stored_overrides(store: Any, tz: dt.tzinfo) -> pd.DataFrame:
    """The active overrides of the store, shaped for :func:`grade_customers` (``at`` =
    when it was made, local wall time)."""
    o = store.active_overrides(KIND)
    if not len(o):
        return pd.DataFrame(columns=["customer_id", "grade", "reason", "by", "at", "override_id"])
    return pd.DataFrame({
        "customer_id": o["customer_key"].astype(str),
        "grade": o["label"],
        "reason": o["reason"],
        "by": o["by"],
        "at": [_local_text(t, tz) for t in o["created_at"]],
        "override_id": o["id"],
    })


def _local_text(t: Any, tz: dt.tzinfo) -> str | None:
    if t is None or (isinstance(t, float) and np.isnan(t)):
        return None
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t)
    return t.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")


def combine_overrides(from_file: pd.DataFrame | None, stored: pd.DataFrame | None) -> tuple[pd.DataFrame | None,
                                                                                           list[str]]:
    """The overrides one run applies: the file's, then the stored ones the file does not
    replace (see the module docstring).  Returns the frame and warnings."""
    warnings: list[str] = []
    parts = []
    if from_file is not None and len(from_file):
        parts.append(from_file.assign(_source="file"))
    if stored is not None and len(stored):
        s = stored
        if from_file is not None and len(from_file):
            undated = from_file["at"].isna() if "at" in from_file.columns else pd.Series(True, index=from_file.index)
            replaced = set(from_file.loc[undated, "customer_id"].astype(str).str.strip())
            hit = s["customer_id"].isin(replaced)
            if hit.any():
                ids = sorted(s.loc[hit, "customer_id"].tolist())
                more = f" 等 {len(ids)} 位" if len(ids) > 10 else ""
                warnings.append(f"本次的人工调整文件替代了已保存的人工调整（仅本次）：{'、'.join(ids[:10])}{more}")
                s = s[~hit]
        # rows of a store have no Excel row: keep _row empty so messages do not invent one
        parts.append(s.assign(_source="stored", _row=None))
    if not parts:
        return None, warnings
    return pd.concat(parts, ignore_index=True), warnings


def override_grade(model: GradeModel, grade: str) -> str:
    """The canonical name of ``grade`` (aliases accepted); a usage error otherwise."""
    r = model.rank(grade)
    if r is None:
        raise UsageError(f"「{grade}」不是有效的等级", hint=f"可选：{'、'.join(model.grade_names)}")
    return model.categories[r]


def add_override(store: Any, model: GradeModel, customer_id: str, grade: str, reason: str | None,
                 by: str | None, now: dt.datetime) -> dict[str, Any]:
    """Record a manual grade for ``customer_id`` from now on (until cleared).  A reason is
    required; an override already in force for the customer is ended (kept in history)."""
    cid = customer_id.strip()
    if not cid:
        raise UsageError("客户编号不能为空")
    why = (reason or "").strip()
    if not why:
        raise UsageError("人工调整必须写明原因", hint='加 --reason "原因"，例如 --reason "转介绍 10 位新客户"')
    name = override_grade(model, grade)
    last = last_grading(store, cid)
    with store.transaction():
        replaced = _active_for(store, cid)
        if replaced is not None:
            store.end_overrides(KIND, [cid], at=now, status="replaced", reason="被新的人工调整取代", by=by)
        oid = store.add_override(KIND, customer_key=cid, customer_id=cid,
                                 name=last.get("name") if last else None, label=name,
                                 previous_label=last.get("computed_grade") if last else None,
                                 reason=why, by=by, created_at=now)
    return {"id": oid, "customer_id": cid, "name": last.get("name") if last else None, "grade": name,
            "reason": why, "by": by, "at": now.isoformat(), "last": last,
            "replaced": _plain_override(replaced, now.tzinfo) if replaced is not None else None}


def clear_override(store: Any, customer_id: str, reason: str | None, by: str | None,
                   now: dt.datetime) -> dict[str, Any]:
    """End the customer's override: later runs grade him by his composite again."""
    cid = customer_id.strip()
    active = _active_for(store, cid)
    if active is None:
        raise NotFoundError(f"客户 {cid} 没有生效中的人工调整",
                            hint="用 tierctl grade overrides 查看生效中的人工调整")
    store.end_overrides(KIND, [cid], at=now, status="cleared", reason=(reason or "").strip() or "人工取消", by=by)
    return {"customer_id": cid, "cleared": _plain_override(active, now.tzinfo), "at": now.isoformat(), "by": by}


def _active_for(store: Any, cid: str) -> dict[str, Any] | None:
    o = store.overrides_list(KIND, cid)
    if not len(o):
        return None
    act = o[o["status"] == "active"]
    return act.iloc[-1].to_dict() if len(act) else None


def _plain_override(row: dict[str, Any], tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """An overrides-table row as plain JSON types; times in ``tz`` wall time when given."""
    out = {}
    for k in ("id", "customer_id", "name", "label", "previous_label", "reason", "by", "created_at", "status",
              "ended_at", "ended_by", "end_reason"):
        v = row.get(k)
        if isinstance(v, dt.datetime):
            v = _local_text(v, tz) if tz is not None else v.isoformat()
        elif v is not None and not isinstance(v, str | int | float | bool):
            v = str(v)
        if isinstance(v, float) and np.isnan(v):
            v = None
        out["grade" if k == "label" else k] = v
    return out


def overrides_table(store: Any, tz: dt.tzinfo, *, all_: bool = False) -> list[dict[str, Any]]:
    """Overrides in force (or, with ``all_``, every one ever made — replaced and cleared
    ones too), oldest first, times in local wall time."""
    o = store.overrides_list(KIND) if all_ else store.active_overrides(KIND)
    return [_plain_override(r, tz) for r in o.to_dict("records")]


# =======================================================================================
# Snapshots
# =======================================================================================


def snapshot_frame(result: GradeResult) -> pd.DataFrame:
    """One row per customer, as the store keeps it (generic columns + payload)."""
    c = result.customers
    out: dict[str, Any] = {
        "customer_key": c["customer_id"].array,
        "customer_id": c["customer_id"].array,
        "name": c["name"].array if "name" in c else None,
        "phone": c["phone"].array if "phone" in c else None,
        "label": c["grade"].astype(str).to_numpy(dtype=object),
        "score": c["composite"].to_numpy(dtype=float),
        "computed_grade": c["computed_grade"].astype(str).to_numpy(dtype=object),
        "overridden": c["overridden"].to_numpy(dtype=bool),
        "override_reason": pd.array(c["override_reason"].to_numpy(dtype=object), dtype="string"),
        "override_by": pd.array(c["override_by"].to_numpy(dtype=object), dtype="string"),
        "override_at": pd.array(c["override_at"].to_numpy(dtype=object), dtype="string"),
    }
    for ind in result.indicators:
        out[ind.score_column] = c[ind.score_column].to_numpy(dtype=float)
        out[ind.value_column] = c[ind.value_column].to_numpy(dtype=float)
    return pd.DataFrame(out)


def snapshot_meta(result: GradeResult, changes: GradeChanges | None, previous: Any | None) -> dict[str, Any]:
    model = result.model
    return {
        "model_title": model.title,
        "model_path": str(model.path),
        "normalise": model.normalise,
        "weights": {k: float(v) for k, v in result.weights.items()},
        "missing_indicators": list(result.missing_indicators),
        "distribution": [{k: _plain(v) for k, v in r.items()}
                         for r in result.distribution.astype(object).to_dict("records")],
        "overrides": len(result.audit),
        "previous": previous.as_of.isoformat() if previous is not None else None,
        "upgrades": len(changes.upgrades) if changes is not None else 0,
        "downgrades": len(changes.downgrades) if changes is not None else 0,
    }


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def previous_grading(store: Any, as_of: dt.date) -> tuple[Any, pd.DataFrame] | None:
    """The latest grading strictly before ``as_of`` and its rows, in the shape
    :func:`tierctl.grade.compare` takes (``grade``, ``composite`` …)."""
    info = store.latest_snapshot(KIND, before=as_of)
    if info is None:
        return None
    rows = store.snapshot_rows(info.id)
    rows = rows.rename(columns={"label": "grade", "score": "composite"})
    return info, rows


def save_grading(store: Any, result: GradeResult, source: Path, meta: dict[str, Any],
                 now: dt.datetime) -> Any:
    """Store the run (replacing an earlier run of the same as-of date); returns its info."""
    sid = store.save_snapshot(KIND, result.as_of, result.model.name, source.name, file_hash(source),
                              snapshot_frame(result), meta, now=now)
    return store.snapshot(sid)


def last_grading(store: Any, customer_id: str) -> dict[str, Any] | None:
    """The customer's row in his latest grading (None if never graded)."""
    rows = store.customer_rows(KIND, customer_id)
    if not len(rows):
        return None
    r = rows.iloc[-1].to_dict()
    return {"as_of": _iso(r.get("as_of")), "grade": r.get("label"), "composite": r.get("score"),
            "computed_grade": r.get("computed_grade"), "name": r.get("name")}


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date | dt.datetime) else v


def grade_history(store: Any, model: GradeModel, customer_id: str, tz: dt.tzinfo) -> dict[str, Any]:
    """A customer's grading story: every grading with its grade, composite and change,
    and every override made or ended, in time order."""
    cid = customer_id.strip()
    rows = store.customer_rows(KIND, cid)
    ovs = store.overrides_list(KIND, cid)
    if not len(rows) and not len(ovs):
        raise NotFoundError(f"客户 {cid} 没有客户分级记录",
                            hint="检查客户编号（导出中的写法，含前导 0）；或先运行 tierctl grade 导出文件")
    gradings = []
    prev = None
    for r in rows.to_dict("records"):
        g = r.get("label")
        change = None
        if prev is not None and g != prev:
            a, b = model.rank(g), model.rank(prev)
            change = "changed" if a is None or b is None else ("up" if a > b else "down")
        gradings.append({
            "as_of": _iso(r["as_of"]), "snapshot_id": int(r["snapshot_id"]), "grade": g,
            "composite": _num(r.get("score")), "computed_grade": r.get("computed_grade"),
            "overridden": bool(r.get("overridden") or False),
            "override_reason": r.get("override_reason") if r.get("overridden") else None,
            "override_by": r.get("override_by") if r.get("overridden") else None,
            "previous_grade": prev, "change": change,
        })
        prev = g
    events = []
    for o in ovs.to_dict("records"):
        events.append({"at": _local_text(o["created_at"], tz), "event": "override", "grade": o["label"],
                       "reason": o["reason"], "by": o.get("by"), "previous_grade": o.get("previous_label"),
                       "id": int(o["id"])})
        if o.get("ended_at") is not None and not (isinstance(o["ended_at"], float) and np.isnan(o["ended_at"])):
            events.append({"at": _local_text(o["ended_at"], tz), "event": o["status"], "grade": o["label"],
                           "reason": o.get("end_reason"), "by": o.get("ended_by"), "previous_grade": None,
                           "id": int(o["id"])})
    events.sort(key=lambda e: (e["at"] or "", e["id"]))
    name = next((r.get("name") for r in reversed(rows.to_dict("records")) if r.get("name")), None)
    active = ovs[ovs["status"] == "active"] if len(ovs) else ovs
    return {"customer_id": cid, "name": name, "gradings": gradings, "overrides": events,
            "active_override": _plain_override(active.iloc[-1].to_dict(), tz) if len(active) else None}


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and np.isnan(v) else v


def _num(v: Any) -> float | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return float(v)


# =======================================================================================
# 降级说明函
# =======================================================================================


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
            return model.indicator(key).normalise == "thresholds"
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
    from tierctl import documents as docs
    from tierctl.render import ConfigView, make_environment, render_template

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
def staged_letters(letters: Letters):
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
