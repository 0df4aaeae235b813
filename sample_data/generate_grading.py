"""Generate a realistic customer-grading export (job D, ``tierctl grade``).

    python sample_data/generate_grading.py                     # rewrites sample_data/grading.csv
    python sample_data/generate_grading.py --rows 1000000 --out big.csv   # a benchmark export

What it imitates: the customer list a mid-price brand's service centre (a typical 4S
store) exports from its DMS/CRM once a month — one row per customer with the last
twelve months' spend and visits, the average ticket, the first visit, the latest
satisfaction survey (1–10) and the service advisor's 1–100 potential rating.

The numbers are built from one hidden "engagement" factor per customer, so they are
correlated the way real ones are (frequent visitors spend more, stay longer, answer the
survey more kindly), plus a dormant group with no visit in twelve months (their survey
mostly blank).  Assumptions, written down because the thresholds variant of the grading
model (``tierctl/models/grade.toml``) was calibrated on this file: a paying visit costs
about 800 元 (maintenance 400–1,500 元, the odd repair far more); active customers come
1–5 times a year; about one customer in six has not come for a year.

Like a real export it is a little untidy: ids with leading zeros, dates written three
ways, a few amounts as ``1.2万`` or ``12,300``, some blank average tickets (tierctl
derives them as spend ÷ visits).  Among the customers are the cases of the grading
manual (seed 004): a three-year customer with modest spend but high potential (the
"潜力" example) and a referrer who brought ten customers (the override example).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
DEMO_AS_OF = dt.date(2026, 11, 24)
SEED = 20261124

HEADERS = ["客户编号", "客户姓名", "手机号", "车型", "首次到店日期", "近12个月消费", "到店次数", "客单价", "满意度",
           "潜力评分"]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华",
         "丽", "鹏", "辉", "玲", "桂英", "建华", "志强", "晓东", "海燕", "雪梅", "宇航", "子涵"]
CARS = ["朗逸", "速腾", "迈腾", "帕萨特", "途观L", "探岳", "宝来", "ID.4", "凌渡", "威然"]

# The manual's worked cases (customer ids fixed so tests and the README can name them).
REFERRER_ID = "000007"  # 转介绍 10 位新客户 → manager overrides to VIP
POTENTIAL_ID = "000011"  # 合作 3 年、消费一般、潜力高 → 潜力


def _facts(n: int, rng: np.random.Generator, as_of: dt.date) -> dict[str, np.ndarray]:
    """The raw numbers (floats, NaN for blank) for ``n`` customers."""
    z = rng.standard_normal(n)
    dormant = rng.random(n) < np.where(z < -0.8, 0.35, 0.10)
    visits = np.where(dormant, 0, 1 + rng.poisson(np.exp(0.45 + 0.45 * z)))
    visits = np.minimum(visits, 24)
    ticket = np.clip(rng.lognormal(np.log(800) + 0.25 * z, 0.55), 150, 30000)
    spend = np.round(visits * ticket * rng.lognormal(0, 0.12, n), 2)
    months = np.clip(np.round(np.exp(rng.normal(3.5 + 0.35 * z, 0.75))), 1, 180).astype(int)
    first = np.datetime64(as_of, "D") - (months * 30.44).astype("timedelta64[D]")
    sat = np.clip(np.round(7.6 + 1.0 * z + rng.normal(0, 1.2, n)), 1, 10)
    sat[rng.random(n) < np.where(dormant, 0.6, 0.2)] = np.nan
    pot = np.clip(np.round(55 + 12 * z + rng.normal(0, 15, n)), 1, 100)
    pot[rng.random(n) < 0.1] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(visits > 0, np.round(spend / np.maximum(visits, 1), 2), np.nan)
    avg[rng.random(n) < 0.08] = np.nan  # the export leaves some blank: tierctl derives them
    return {"spend": spend, "visits": visits.astype(float), "avg": avg, "first": first, "sat": sat, "pot": pot}


def _money_text(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Amounts as a CRM writes them: mostly plain, a few with separators or in 万."""
    out = np.array([f"{x:.2f}" for x in v], dtype=object)
    r = rng.random(len(v))
    big = v >= 10000
    sep = (r < 0.05) & big
    wan = (r > 0.97) & big
    out[sep] = [f"{x:,.2f}" for x in v[sep]]
    out[wan] = [f"{x / 10000:.1f}万" for x in v[wan]]
    return out


def _date_text(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ts = pd.to_datetime(d)
    r = rng.random(len(d))
    iso = ts.strftime("%Y-%m-%d").to_numpy(dtype=object)
    slash = np.array([f"{t.year}/{t.month}/{t.day}" for t in ts], dtype=object)
    zh = np.array([f"{t.year}年{t.month}月{t.day}日" for t in ts], dtype=object)
    return np.where(r < 0.75, iso, np.where(r < 0.9, slash, zh))


def demo_frame(n: int = 2000, seed: int = SEED, as_of: dt.date = DEMO_AS_OF) -> pd.DataFrame:
    """The demo export as text cells (what the CSV holds), Chinese headers."""
    rng = np.random.default_rng(seed)
    f = _facts(n, rng, as_of)
    ids = np.array([f"{i:06d}" for i in range(1, n + 1)], dtype=object)
    names = np.array([rng.choice(SURNAMES) + rng.choice(["先生", "女士", *GIVEN]) for _ in range(n)], dtype=object)
    phones = np.array([f"1{rng.choice([3, 5, 7, 8, 9])}{rng.integers(0, 10**9):09d}" for _ in range(n)], dtype=object)
    visits_txt = np.array([f"{int(v)}" for v in f["visits"]], dtype=object)
    suffix = rng.random(n) < 0.03  # some CRMs write the unit into the cell
    visits_txt[suffix] = [f"{int(v)}次" for v in f["visits"][suffix]]
    df = pd.DataFrame({
        "客户编号": ids,
        "客户姓名": names,
        "手机号": phones,
        "车型": rng.choice(CARS, n),
        "首次到店日期": _date_text(f["first"], rng),
        "近12个月消费": _money_text(f["spend"], rng),
        "到店次数": visits_txt,
        "客单价": np.array(["" if np.isnan(x) else f"{x:.2f}" for x in f["avg"]], dtype=object),
        "满意度": np.array(["" if np.isnan(x) else f"{int(x)}" for x in f["sat"]], dtype=object),
        "潜力评分": np.array(["" if np.isnan(x) else f"{int(x)}" for x in f["pot"]], dtype=object),
    })
    # the manual's cases
    ref = int(REFERRER_ID) - 1
    df.loc[ref, ["客户姓名", "首次到店日期", "近12个月消费", "到店次数", "客单价", "满意度", "潜力评分"]] = [
        "许先生", (as_of - dt.timedelta(days=2 * 365)).isoformat(), "2860.00", "2", "1430.00", "9", "70"]
    pot = int(POTENTIAL_ID) - 1
    df.loc[pot, ["客户姓名", "首次到店日期", "近12个月消费", "到店次数", "客单价", "满意度", "潜力评分"]] = [
        "宋女士", (as_of - dt.timedelta(days=3 * 365 + 20)).isoformat(), "4200.00", "2", "2100.00", "8", "96"]
    return df


def next_period(df: pd.DataFrame, seed: int = SEED + 1, lapse: float = 0.12, grow: float = 0.10) -> pd.DataFrame:
    """The same customers a period later: a share lapse (visits and spend fall sharply),
    a share come more often, the rest move a little.  For tests and demos of the
    升降级 and the 降级说明函."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    n = len(df)
    spend = pd.to_numeric(out["近12个月消费"].str.replace(",", "").str.replace("万", "e4", regex=False),
                          errors="coerce").fillna(0).to_numpy()
    visits = pd.to_numeric(out["到店次数"].str.rstrip("次"), errors="coerce").fillna(0).to_numpy()
    r = rng.random(n)
    factor = np.where(r < lapse, 0.3, np.where(r > 1 - grow, 1.8, rng.lognormal(0, 0.1, n)))
    new_visits = np.maximum(np.round(visits * factor), 0)
    new_spend = np.round(spend * factor, 2)
    out["近12个月消费"] = [f"{x:.2f}" for x in new_spend]
    out["到店次数"] = [f"{int(v)}" for v in new_visits]
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(new_visits > 0, np.round(new_spend / np.maximum(new_visits, 1), 2), np.nan)
    out["客单价"] = ["" if np.isnan(x) else f"{x:.2f}" for x in avg]
    return out


def big_frame(rows: int, seed: int = 7, as_of: dt.date = DEMO_AS_OF) -> pd.DataFrame:
    """A large export for benchmarks: the same shape, plain formats, built vectorised."""
    rng = np.random.default_rng(seed)
    f = _facts(rows, rng, as_of)
    ids = pd.Series(np.arange(1, rows + 1)).map("{:08d}".format)
    return pd.DataFrame({
        "客户编号": ids,
        "客户姓名": "客户" + ids.str[-4:],
        "手机号": pd.Series(13800000000 + rng.integers(0, 10**8, rows)).astype(str),
        "首次到店日期": pd.to_datetime(f["first"]).strftime("%Y-%m-%d"),
        "近12个月消费": np.round(f["spend"], 2),
        "到店次数": f["visits"].astype(int),
        "客单价": f["avg"],
        "满意度": f["sat"],
        "潜力评分": f["pot"],
    })


def write_demo(out_dir: Path = HERE) -> Path:
    p = out_dir / "grading.csv"
    demo_frame().to_csv(p, index=False, encoding="utf-8-sig")
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=0, help="write a large benchmark export with this many customers")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.rows:
        out = args.out or Path(f"grading_{args.rows}.csv")
        big_frame(args.rows).to_csv(out, index=False)
        print(f"wrote {out} ({args.rows:,} customers)")
    else:
        print(f"wrote {write_demo()}")


if __name__ == "__main__":
    main()
