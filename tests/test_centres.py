"""A centre in every stored row (issue 18): centres sharing one database never see or
compare each other's rows; ``centre.id`` / ``--centre``; migration 10 gives the rows of
an older database to the centre that upgrades it; ``tierctl centres`` and ``db migrate``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tierctl.config import Config
from tierctl.errors import ConfigError, NotFoundError, StoreError
from tierctl.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import CliResult, run_cli  # noqa: E402
from store_engines import ENGINES, database_url  # noqa: E402

TZ = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
D1, D2 = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"


def rows(keys: list[str], label: str = "P1") -> pd.DataFrame:
    return pd.DataFrame({"customer_key": keys, "label": [label] * len(keys), "score": [1.0] * len(keys)})


@pytest.mark.parametrize("engine", ENGINES)
def test_centres_in_one_database_see_only_their_own_rows(engine, tmp_path):
    with database_url(engine, tmp_path) as url, Store.open(url, centre="A") as a:
        b = a.for_centre("B")
        sid = a.save_snapshot("shortage", D1, "m", "f", "h", rows(["a1", "a2"]))
        b.save_snapshot("shortage", D2, "m", "f", "h", rows(["b1"]))
        # B's run of D2 has no previous run: A's D1 is another centre's
        assert b.latest_snapshot("shortage", before=D2) is None
        assert a.latest_snapshot("shortage").as_of == D1
        with pytest.raises(NotFoundError):
            b.snapshot_rows(sid)
        assert [i.as_of for i in b.list_snapshots("shortage")] == [D2]
        new = pd.DataFrame({"customer_key": ["a1"], "customer_id": ["1"], "name": ["张"], "rule_id": ["r"],
                            "recipient": ["经理"], "reason": ["x"]})
        a.insert_alerts("shortage", new, D1, NOW)
        assert a.count_alerts("shortage") == 1 and b.count_alerts("shortage") == 0
        ids = [int(i) for i in a.active_alerts("shortage")["id"]]
        with pytest.raises(NotFoundError):
            b.ack_alerts(ids, NOW, "x", None)  # another centre's alert is not B's to acknowledge
        a.add_contacts("shortage", {"customer_key": ["a1"], "at": [NOW], "result": ["好"], "logged_at": [NOW]})
        b.add_contact("shortage", customer_key="a1", at=NOW, result="未接通", logged_at=NOW)  # same key, other centre
        assert list(a.last_contacts("shortage")["last_result"]) == ["好"]
        assert list(b.last_contacts("shortage")["last_result"]) == ["未接通"]
        assert [c["centre"] for c in a.centres()] == ["A", "B"]
        with a.reading() as conn:  # every row written carries its centre
            for t in ("snapshots", "alerts", "contacts", "contact_latest"):
                assert not conn.execute(sa.text(f"SELECT count(*) FROM {t} WHERE centre = ''")).scalar()


def test_a_version_9_database_belongs_to_the_centre_that_upgrades_it(tmp_path):
    path = tmp_path / "old.db"
    Store.open(path, target_version=9).close()
    eng = sa.create_engine(f"sqlite:///{path}")
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO snapshots (kind, as_of, created_at, row_count, storage) VALUES"
                             " ('shortage', '2026-11-23', '2026-11-23T01:00:00+00:00', 0, 'rows')"))
        conn.execute(sa.text("INSERT INTO alerts (kind, customer_key, rule_id, recipient, reason, fired_on, fired_at,"
                             " status) VALUES ('shortage', 'k', 'r', '经理', 'x', '2026-11-23',"
                             " '2026-11-23T01:00:00+00:00', 'open')"))
    eng.dispose()
    with Store.open(path, centre="SH01") as s:
        assert s.schema_version() >= 10
        assert s.latest_snapshot("shortage").as_of == D1
        assert s.count_alerts("shortage") == 1
        assert s.for_centre("SH02").latest_snapshot("shortage") is None
        s.save_snapshot("shortage", D1, "m", "f", "h", rows(["k"]))  # the unique key is per centre now
        s.for_centre("SH02").save_snapshot("shortage", D1, "m", "f", "h", rows(["k"]))
        assert [c["centre"] for c in s.centres()] == ["SH01", "SH02"]


def test_centre_ids_are_checked():
    with pytest.raises(StoreError, match="服务中心编号"):
        Store.open(":memory:", centre=" A")
    with pytest.raises(StoreError):
        Store.open(":memory:", centre="")


def test_a_bad_centre_id_in_the_config_names_the_key(tmp_path):
    cfg = tmp_path / "tierctl.toml"
    cfg.write_text('[centre]\nid = "  SH01"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        Config.load(cfg).centre_id()
    assert "centre.id" in str(err.value.key if hasattr(err.value, "key") else err.value)
    cfg.write_text('[centre]\nid = "SH01"\n', encoding="utf-8")
    assert Config.load(cfg).centre_id() == "SH01"


def _cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """The command line in this process (conftest.run_cli), with no config file, database
    or centre from the environment unless ``env`` names them."""
    return run_cli(*args, env={"TIERCTL_CONFIG": None, "TIERCTL_DB": None, "TIERCTL_CENTRE": None, **(env or {})},
                   cwd=ROOT)


def test_score_of_two_centres_in_one_file_and_tierctl_centres(tmp_path):
    db = str(tmp_path / "region.db")
    r1 = _cli("--centre", "SH01", "score", str(SAMPLE), "--db", db, "--as-of", "2026-11-23", "-f", "json")
    assert r1.returncode == 0, r1.stderr
    r2 = _cli("score", str(SAMPLE), "--db", db, "--as-of", "2026-11-24", "-f", "json",
              env={"TIERCTL_CENTRE": "SH02"})
    assert r2.returncode == 0, r2.stderr
    with Store.open(db, centre="SH02", readonly=True) as s:
        assert s.latest_snapshot("shortage", before=D2) is None  # SH01's day before is not SH02's
        assert s.for_centre("SH01").latest_snapshot("shortage").as_of == D1
    out = _cli("centres", "--db", db, "-f", "json")
    assert out.returncode == 0, out.stderr
    assert [(c["centre"], c["snapshots"], c["last"]) for c in json.loads(out.stdout)] == [
        ("SH01", 1, "2026-11-23"), ("SH02", 1, "2026-11-24")]


def test_db_migrate_upgrades_an_old_file_for_the_given_centre(tmp_path):
    db = tmp_path / "old.db"
    Store.open(db, target_version=9).close()
    r = _cli("--centre", "SH07", "db", "migrate", "--db", str(db), "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["before"], doc["applied"], doc["centre"]) == (9, [10], "SH07")
    again = json.loads(_cli("db", "migrate", "--db", str(db), "-f", "json").stdout)
    assert again["applied"] == [] and again["before"] == again["after"] == 10


def test_owners_robot_notices_and_escalations_are_per_centre(tmp_path):
    from tierctl.store import notify as sn
    from tierctl.store import owners

    with Store.open(tmp_path / "h.db", centre="A") as a:
        b = a.for_centre("B")
        owners.assign(a, "shortage", customer_key="k", customer_id="1", name="张", person="钱磊", previous=None,
                      by=None, now=NOW)
        assert list(owners.active_assignments(a, "shortage")["person"]) == ["钱磊"]
        assert not len(owners.active_assignments(b, "shortage")["person"])
        sn.claim(a, "robot", "wecom", ["item1"], 1, NOW)
        sn.claim(b, "robot", "wecom", ["item1"], 1, NOW)  # the same robot and item, another centre: its own notice
        sn.confirm(a, "robot", ["item1"], NOW)
        assert sn.sent_status(a, "robot", ["item1"]) == {"item1": "sent"}
        assert sn.sent_status(b, "robot", ["item1"]) == {"item1": "pending"}
        a.insert_alerts("shortage", pd.DataFrame({"customer_key": ["k"], "customer_id": ["1"], "name": ["张"],
                                                  "rule_id": ["r"], "recipient": ["经理"], "reason": ["x"]}), D1, NOW)
        assert len(sn.open_unescalated(a, "shortage")) == 1 and not len(sn.open_unescalated(b, "shortage"))
