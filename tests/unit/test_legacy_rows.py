"""Reading legacy exports (JSON lines, CSV) and what each row opens; no database."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.adapters.catalog_file import load_catalog
from billing.domain.buckets import Source
from billing.domain.limits import GRANT_SECONDS_MAX
from billing.domain.wallet import EventType
from billing.service.legacy_rows import (
    CSV, JSONL, BadRow, HeaderError, LegacyRow, _Validator, detect_format, opening, opening_buckets, read_rows,
)
from billing.settings import DEFAULT_CATALOG_PATH

CATALOG, _ = load_catalog(DEFAULT_CATALOG_PATH)
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)
HEADER = b"user_id,paid_seconds_remaining,welcome_bonus_seconds,daily_gift_used_today,plan_key\n"


def jsonl(*records) -> list:
    lines = [(r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records]
    return list(read_rows(lines, JSONL, CATALOG))


def csv_rows(*lines: bytes, header: bytes = HEADER) -> list:
    return list(read_rows([header, *lines], CSV, CATALOG))


def legacy(user_id="alice", paid=0, welcome=0, used=0, plan_key=None, **extra) -> dict:
    record = {"user_id": user_id, "paid_seconds_remaining": paid, "welcome_bonus_seconds": welcome,
              "daily_gift_used_today": used}
    if plan_key is not None:
        record["plan_key"] = plan_key
    return record | extra


@pytest.mark.parametrize(("name", "head", "fmt"), [
    ("export.jsonl", b"user_id,x", JSONL),
    ("export.NDJSON", b"", JSONL),
    ("export.csv", b"{", CSV),
    ("export", b'\n  {"user_id": "a"}', JSONL),
    ("export.txt", b"\xef\xbb\xbf{", JSONL),
    ("export", b"user_id,paid_seconds_remaining", CSV),
])
def test_format_by_extension_else_content(name, head, fmt):
    assert detect_format(name, head) == fmt


def test_json_lines_are_read_with_their_line_numbers():
    rows = list(read_rows([
        b'\xef\xbb\xbf{"user_id": "alice", "paid_seconds_remaining": 3600, "welcome_bonus_seconds": 1800, '
        b'"daily_gift_used_today": 300}\n',
        b"\n",
        b"   \n",
        json.dumps(legacy("bob", plan_key="pro", note="extra fields are ignored")).encode() + b"\n",
        json.dumps(legacy(12345, used=900)).encode(),  # last line without a newline
    ], JSONL, CATALOG))
    assert rows == [
        LegacyRow(1, "alice", 3600, 1800, 300, "free"),
        LegacyRow(4, "bob", 0, 0, 0, "pro"),
        LegacyRow(5, "12345", 0, 0, 900, "free"),  # a numeric id of a JSON export
    ]


@pytest.mark.parametrize(("line", "reason"), [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object, found list"),
    (b'{"user_id": "a", "paid_seconds_remaining": 1', "not valid JSON"),
    (b'{"user_id": "\xff", "paid_seconds_remaining": 1}', "not valid UTF-8"),
    (json.dumps(legacy(None)).encode(), "user_id is missing"),
    (json.dumps(legacy("")).encode(), "user_id is missing"),
    (json.dumps(legacy(True)).encode(), "user_id must be a string"),
    (json.dumps(legacy("has space")).encode(), "user_id may hold letters, digits"),
    (json.dumps(legacy("x" * 129)).encode(), "longer than 128"),
    (json.dumps(legacy("a\n")).encode(), "user_id may hold letters, digits"),
    (json.dumps({"user_id": "a", "welcome_bonus_seconds": 0, "daily_gift_used_today": 0}).encode(),
     "paid_seconds_remaining is missing"),
    (json.dumps(legacy(paid=-5)).encode(), "paid_seconds_remaining must not be negative, found -5"),
    (json.dumps(legacy(welcome=1.5)).encode(), "welcome_bonus_seconds must be a whole number of seconds, found 1.5"),
    (json.dumps(legacy(welcome=60.0)).encode(), "welcome_bonus_seconds must be a whole number"),
    (json.dumps(legacy(paid="60")).encode(), "paid_seconds_remaining must be a whole number of seconds, found '60'"),
    (json.dumps(legacy(used=True)).encode(), "daily_gift_used_today must be a whole number"),
    (json.dumps(legacy(paid=GRANT_SECONDS_MAX + 1)).encode(), "paid_seconds_remaining is over the limit of 315,360,000"),
    (json.dumps(legacy(used=86_401)).encode(), "daily_gift_used_today is over the limit of 86,400"),
    (json.dumps(legacy(paid=10**40)).encode(), "paid_seconds_remaining is over the limit"),
    (json.dumps(legacy(plan_key="gold")).encode(), "plan_key 'gold' is not a catalog plan (free, starter, pro, business)"),
    (json.dumps(legacy(plan_key=3)).encode(), "plan_key 3 is not a catalog plan"),
])
def test_bad_json_lines_say_why(line, reason):
    (row,) = jsonl(legacy("first"), line)[1:]
    assert isinstance(row, BadRow) and row.line == 2
    assert reason in row.reason, row.reason


def test_a_bad_row_keeps_the_user_id_it_had_for_the_report():
    (row,) = jsonl(legacy("carol", paid=-1))
    assert row == BadRow(1, "carol", "paid_seconds_remaining must not be negative, found -1")


def test_no_plan_key_means_free_but_an_empty_one_in_json_is_a_bad_row():
    assert jsonl(legacy())[0].plan_key == "free"
    assert jsonl(legacy() | {"plan_key": None})[0].plan_key == "free"
    assert csv_rows(b"alice,0,0,0,\n")[0].plan_key == "free"  # an empty cell: CSV has no null
    (row,) = jsonl(legacy("dora", plan_key=""))
    assert row == BadRow(1, "dora", "plan_key is empty (leave it out, or null, for the free plan)")


def test_a_json_key_given_twice_is_a_bad_row_whichever_value_it_holds():
    lines = [b'{"user_id": "a", "paid_seconds_remaining": 0, "welcome_bonus_seconds": 0, '
             b'"daily_gift_used_today": 0, "plan_key": "pro", "plan_key": "free"}',
             b'{"user_id": "b", "paid_seconds_remaining": 9, "paid_seconds_remaining": 9, '
             b'"welcome_bonus_seconds": 0, "daily_gift_used_today": 0}',
             b'{"user_id": "c", "paid_seconds_remaining": 0, "welcome_bonus_seconds": 0, '
             b'"daily_gift_used_today": 0, "note": {"x": 1, "x": 2}}',
             json.dumps(legacy("d")).encode()]
    rows = list(read_rows(lines, JSONL, CATALOG))
    assert rows[:3] == [BadRow(1, None, "the key 'plan_key' appears more than once"),
                        BadRow(2, None, "the key 'paid_seconds_remaining' appears more than once"),
                        BadRow(3, None, "the key 'x' appears more than once")]
    assert rows[3] == LegacyRow(4, "d", 0, 0, 0, "free")


def test_a_csv_header_naming_a_column_twice_stops_before_any_row():
    with pytest.raises(HeaderError, match="names plan_key more than once"):
        csv_rows(b"alice,0,0,0,pro,free\n", header=HEADER.rstrip(b"\n") + b",plan_key\n")


def test_csv_rows_by_header_name():
    rows = csv_rows(
        b"alice,3600,1800,300,\n",
        b"\n",
        b' bob , 10 ,0, 0 ,pro\r\n',  # spaces around fields are tolerated
        b'"carol",0,0,0,"starter"\n',
        header=b"\xef\xbb\xbf" + HEADER,
    )
    assert rows == [
        LegacyRow(2, "alice", 3600, 1800, 300, "free"),
        LegacyRow(4, "bob", 10, 0, 0, "pro"),
        LegacyRow(5, "carol", 0, 0, 0, "starter"),
    ]


def test_csv_columns_in_any_order_and_plan_key_optional():
    rows = csv_rows(b"5,6,7,dave\n",
                    header=b"daily_gift_used_today,welcome_bonus_seconds,paid_seconds_remaining,user_id\n")
    assert rows == [LegacyRow(2, "dave", 7, 6, 5, "free")]


def test_csv_without_a_required_column_stops_before_any_row():
    with pytest.raises(HeaderError, match="lacks daily_gift_used_today"):
        csv_rows(b"alice,1,2\n", header=b"user_id,paid_seconds_remaining,welcome_bonus_seconds\n")


@pytest.mark.parametrize(("line", "reason"), [
    (b"alice,1,2\n", "expected 5 fields as in the header, found 3"),
    (b"alice,-1,0,0,\n", "paid_seconds_remaining must not be negative, found -1"),
    (b"alice,1.5,0,0,\n", "paid_seconds_remaining must be a whole number of seconds, found '1.5'"),
    (b"alice,,0,0,\n", "paid_seconds_remaining is missing"),
    (b"alice,0,x,0,\n", "welcome_bonus_seconds must be a whole number"),
    (b"alice,0,0,\xd9\xa3,\n", "daily_gift_used_today must be a whole number"),  # an Arabic-Indic digit
    (b"alice,0,0,99999999999999,\n", "daily_gift_used_today is over the limit"),
    (b",0,0,0,\n", "user_id is missing"),
    (b"al ice,0,0,0,\n", "user_id may hold"),
    (b"alice,0,0,0,gold\n", "plan_key 'gold' is not a catalog plan"),
    (b"al\xffice,0,0,0,\n", "not valid UTF-8"),
    (b'"ali"ce,0,0,0,\n', "not valid CSV"),
])
def test_bad_csv_rows_say_why(line, reason):
    (row,) = csv_rows(line)
    assert isinstance(row, BadRow) and row.line == 2
    assert reason in row.reason, row.reason


def test_csv_reading_goes_on_after_a_broken_record():
    rows = csv_rows(b'"ali"ce,0,0,0,\n', b"bob,1,0,0,\n")
    assert isinstance(rows[0], BadRow) and rows[1] == LegacyRow(3, "bob", 1, 0, 0, "free")


def test_a_quoted_field_over_two_lines_is_one_record_numbered_by_its_first_line():
    rows = csv_rows(b'"bob",1,0,0,"pro\n', b'"\n', b"carol,0,0,0,\n")
    assert rows == [LegacyRow(2, "bob", 1, 0, 0, "pro"), LegacyRow(4, "carol", 0, 0, 0, "free")]


_values = st.one_of(
    st.integers(min_value=-5, max_value=400_000_000), st.none(), st.booleans(), st.floats(allow_nan=False),
    st.text(max_size=5), st.sampled_from(["free", "pro", "gold", ""]),
)
_ids = st.one_of(st.text(alphabet="ab1_.:@|- \n", max_size=6), st.integers(-3, 3), st.none(), st.just("x" * 129))


@settings(max_examples=300, deadline=None)
@given(user_id=_ids, paid=_values, welcome=_values, used=_values, plan_key=_values)
def test_the_json_fast_path_agrees_with_the_slow_path(user_id, paid, welcome, used, plan_key):
    record = {"user_id": user_id, "paid_seconds_remaining": paid, "welcome_bonus_seconds": welcome,
              "daily_gift_used_today": used, "plan_key": plan_key}
    (row,) = jsonl(record)
    assert row == _Validator(CATALOG).row(1, *json.loads(json.dumps(list(record.values()))))


@settings(max_examples=300, deadline=None)
@given(fields=st.lists(st.text(alphabet="0123456789-+. ab_free", max_size=12), min_size=5, max_size=5))
def test_the_csv_fast_path_agrees_with_the_slow_path(fields):
    line = ",".join(f'"{f}"' for f in fields).encode() + b"\n"
    (row,) = csv_rows(line)
    assert row == _Validator(CATALOG).row(2, *fields, text=True)


# --- what a row opens (the contract's migrateLegacyBalance) ----------------------------------------


def test_a_free_row_opens_welcome_paid_and_what_is_left_of_today_bonus():
    row = LegacyRow(7, "alice", paid_seconds=3600, welcome_seconds=1800, daily_used_seconds=300, plan_key="free")
    buckets = opening_buckets(row, CATALOG.plan("free"), NOW)
    assert [(b.bucket_seq, b.source, b.seconds, b.expires_at, b.event_type) for b in buckets] == [
        (1, Source.WELCOME, 1800, None, EventType.ADJUSTMENT),
        (2, Source.SUBSCRIPTION, 3600, None, EventType.ADJUSTMENT),
        (3, Source.DAILY, 600, datetime(2026, 3, 15, tzinfo=timezone.utc), EventType.DAILY_BONUS),
    ]
    assert opening(row, CATALOG.plan("free")).bonus_used_seconds == 300
    assert opening(row, CATALOG.plan("free")).subscription_status == "inactive"


def test_empty_parts_open_no_bucket_and_numbers_stay_dense():
    row = LegacyRow(1, "bob", paid_seconds=50, welcome_seconds=0, daily_used_seconds=2000, plan_key="free")
    buckets = opening_buckets(row, CATALOG.plan("free"), NOW)
    assert [(b.bucket_seq, b.source) for b in buckets] == [(1, Source.SUBSCRIPTION)]
    assert opening(row, CATALOG.plan("free")).bonus_used_seconds == 900  # capped at the day's bonus


def test_paid_plans_keep_their_plan_and_their_own_daily_bonus():
    pro = LegacyRow(1, "carol", 0, 0, 100, "pro")
    assert opening(pro, CATALOG.plan("pro")).subscription_status == "active"
    assert [b.seconds for b in opening_buckets(pro, CATALOG.plan("pro"), NOW)] == [500]
    business = LegacyRow(1, "dave", 0, 0, 0, "business")  # no daily bonus on business
    assert opening_buckets(business, CATALOG.plan("business"), NOW) == []
    assert opening(business, CATALOG.plan("business")).bonus_used_seconds == 0


def test_record_is_one_copy_text_line():
    assert LegacyRow(3, "a.b@c|d", 1, 2, 3, "pro").record() == "3\ta.b@c|d\tpro\t1\t2\t3\n"
