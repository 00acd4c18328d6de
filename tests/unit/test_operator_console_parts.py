"""The pure parts of the console's reads (issue 23): the ledger's CSV, hourly activity counts, page
tokens and sizes, what a search query looks like, and the first bad lines a migration run keeps."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from billing.domain.activity import ActivityCounts, HourCounts, HourlyRows, hour_of
from billing.domain.console import BadLine, LedgerLine
from billing.domain.errors import InvalidArgument
from billing.service.ledger_csv import HEADER, csv_lines, text_cell, trailer
from billing.service.legacy_rows import BadRow
from billing.service.migration_runs import RunSamples
from billing.service.operator_inputs import bounded, decode_token, encode_token
from billing.service.operator_ledger import ExportEnd, ledger_filter
from billing.service.operator_search import stripe_kind

UTC = timezone.utc


def _line(**values) -> LedgerLine:
    base = dict(event_seq=7, type="consumption", seconds=-30, reason="", occurred_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
                operation="build", bucket_seq=2, metadata={}, balance_after_seconds=-1, available_after_seconds=-2,
                expired_before_seconds=3)
    return LedgerLine(**(base | values))


def test_csv_has_a_header_then_rows_and_escapes_quotes_commas_and_newlines():
    text = csv_lines([_line(reason='said "hi", then\nleft', metadata={"payment_id": "pi_1", "note": "a,b"})],
                     header=True).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(HEADER)
    assert rows[1] == ["7", "2026-03-01T12:00:00Z", "consumption", "-30", "-1", "-2", "3", 'said "hi", then\nleft',
                       "build", "2", '{"note":"a,b","payment_id":"pi_1"}']
    assert text.endswith("\r\n")


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_cells_a_spreadsheet_would_run_get_a_quote(cell):
    assert text_cell(cell) == "'" + cell
    row = next(csv.reader(io.StringIO(csv_lines([_line(reason=cell, operation=cell)]).decode())))
    assert row[7] == "'" + cell and row[8] == "'" + cell
    assert row[3:7] == ["-30", "-1", "-2", "3"]  # numbers stay numbers


def test_plain_text_is_left_alone():
    assert text_cell("gift from support") == "gift from support" and text_cell("") == ""


def test_activity_is_counted_cumulatively_and_reported_per_hour():
    counts, rows = ActivityCounts(), HourlyRows()
    nine, ten = datetime(2026, 3, 1, 9, 59, 50, tzinfo=UTC), datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)
    counts.consumed_seconds += 30
    counts.consumes += 1
    assert rows.rows(nine, counts.totals()) == {hour_of(nine): HourCounts(consumed_seconds=30, consumes=1)}
    rows.written(nine, counts.totals())
    counts.consumes += 2
    # The same report again (its commit unconfirmed) sets the same row: nothing counted twice.
    assert rows.rows(nine, counts.totals()) == rows.rows(nine, counts.totals()) == {
        hour_of(nine): HourCounts(consumed_seconds=30, consumes=3)}
    # That report failed (maybe after committing); the next, in a new hour, sets the old hour back to
    # its last written report and gives the rest to the new hour: every count once, whatever happened.
    counts.refusals += 1
    assert rows.rows(ten, counts.totals()) == {hour_of(nine): HourCounts(consumed_seconds=30, consumes=1),
                                               hour_of(ten): HourCounts(consumes=2, refusals=1)}
    rows.written(ten, counts.totals())
    counts.refusals += 1
    assert rows.rows(ten, counts.totals()) == {hour_of(ten): HourCounts(consumes=2, refusals=2)}


def test_tokens_belong_to_their_listing():
    token = encode_token("ledger", "newest_first", "42")
    assert decode_token(token, "ledger", 2) == ["newest_first", "42"]
    assert decode_token("", "ledger", 2) is None
    for bad in ("%%%", encode_token("runs", "a", "b"), encode_token("ledger", "x"), "A" * 201):
        with pytest.raises(InvalidArgument) as refused:
            decode_token(bad, "ledger", 2)
        assert refused.value.field == "page_token"


def test_sizes_are_bounded_naming_the_field():
    assert bounded(0, "page_size", 50, 200) == 50 and bounded(200, "page_size", 50, 200) == 200
    for value in (-1, 201):
        with pytest.raises(InvalidArgument) as refused:
            bounded(value, "page_size", 50, 200)
        assert refused.value.field == "page_size"


def test_ledger_filters():
    where = ledger_filter(["consumption", "adjustment", "consumption"], None, None, "oldest_first")
    assert where.types == ("adjustment", "consumption") and where.oldest_first
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(InvalidArgument) as refused:
        ledger_filter([], at, at, "")
    assert refused.value.field == "to_at"
    with pytest.raises(InvalidArgument) as refused:
        ledger_filter(["x" * 100_000], None, None, "")
    assert refused.value.field == "types" and len(refused.value.message) < 400


@pytest.mark.parametrize("query, kind", [
    ("cus_N1", "stripe_customer"), ("pi_3", "stripe_payment"), ("ch_3", "stripe_payment"), ("cs_test_1", "stripe_payment"),
    ("in_9", "stripe_payment"), ("sub_1", "stripe_subscription"), ("alice", None), ("customer-7", None),
])
def test_what_a_query_looks_like(query, kind):
    assert stripe_kind(query) == kind


class _Quiet:
    def __init__(self):
        self.seen = []

    def bad_row(self, row):
        self.seen.append(row.line)

    def conflict(self, line, user_id, why):
        self.seen.append(line)

    def progress(self, phase, done, total, elapsed_s):
        pass


def test_a_run_keeps_its_first_bad_lines_and_passes_everything_on():
    inner = _Quiet()
    samples = RunSamples(inner, keep=2)
    samples.bad_row(BadRow(3, "u1", "plan_key 'gold' is not in the catalog"))
    samples.conflict(5, "u2", "the account exists")
    samples.bad_row(BadRow(8, None, "not JSON"))
    assert samples.samples == [BadLine(3, "plan_key 'gold' is not in the catalog"),
                               BadLine(5, "user_id u2: conflict: the account exists")]
    assert inner.seen == [3, 5, 8]


def test_the_export_ends_with_a_line_saying_how_it_ended():
    complete = trailer(ExportEnd(rows=12, truncated=False)).decode()
    cut = trailer(ExportEnd(rows=1_000_000, truncated=True)).decode()
    assert complete == "# end of export: 12 rows\r\n"
    assert cut.startswith("# export truncated: the first 1000000 rows") and cut.endswith("\r\n")
    assert all(not row[0].startswith("#") for row in csv.reader(io.StringIO(csv_lines([_line()], header=True).decode())))
