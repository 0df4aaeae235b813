"""Generate the churn-risk demo export (sample_data/churn.csv) and larger ones.

    python sample_data/generate_churn.py                    # rewrites sample_data/churn.csv
    python sample_data/generate_churn.py --rows 100000 --out big.csv

The demo file imitates a CRM's customer-retention export: Chinese headers, ids with
leading zeros, last visit and usual interval, satisfaction now and before, no-shows,
average ticket now and before, unanswered calls, notes, an open-complaint flag, annual
spend, churn reason and customer type, birthday and kilometres since the last service.
A few rows carry a ready 流失风险分 from the CRM.  Among the customers are the four
calibration cases of the playbook (a 中, b 中, c 高 68, d 极高 85), named 赵/钱/孙/李.

Deterministic: the same seed gives the same file, dated relative to ``--as-of``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
DEMO_AS_OF = dt.date(2026, 11, 24)

HEADERS = ["客户编号", "客户姓名", "手机号", "上次到店日期", "平均回厂间隔", "最近满意度", "上次满意度", "连续爽约次数",
           "近期客单价", "历史客单价", "未接电话次数", "备注", "未解决投诉", "年消费金额", "流失原因", "客户类型", "生日",
           "距上次保养里程", "流失风险分"]

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
TITLES = ["先生", "女士"]
NOTES = ["", "", "", "", "", "客户很满意，下次还来", "没有投诉，只是问问保养价格", "嫌等待时间长，有点抱怨", "说在别家比价",
         "觉得太贵了", "离得远，来一趟不方便", "车有异响没修好", "态度不好，不想再来", "去了4S店保养", "不贵，挺合理的"]
REASONS = ["", "", "", "价格", "不便", "服务", "技术"]
TYPES = ["", "", "价格敏感", "远距离", "时间敏感", "品质客户"]

# The playbook's four calibration cases (days before the as-of date where dates are involved).
CASES = [
    {"客户编号": "00000101", "客户姓名": "赵先生", "上次到店日期": 120, "平均回厂间隔": 90, "备注": "最近比较忙",
     "年消费金额": 6000, "客户类型": "远距离"},
    {"客户编号": "00000102", "客户姓名": "钱女士", "最近满意度": 7, "上次满意度": 9, "上次到店日期": 40, "平均回厂间隔": 90,
     "备注": "评价里说等待时间长，有点抱怨", "年消费金额": 5200},
    {"客户编号": "00000103", "客户姓名": "孙先生", "近期客单价": 800, "历史客单价": 2500, "连续爽约次数": 3, "最近满意度": 6,
     "上次满意度": 7, "上次到店日期": 75, "平均回厂间隔": 90, "备注": "觉得每次都太贵了", "年消费金额": 9600,
     "流失原因": "价格"},
    {"客户编号": "00000104", "客户姓名": "李先生", "上次到店日期": 185, "未接电话次数": 3, "未解决投诉": "是",
     "备注": "保养后出现故障，投诉处理不满意", "年消费金额": 15000, "流失原因": "服务"},
]


def make(rows: int, as_of: dt.date, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = rows
    interval = rng.choice([60, 90, 90, 120, 180], n)
    since = np.clip(interval * rng.lognormal(-0.25, 0.45, n), 3, 700).astype(int)
    prev_sat = rng.choice([8, 9, 9, 10, 10], n)
    sat = np.clip(prev_sat - rng.choice([0, 0, 0, 0, 0, 1, 2, 3], n), 1, 10)
    prev_ticket = rng.integers(8, 30, n) * 100
    ticket = np.round(prev_ticket * rng.uniform(0.35, 1.15, n), -1)
    birth = pd.Timestamp("1965-01-01") + pd.to_timedelta(rng.integers(0, 365 * 35, n), unit="D")
    # a handful of birthdays inside the first week after the as-of date, so the demo shows some
    soon = rng.random(n) < 0.06
    birth = birth.where(~soon, pd.to_datetime([
        dt.date(1980 + int(y), (as_of + dt.timedelta(days=int(d))).month, (as_of + dt.timedelta(days=int(d))).day)
        for y, d in zip(rng.integers(0, 20, n), rng.integers(0, 7, n), strict=True)]))
    names = [f"{rng.choice(SURNAMES)}{rng.choice(TITLES)}" for _ in range(n)]
    df = pd.DataFrame({
        "客户编号": [f"{i:08d}" for i in range(1001, 1001 + n)],
        "客户姓名": names,
        "手机号": [f"13{rng.integers(0, 10)}{rng.integers(10000000, 99999999)}" for _ in range(n)],
        "上次到店日期": [(as_of - dt.timedelta(days=int(d))).isoformat() for d in since],
        "平均回厂间隔": interval,
        "最近满意度": sat,
        "上次满意度": prev_sat,
        "连续爽约次数": rng.choice([0] * 9 + [1, 2, 3], n),
        "近期客单价": ticket.astype(int),
        "历史客单价": prev_ticket,
        "未接电话次数": rng.choice([0] * 7 + [1, 2, 3], n),
        "备注": rng.choice(NOTES, n),
        "未解决投诉": np.where(rng.random(n) < 0.04, "是", ""),
        "年消费金额": (rng.integers(15, 200, n) * 100),
        "流失原因": rng.choice(REASONS, n),
        "客户类型": rng.choice(TYPES, n),
        "生日": [d.strftime("%Y/%m/%d") for d in birth],
        "距上次保养里程": rng.integers(200, 7500, n),
        "流失风险分": "",
    })
    # a few rows where the CRM already computed the score
    given = rng.random(n) < 0.05
    df.loc[given, "流失风险分"] = rng.integers(10, 95, int(given.sum())).astype(str)
    return df


def demo(as_of: dt.date = DEMO_AS_OF, rows: int = 40) -> pd.DataFrame:
    df = make(rows, as_of)
    cases = []
    for c in CASES:
        row = {h: "" for h in HEADERS}
        row.update({k: v for k, v in c.items()})
        row["上次到店日期"] = (as_of - dt.timedelta(days=int(c.get("上次到店日期", 30)))).isoformat()
        row["平均回厂间隔"] = c.get("平均回厂间隔", "")
        row["手机号"] = f"1380000{c['客户编号'][-4:]}"
        row["生日"] = "1978/03/15"
        row["距上次保养里程"] = 3000
        cases.append(row)
    return pd.concat([pd.DataFrame(cases), df], ignore_index=True)[HEADERS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=0, help="customers (0 = the demo file)")
    ap.add_argument("--out", type=Path, default=HERE / "churn.csv")
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=DEMO_AS_OF)
    a = ap.parse_args()
    df = demo(a.as_of) if a.rows == 0 else make(a.rows, a.as_of)
    df.to_csv(a.out, index=False, encoding="utf-8-sig")
    print(f"wrote {a.out} ({len(df)} customers)")


if __name__ == "__main__":
    main()
