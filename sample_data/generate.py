"""Generate realistic shortage exports: the small demo file and large benchmark files.

    python sample_data/generate.py                 # rewrites the demo files in sample_data/
    python sample_data/generate.py --rows 1000000 --out big.csv   # a benchmark export

The demo export imitates what a Chinese CRM's export button produces: a title line
above the header, Chinese headers, raw facts (followers, identity, usage, contact
counts, notes), dates in mixed formats, and among the customers the four worked
examples of the RITE manual (张先生, 王女士, 李先生, 赵先生).
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

HEADERS = ["客户编号", "客户姓名", "手机号", "车型", "车架号", "缺件名称", "服务顾问", "登记日期", "粉丝数",
           "身份/职业", "用车场景", "近7天联系次数", "沟通记录", "社媒负面", "舆情风险"]

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华",
         "丽", "鹏", "辉", "玲", "桂英", "建华", "志强", "晓东", "海燕", "雪梅", "宇航", "子涵"]
CARS = ["Model 3", "Model Y", "Model S", "Model X", "Model 3 长续航", "Model Y 高性能版"]
PARTS = ["前保险杠总成", "空调压缩机", "后视镜总成", "大灯总成", "前机盖", "充电口盖板"]
ADVISORS = ["周晓", "钱磊", "孙倩", "李想"]
USAGES = ["网约车", "每天通勤上下班", "唯一用车，接送孩子", "主要用车，家里有第二辆", "周末休闲自驾", "备用车，很少开", "",
          "家用", "上班通勤"]
IDENTITIES = ["", "", "", "公司职员", "教师", "汽车论坛版主", "自媒体", "律师", "企业高管", "退休", "医生", "KOL"]
NOTES = [
    "", "客户表示理解，不急", "每天来电询问进度", "质疑我们在敷衍，情绪激动", "说要找律师起诉", "提到要去12315投诉",
    "客户平和，按时告知即可", "没有投诉，只是问问到货时间", "觉得我们在忽悠他", "要求提供代步车", "说再拖就发微博曝光",
    "不是骗子吧？客户半开玩笑", "已多次催促，焦虑", "没关系，等着就行",
]


def seed_customers() -> list[dict]:
    """The four worked customers of the RITE manual, as raw facts (SPEC A1 table)."""
    d = DEMO_AS_OF
    return [
        dict(客户编号="C0001", 客户姓名="张先生", 手机号="13812340001", 车型="Model 3", 缺件名称="前保险杠总成",
             登记日期=(d - dt.timedelta(days=24)).isoformat(), 粉丝数="52000", **{"身份/职业": "汽车论坛版主"},
             用车场景="网约车司机，全职跑滴滴", 近7天联系次数="3", 沟通记录="觉得我们在忽悠他，要求给个准话", 社媒负面="否"),
        dict(客户编号="C0002", 客户姓名="王女士", 手机号="13912340002", 车型="Model Y", 缺件名称="空调压缩机",
             登记日期=(d - dt.timedelta(days=16)).strftime("%Y/%m/%d"), 粉丝数="", **{"身份/职业": "教师"},
             用车场景="唯一用车，每天接送孩子", 近7天联系次数="3", 沟通记录="每隔两三天问一次进度", 社媒负面="否"),
        dict(客户编号="C0003", 客户姓名="李先生", 手机号="13712340003", 车型="Model S Plaid", 缺件名称="大灯总成",
             登记日期=f"{(d - dt.timedelta(days=29)).year}年{(d - dt.timedelta(days=29)).month}月{(d - dt.timedelta(days=29)).day}日",
             粉丝数="", **{"身份/职业": "企业主"}, 用车场景="周末休闲自驾", 近7天联系次数="8",
             沟通记录="每天来电询问进度", 社媒负面="否", 舆情风险="3"),
        dict(客户编号="C0004", 客户姓名="赵先生", 手机号="13612340004", 车型="Model 3", 缺件名称="后视镜总成",
             登记日期=(d - dt.timedelta(days=10)).isoformat(), 粉丝数="", **{"身份/职业": ""},
             用车场景="周末偶尔开", 近7天联系次数="0", 沟通记录="", 社媒负面="否"),
    ]


def demo_frame(n_extra: int = 36, seed: int = 20261124) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = seed_customers()
    for i in range(n_extra):
        wait = rng.choice([2, 4, 5, 6, 8, 9, 11, 12, 13, 15, 17, 19, 20, 22, 23, 26, 30, 33])
        start = DEMO_AS_OF - dt.timedelta(days=wait)
        fmt = rng.choice(["iso", "slash", "cn"])
        start_txt = (start.isoformat() if fmt == "iso" else start.strftime("%Y/%m/%d") if fmt == "slash"
                     else f"{start.year}年{start.month}月{start.day}日")
        followers = rng.choice(["", "", "", "", "800", "3500", "1.2万", "15000", "230000"])
        rows.append({
            "客户编号": f"C{i + 5:04d}",
            "客户姓名": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "手机号": f"1{rng.choice([3, 5, 7, 8, 9])}{rng.randrange(10**8, 10**9)}",
            "车型": rng.choice(CARS),
            "缺件名称": rng.choice(PARTS),
            "登记日期": start_txt,
            "粉丝数": followers,
            "身份/职业": rng.choice(IDENTITIES),
            "用车场景": rng.choice(USAGES),
            "近7天联系次数": str(rng.choice([0, 0, 1, 2, 3, 4, 7, 9])),
            "沟通记录": rng.choice(NOTES),
            "社媒负面": "是" if rng.random() < 0.03 else "否",
        })
    frame = pd.DataFrame(rows)
    frame["车架号"] = [f"LRW3E7EA{rng.randrange(10**8, 10**9)}" for _ in range(len(frame))]
    frame["服务顾问"] = [rng.choice(ADVISORS) for _ in range(len(frame))]
    for h in HEADERS:
        if h not in frame:
            frame[h] = ""
    return frame[HEADERS].fillna("")


def write_demo(out_dir: Path = HERE) -> list[Path]:
    """shortage.xlsx (title row, a notes sheet, date cells), shortage_gbk.csv (GBK, as
    Chinese Excel saves CSV), shortage_utf8.csv (UTF-8 with BOM)."""
    import xlsxwriter

    frame = demo_frame()
    paths = []
    xlsx = out_dir / "shortage.xlsx"
    wb = xlsxwriter.Workbook(str(xlsx), {"strings_to_numbers": False, "strings_to_formulas": False})
    ws = wb.add_worksheet("缺件客户")
    bold = wb.add_format({"bold": True, "bg_color": "#DDEBF7"})
    datef = wb.add_format({"num_format": "yyyy/mm/dd"})
    ws.write(0, 0, f"配件短缺客户清单（导出时间 {DEMO_AS_OF.isoformat()} 08:05）")
    for j, h in enumerate(HEADERS):
        ws.write_string(2, j, h, bold)
    for i, row in enumerate(frame.itertuples(index=False), start=3):
        for j, (h, v) in enumerate(zip(HEADERS, row, strict=True)):
            if h == "登记日期" and i % 3 == 0 and "-" in v:
                ws.write_datetime(i, j, dt.datetime.fromisoformat(v), datef)  # a real Excel date cell
            elif h in ("近7天联系次数",) and v:
                ws.write_number(i, j, int(v))
            else:
                ws.write_string(i, j, v)
    ws.freeze_panes(3, 0)
    notes = wb.add_worksheet("说明")
    notes.write(0, 0, "本表由 CRM 导出，仅供内部使用。")
    wb.close()
    paths.append(xlsx)
    gbk = out_dir / "shortage_gbk.csv"
    frame.to_csv(gbk, index=False, encoding="gb18030")
    paths.append(gbk)
    bom = out_dir / "shortage_utf8.csv"
    frame.to_csv(bom, index=False, encoding="utf-8-sig")
    paths.append(bom)
    return paths


def big_frame(rows: int, seed: int = 7, as_of: dt.date = DEMO_AS_OF) -> pd.DataFrame:
    """A large export with raw facts, generated vectorised (for tests and the benchmark)."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("C", np.char.zfill(np.arange(1, rows + 1).astype(str), 8))
    waits = rng.integers(0, 45, rows)
    start = (np.datetime64(as_of.isoformat()) - waits.astype("timedelta64[D]")).astype(str)
    followers = rng.choice(np.array([0, 0, 0, 0, 500, 1500, 12000, 150000]), rows)
    return pd.DataFrame({
        "客户编号": ids,
        "客户姓名": np.char.add(rng.choice(np.array(SURNAMES), rows), rng.choice(np.array(GIVEN), rows)),
        "手机号": np.char.add("13", rng.integers(10**8, 10**9, rows).astype(str)),
        "车型": rng.choice(np.array(CARS), rows),
        "登记日期": start,
        "粉丝数": followers,
        "身份/职业": rng.choice(np.array(IDENTITIES), rows),
        "用车场景": rng.choice(np.array(USAGES), rows),
        "近7天联系次数": rng.choice(np.array([0, 0, 1, 2, 3, 4, 7, 9]), rows),
        "沟通记录": rng.choice(np.array(NOTES), rows),
        "社媒负面": rng.choice(np.array(["否"] * 99 + ["是"]), rows),
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, help="write a large export with this many customers")
    ap.add_argument("--out", type=Path, help="output file (.csv or .xlsx) for --rows")
    ap.add_argument("--encoding", default="utf-8")
    args = ap.parse_args()
    if args.rows:
        out = args.out or Path(f"shortage_{args.rows}.csv")
        frame = big_frame(args.rows)
        if out.suffix == ".xlsx":
            frame.to_excel(out, index=False, engine="xlsxwriter")
        else:
            frame.to_csv(out, index=False, encoding=args.encoding)
        print(out)
    else:
        for p in write_demo():
            print(p)


if __name__ == "__main__":
    main()
