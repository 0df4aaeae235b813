"""Generate a realistic visit-history export for RFM (job C): the demo file and big benchmark files.

    python sample_data/generate_visits.py                       # rewrites sample_data/visits.csv
    python sample_data/generate_visits.py --rows 5000000 --customers 500000 --out big.csv

The demo export imitates a dealer management system's "settlement detail" export as Chinese
Excel saves it (GBK): a title line above the header, one row per settlement line, Chinese
headers, dates in the three ways such exports write them, amounts with thousands
separators, and what real history holds:

* about 300 owners over 26 months (2024-10 to the export day, 2026-11-28), so a year-ago
  or a month-ago snapshot can be re-computed from the same file;
* repair-order numbers, an order split over two lines (one visit), two different orders
  on the same day (two visits), free check-ups (0 元), refunds (negative amounts);
* rows dated after the demo as-of date 2026-11-24 (the export was taken four days later);
* a KOL column (是 / empty), owners with two cars (two VINs), an owner whose name was
  re-keyed (刘先生 → 刘建华);
* the seed manual's worked example, 林女士: one 18,000 元 visit at delivery in November 2025
  (a 5-1-4 重要发展 customer as of 2025-11-24), then five visits in the following year
  (5-4-4 重要价值 as of 2026-11-24).

Everything is seeded: running the script twice gives the same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
DEMO_AS_OF = dt.date(2026, 11, 24)
EXPORTED = dt.date(2026, 11, 28)  # the export day: rows after the as-of date exist
HISTORY_START = dt.date(2024, 10, 1)

HEADERS = ["结算单号", "客户编号", "客户姓名", "手机号", "车架号", "车型", "结算日期", "维修类型", "结算金额",
           "服务顾问", "KOL", "备注"]
TITLE = f"星途汽车服务中心 维修结算明细（{HISTORY_START:%Y-%m-%d} 至 {EXPORTED:%Y-%m-%d}，导出时间 {EXPORTED} 09:12）"

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
TITLES = ["先生", "女士"]
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华",
         "丽", "鹏", "辉", "玲", "桂英", "建华", "志强", "晓东", "海燕", "雪梅", "宇航", "子涵"]
CARS = ["Model 3", "Model Y", "Model S", "Model X", "Model 3 长续航", "Model Y 高性能版"]
ADVISORS = ["周晓", "钱磊", "孙倩", "李想", "吴迪"]
# (service type, typical amount range in 元)
SMALL_JOBS = [("常规保养", (380, 900)), ("轮胎更换", (600, 2400)), ("空调清洗", (180, 420)),
              ("刹车片更换", (520, 1300)), ("洗车美容", (80, 260)), ("四轮定位", (200, 380))]
CHEAP_JOBS = [("洗车美容", (60, 180)), ("空调清洗", (120, 260)), ("四轮定位", (150, 260)), ("玻璃水/雨刮", (30, 120))]
BIG_JOBS = [("钣金喷漆", (3500, 12000)), ("事故维修", (6000, 26000)), ("延保+精品", (8000, 20000)),
            ("电池检修", (4000, 15000)), ("底盘维修", (2800, 9000))]

# archetype → (share of customers, visits in the scoring year, days-ago range of the
# latest visit, spend profile); the mix follows the usual shares of SPEC part C
ARCHETYPES = {
    "champion": (0.06, (5, 10), (0, 40), "big"),
    "at_risk_loyal": (0.04, (4, 8), (130, 220), "big"),
    "promising": (0.05, (1, 1), (0, 45), "one_big"),
    "slipping": (0.03, (1, 2), (150, 330), "one_big"),
    "frequent_small": (0.13, (4, 7), (0, 45), "cheap"),
    "lapsing_regular": (0.17, (3, 6), (120, 250), "cheap"),
    "occasional": (0.22, (1, 2), (0, 60), "small"),
    "lost": (0.29, (1, 1), (200, 364), "small"),
}


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + (rng.choice(TITLES) if rng.random() < 0.55 else rng.choice(GIVEN))


def _vin(rng: random.Random) -> str:
    return "LRW3E7" + "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(3)) \
        + f"{rng.randrange(10**7, 10**8)}"


def _date_text(d: dt.date, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.80:
        return d.isoformat()
    if r < 0.95:
        return f"{d.year}/{d.month}/{d.day}"
    return f"{d.year}年{d.month}月{d.day}日"


def _amount_text(v: float, rng: random.Random) -> str:
    if abs(v) >= 1000 and rng.random() < 0.3:
        return f"{v:,.2f}"
    return f"{v:.2f}"


def _job(profile: str, rng: random.Random, first: bool) -> tuple[str, float]:
    if profile == "big" and rng.random() < 0.55 or profile == "one_big" and first:
        kind, (lo, hi) = rng.choice(BIG_JOBS)
    elif profile == "cheap":
        kind, (lo, hi) = rng.choice(CHEAP_JOBS)
    else:
        kind, (lo, hi) = rng.choice(SMALL_JOBS)
    return kind, round(rng.uniform(lo, hi), 0) + rng.choice([0.0, 0.0, 0.5, 0.8])


def demo_visits(n_customers: int = 300, seed: int = 20261124) -> list[dict[str, str]]:
    """The demo export's records, oldest first (as the export sorts them)."""
    rng = random.Random(seed)
    visits: list[dict] = []
    names = list(ARCHETYPES)
    weights = [ARCHETYPES[a][0] for a in names]

    def add(cust: dict, day: dt.date, kind: str, amount: float, vin: str | None = None, note: str = "") -> None:
        visits.append({"day": day, "cust": cust, "vin": vin or cust["vins"][0], "kind": kind,
                       "amount": amount, "note": note})

    customers = []
    for i in range(n_customers):
        arche = rng.choices(names, weights)[0]
        cust = {"id": f"{10000 + i * 7:06d}", "name": _name(rng), "phone": f"1{rng.choice([3, 5, 7, 8, 9])}{rng.randrange(10**8, 10**9)}",
                "vins": [_vin(rng)], "car": rng.choice(CARS), "advisor": rng.choice(ADVISORS),
                "kol": rng.random() < 0.02, "arche": arche}
        if rng.random() < 0.05:
            cust["vins"].append(_vin(rng))  # a second car in the family
        customers.append(cust)
        _, (lo_n, hi_n), (lo_d, hi_d), profile = ARCHETYPES[arche]
        n = rng.randint(lo_n, hi_n)
        last = rng.randint(lo_d, hi_d)
        # visits inside the scoring year: the latest `last` days ago, the rest spread before it
        span = max(364 - last, 1)
        ago = sorted({last, *(last + rng.randint(1, span) for _ in range(n - 1))})
        for k, d in enumerate(reversed(ago)):
            kind, amount = _job(profile, rng, first=k == 0)
            add(cust, DEMO_AS_OF - dt.timedelta(days=d), kind, amount, rng.choice(cust["vins"]))
        # the year before (history for month-ago and year-ago snapshots)
        if arche != "promising" or rng.random() < 0.2:
            for _ in range(rng.choice([0, 1, 1, 2, 3] if arche != "lost" else [1, 2, 3, 4])):
                d = rng.randint(365, (DEMO_AS_OF - HISTORY_START).days)
                kind, amount = _job(profile if profile in ("small", "cheap") else "big", rng, first=False)
                add(cust, DEMO_AS_OF - dt.timedelta(days=d), kind, amount)

    # 林女士 (seed 003): delivery-day 18,000 元, then five visits in the next twelve months
    lin = {"id": "010086", "name": "林女士", "phone": "13900001234", "vins": ["LRW3E7EB1RL086001"], "car": "Model Y",
           "advisor": "孙倩", "kol": False, "arche": "lin"}
    customers.append(lin)
    add(lin, dt.date(2025, 11, 14), "延保+精品", 18000.00, note="交车当天：延保、贴膜、家用充电桩")
    for day, kind, amount in [(dt.date(2026, 2, 10), "常规保养", 1200.00), (dt.date(2026, 5, 18), "钣金喷漆", 3500.00),
                              (dt.date(2026, 7, 26), "轮胎更换", 4000.00), (dt.date(2026, 9, 20), "电池检修", 2600.00),
                              (dt.date(2026, 11, 19), "常规保养", 2500.00)]:
        add(lin, day, kind, amount)

    # a KOL with small spend: must be flagged, not buried under a low M
    kol = {"id": "010099", "name": "周子涵", "phone": "13700009999", "vins": [_vin(rng)], "car": "Model 3",
           "advisor": "李想", "kol": True, "arche": "kol"}
    customers.append(kol)
    add(kol, DEMO_AS_OF - dt.timedelta(days=12), "洗车美容", 168.00, note="汽车博主，粉丝 23 万")

    # an owner whose name was re-keyed at the front desk: one id, two names
    liu = next(c for c in customers if c["arche"] == "champion")
    liu_alias = dict(liu, name="刘建华")
    liu["name"] = "刘先生"

    rows = []
    visits.sort(key=lambda v: (v["day"], v["cust"]["id"]))
    seq_by_day: dict[dt.date, int] = {}
    for v in visits:
        seq = seq_by_day[v["day"]] = seq_by_day.get(v["day"], 0) + 1
        order = f"RO{v['day']:%Y%m%d}{seq:03d}"
        c = v["cust"]
        name = liu_alias["name"] if c is liu and v["day"] > dt.date(2026, 6, 1) else c["name"]
        rows.append({"结算单号": order, "客户编号": c["id"], "客户姓名": name, "手机号": c["phone"], "车架号": v["vin"],
                     "车型": c["car"], "day": v["day"], "维修类型": v["kind"], "amount": v["amount"],
                     "服务顾问": c["advisor"], "KOL": "是" if c["kol"] else "", "备注": v["note"]})

    # the worked examples stay exactly as the manual tells them
    plain = [r for r in rows if r["客户编号"] not in (lin["id"], kol["id"])]
    # an order settled in two lines (parts and labour): one visit, two rows
    for r in [r for r in plain if r["维修类型"] == "事故维修"][:6]:
        labour = round(r["amount"] * 0.3, 2)
        r["amount"] = round(r["amount"] - labour, 2)
        rows.append(dict(r, 维修类型="事故维修（工时）", amount=labour, 备注="同一结算单的工时"))
    # two different orders on one day (maintenance, then accessories fitted the same afternoon)
    for r in [r for r in plain if r["维修类型"] == "常规保养" and r["day"] > dt.date(2026, 1, 1)][:8]:
        rows.append(dict(r, 结算单号=r["结算单号"] + "B", 维修类型="精品加装", amount=float(rng.choice([299, 680, 1280])),
                         备注="同日另开的精品单"))
    # free check-ups: a visit with 0 元
    for r in [r for r in plain if r["维修类型"] == "空调清洗"][:5]:
        rows.append(dict(r, 结算单号=r["结算单号"] + "F", 维修类型="免费检测", amount=0.0, 备注="免费安全检测"))
    # refunds: negative amounts under their own settlement number, a few days later
    for k, r in enumerate([r for r in plain if r["amount"] > 2000 and r["day"] > dt.date(2025, 12, 1)][::9][:10]):
        back = min(r["day"] + dt.timedelta(days=3 + k % 5), DEMO_AS_OF)
        rows.append(dict(r, 结算单号=f"RF{back:%Y%m%d}{k:03d}", day=back, 维修类型="退款",
                         amount=-round(r["amount"] * rng.choice([0.1, 0.2, 0.5]), 2), 备注="部分退款（配件退回）"))
    # the export was taken four days after the as-of date
    late = rng.sample([c for c in customers if c["arche"] in ("champion", "frequent_small", "occasional")], 6)
    for k, c in enumerate(late):
        day = DEMO_AS_OF + dt.timedelta(days=1 + k % 4)
        kind, amount = _job("small", rng, first=False)
        rows.append({"结算单号": f"RO{day:%Y%m%d}{900 + k:03d}", "客户编号": c["id"], "客户姓名": c["name"],
                     "手机号": c["phone"], "车架号": c["vins"][0], "车型": c["car"], "day": day, "维修类型": kind,
                     "amount": amount, "服务顾问": c["advisor"], "KOL": "是" if c["kol"] else "", "备注": ""})

    rows.sort(key=lambda r: (r["day"], r["结算单号"]))
    out = []
    for r in rows:
        rec = {h: r.get(h, "") for h in HEADERS}
        rec["结算日期"] = _date_text(r["day"], rng)
        rec["结算金额"] = _amount_text(r["amount"], rng)
        out.append(rec)
    return out


def write_demo(path: Path = HERE / "visits.csv", encoding: str = "gbk") -> Path:
    """The demo export, GBK (what Chinese Excel writes for CSV), title line above the header."""
    frame = pd.DataFrame(demo_visits(), columns=HEADERS)
    text = TITLE + "\r\n" + frame.to_csv(index=False, lineterminator="\r\n")
    path.write_bytes(text.encode(encoding))
    return path


def big_frame(rows: int, customers: int, seed: int = 7, as_of: dt.date = DEMO_AS_OF) -> pd.DataFrame:
    """A large export of the same shape (vectorised), for the benchmark: skewed visit
    counts, two lines per order on average, 1% refunds, ~15 months ending a few days
    after ``as_of``."""
    rng = np.random.default_rng(seed)
    weight = rng.gamma(2.0, 1.0, customers)
    line_of = np.arange(rows) // 2  # two settlement lines per order on average
    n_orders = int(line_of[-1]) + 1 if rows else 0
    cust_o = rng.choice(customers, size=n_orders, p=weight / weight.sum())
    back_o = rng.integers(-3, 450, n_orders)
    cust, back = cust_o[line_of], back_o[line_of]
    day = np.datetime64(as_of.isoformat()) - back.astype("timedelta64[D]")
    amount = np.round(rng.lognormal(6.5, 1.1, rows), 2)
    refund = rng.random(rows) < 0.01
    amount[refund] = -np.round(amount[refund] * rng.uniform(0.1, 1.0, int(refund.sum())), 2)
    ids = np.char.add("C", np.char.zfill(np.arange(customers).astype(str), 7))
    names = np.char.add(rng.choice(np.array(SURNAMES), customers), rng.choice(np.array(["先生", "女士"]), customers))
    phones = np.char.add("13", np.char.zfill(np.arange(customers).astype(str), 9))
    vins = np.char.add("LRW3E7EA", np.char.zfill(np.arange(customers).astype(str), 9))
    kol = np.where(rng.random(customers) < 0.002, "是", "")
    jobs = np.array([j for j, _ in SMALL_JOBS + BIG_JOBS])
    return pd.DataFrame({
        "结算单号": np.char.add("RO", np.char.zfill(line_of.astype(str), 9)),
        "客户编号": ids[cust],
        "客户姓名": names[cust],
        "手机号": phones[cust],
        "车架号": vins[cust],
        "车型": rng.choice(np.array(CARS), rows),
        "结算日期": day.astype(str),
        "维修类型": rng.choice(jobs, rows),
        "结算金额": np.char.mod("%.2f", amount),
        "服务顾问": rng.choice(np.array(ADVISORS), rows),
        "KOL": kol[cust],
        "备注": "",
    }, columns=HEADERS)


def write_big(path: Path, rows: int, customers: int, encoding: str = "utf-8-sig") -> Path:
    """Write a big export with pyarrow's CSV writer (tens of seconds for 5 million rows)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    frame = big_frame(rows, customers)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        if encoding.lower() in ("utf-8-sig", "utf8-sig"):
            fh.write("\ufeff".encode())
        if encoding.lower() in ("utf-8-sig", "utf8-sig", "utf-8", "utf8"):
            # plain values (no commas or quotes in generated text): unquoted, as Excel writes them
            fh.write((",".join(HEADERS) + "\n").encode())
            pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(quoting_style="none", include_header=False))
        else:
            fh.write(frame.to_csv(index=False).encode(encoding))
    tmp.replace(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, help="write a large export with this many settlement lines")
    ap.add_argument("--customers", type=int, help="distinct customers in the large export (default rows / 10)")
    ap.add_argument("--out", type=Path, help="output file for --rows")
    ap.add_argument("--encoding", default=None, help="gbk for the demo file; utf-8-sig for big files")
    args = ap.parse_args()
    if args.rows:
        out = args.out or Path(f"visits_{args.rows}.csv")
        print(write_big(out, args.rows, args.customers or max(args.rows // 10, 1), args.encoding or "utf-8-sig"))
    else:
        print(write_demo(encoding=args.encoding or "gbk"))


if __name__ == "__main__":
    main()
