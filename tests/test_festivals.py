"""Low-risk upkeep touches: lunar festivals, birthdays, mileage, quarterly and monthly."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from lunardate import LunarDate

from tierctl.churn import load_churn_model, score_churn
from tierctl.churn.festivals import Festival, birthday_in_year, festival_dates, touches
from tierctl.errors import InputError, ModelError, UsageError
from tierctl.models.loader import PACKAGED_DIR


@pytest.fixture(scope="module")
def model():
    return load_churn_model()


def customers(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values()))) if cols else 1
    df = pd.DataFrame(cols)
    if "customer_id" not in df.columns:
        df["customer_id"] = [f"C{i}" for i in range(n)]
    return df


def of_kind(t: pd.DataFrame, kind: str) -> list[tuple[date, str]]:
    sub = t[t["kind"] == kind]
    return list(zip(sub["date"].dt.date, sub["customer_id"], strict=True))


# ------------------------------------------------------------------------------------
# Festivals on their real dates
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("year", "expected"), [
    (2026, {"spring": date(2026, 2, 17), "dragon_boat": date(2026, 6, 19),
            "mid_autumn": date(2026, 9, 25), "national_day": date(2026, 10, 1)}),
    (2027, {"spring": date(2027, 2, 6), "dragon_boat": date(2027, 6, 9),
            "mid_autumn": date(2027, 9, 15), "national_day": date(2027, 10, 1)}),
])
def test_festival_dates(model, year, expected):
    assert festival_dates(year, model) == expected
    # and they are lunardate's own conversions, not a table typed in by hand
    assert expected["spring"] == LunarDate(year, 1, 1).to_solar_date()
    assert expected["dragon_boat"] == LunarDate(year, 5, 5).to_solar_date()
    assert expected["mid_autumn"] == LunarDate(year, 8, 15).to_solar_date()


def test_a_year_of_festival_touches(model):
    t = touches(customers(customer_id=["001", "002"]), date(2026, 1, 1), 365, model)
    fest = t[t["kind"] == "festival"]
    # sent lead_days before each festival (3, 2, 2, 3 in the packaged model)
    assert sorted(set(fest["date"].dt.date)) == [date(2026, 2, 14), date(2026, 6, 17),
                                                 date(2026, 9, 23), date(2026, 9, 28)]
    assert len(fest) == 8 and set(fest["customer_id"]) == {"001", "002"}
    assert fest.iloc[0]["detail"].startswith("春节（2026-02-17）")


def test_festival_lead_days_send_early(model):
    early = dataclasses.replace(model.upkeep, festivals=(
        Festival("spring", "春节", "lunar", 1, 1, 3, "新春问候"),))
    t = touches(customers(customer_id=["a"]), date(2027, 2, 1), 10, early)
    assert of_kind(t, "festival") == [(date(2027, 2, 3), "a")]
    assert "2027-02-06" in t.iloc[0]["detail"]


def test_lunar_day_30_in_a_short_month_falls_on_its_last_day():
    eve = Festival("eve", "除夕", "lunar", 12, 30, 0, "除夕问候")
    assert eve.date_in(2026) == date(2027, 2, 5)  # 腊月 has 29 days in that lunar year


def test_years_outside_lunardate_are_a_usage_error():
    with pytest.raises(UsageError):
        Festival("spring", "春节", "lunar", 1, 1, 0, "x").date_in(2150)


# ------------------------------------------------------------------------------------
# Birthdays
# ------------------------------------------------------------------------------------
def test_birthdays_across_month_and_year_ends(model):
    df = customers(customer_id=["jan31", "feb1", "dec31", "jan2", "jun1"],
                   birthday=pd.to_datetime(["1980-01-31", "1975-02-01", "1990-12-31", "1988-01-02", "1970-06-01"]))
    t = touches(df, date(2026, 1, 30), 5, model)
    assert of_kind(t, "birthday") == [(date(2026, 1, 31), "jan31"), (date(2026, 2, 1), "feb1")]
    t = touches(df, date(2026, 12, 30), 5, model)
    assert of_kind(t, "birthday") == [(date(2026, 12, 31), "dec31"), (date(2027, 1, 2), "jan2")]


def test_feb29_birthday(model):
    df = customers(customer_id=["leap"], birthday=pd.to_datetime(["1996-02-29"]))
    # non-leap year: greeted on 28 Feb, inside the birthday month (the default)
    assert of_kind(touches(df, date(2027, 2, 1), 59, model), "birthday") == [(date(2027, 2, 28), "leap")]
    # leap year: the real day
    assert of_kind(touches(df, date(2028, 2, 1), 60, model), "birthday") == [(date(2028, 2, 29), "leap")]
    mar1 = dataclasses.replace(model.upkeep, feb29_birthday="mar1")
    assert of_kind(touches(df, date(2027, 2, 1), 59, mar1), "birthday") == [(date(2027, 3, 1), "leap")]
    assert birthday_in_year(2, 29, 2027) == date(2027, 2, 28)
    assert birthday_in_year(2, 29, 2027, "mar1") == date(2027, 3, 1)


def test_missing_birthday_is_skipped_and_bad_one_is_an_error(model):
    df = customers(customer_id=["a", "b"], birthday=[None, None])
    assert of_kind(touches(df, date(2026, 1, 1), 365, model), "birthday") == []
    bad = customers(customer_id=["a"], birthday=["生日不详"], _row=[8])
    with pytest.raises(InputError) as ei:
        touches(bad, date(2026, 1, 1), 30, model)
    assert ei.value.problems[0].row == 8


# ------------------------------------------------------------------------------------
# Mileage, quarterly gift, monthly invitation
# ------------------------------------------------------------------------------------
def test_mileage_reminder_at_threshold(model):
    df = customers(customer_id=["over", "at", "under", "unknown"],
                   mileage_since_service=[6210.5, 5000.0, 4999.0, None])
    t = touches(df, date(2026, 3, 3), 1, model)
    assert of_kind(t, "mileage") == [(date(2026, 3, 3), "at"), (date(2026, 3, 3), "over")]
    assert "6210" in t[t["customer_id"] == "over"].iloc[0]["detail"]


def test_quarterly_gift_and_monthly_invitation(model):
    t = touches(customers(customer_id=["a"]), date(2026, 3, 10), 30, model)
    assert of_kind(t, "quarterly_gift") == [(date(2026, 4, 1), "a")]
    assert of_kind(t, "monthly_invitation") == [(date(2026, 3, 15), "a")]
    end_of_month = dataclasses.replace(model.upkeep, monthly_day=31)
    t = touches(customers(customer_id=["a"]), date(2026, 2, 1), 28, end_of_month)
    assert of_kind(t, "monthly_invitation") == [(date(2026, 2, 28), "a")]


def test_window_is_inclusive_and_sorted(model):
    on_the_day = dataclasses.replace(model.upkeep, festivals=tuple(
        dataclasses.replace(f, lead_days=0) for f in model.upkeep.festivals))
    t = touches(customers(customer_id=["b", "a"]), date(2026, 10, 1), 1, on_the_day)
    assert list(t["customer_id"]) == ["a", "a", "b", "b"]
    assert list(t["kind"]) == ["festival", "quarterly_gift"] * 2
    assert touches(customers(customer_id=["a"]), date(2026, 10, 2), 0, model).empty
    with pytest.raises(UsageError):
        touches(customers(customer_id=["a"]), date(2026, 10, 2), -1, model)


def test_only_low_risk_customers_from_a_churn_result(model):
    df = pd.DataFrame({"customer_id": pd.array(["low", "high"], dtype="string"),
                       "risk_score": [10.0, 70.0],
                       "birthday": pd.to_datetime(["1980-05-20", "1980-05-20"])})
    res = score_churn(df, model, date(2026, 5, 1), datetime(2026, 5, 1, 9, tzinfo=timezone(timedelta(hours=8))))
    t = touches(res.customers, date(2026, 5, 1), 31, model)
    assert set(t["customer_id"]) == {"low"}
    assert of_kind(t, "birthday") == [(date(2026, 5, 20), "low")]
    everyone = touches(res.customers, date(2026, 5, 1), 31, model, only_low=False)
    assert set(everyone["customer_id"]) == {"low", "high"}


def test_bad_upkeep_section_is_a_model_error(tmp_path: Path):
    text = (PACKAGED_DIR / "churn.toml").read_text(encoding="utf-8")
    p = tmp_path / "m.toml"
    p.write_text(text.replace('detail = "已行驶约 {km} 公里，提醒预约保养"', 'detail = "{miles} 英里"'), encoding="utf-8")
    with pytest.raises(ModelError) as ei:
        load_churn_model(p)
    assert ei.value.key == "upkeep.mileage.detail"
    p.write_text(text.replace("month = 10\nday = 1", "month = 2\nday = 31"), encoding="utf-8")
    with pytest.raises(ModelError) as ei:
        load_churn_model(p)
    assert ei.value.key == "upkeep.festivals[3].day"
