"""The hold and metered-session scenarios' pure parts: request bytes, accounts, balance, targets."""

from __future__ import annotations

import pytest

from bench import holds, report
from billing.v1 import consumption_pb2, holds_pb2


def test_hold_requests_are_the_messages_the_server_parses():
    create = holds_pb2.CreateHoldRequest.FromString(holds.create_hold_request("42", "run-7"))
    commit = holds_pb2.CommitHoldRequest.FromString(holds.commit_hold_request("42", "run-7"))
    consume = consumption_pb2.ConsumeRequest.FromString(holds.consume_request("42", "run-8"))

    assert (create.user_id, create.hold_id, create.operation, create.seconds, create.ttl_seconds) == (
        "42", "run-7", "build", holds.HOLD_SECONDS, 0)
    assert (commit.user_id, commit.hold_id, commit.used_seconds, commit.final) == ("42", "run-7", holds.USED_SECONDS, True)
    assert (consume.user_id, consume.seconds, consume.idempotency_key) == ("42", holds.USED_SECONDS, "run-8")


def test_sessions_wrap_around_the_accounts_within_the_open_holds_limit():
    assert holds.session_accounts(5, 2) == ["1", "2", "1", "2", "1"]
    assert holds.session_accounts(2000, 1_000_000)[-1] == "2000"
    with pytest.raises(ValueError):
        holds.session_accounts(201, 2)


def test_the_balance_needed_grows_with_the_sessions_an_account_carries():
    one = holds.seconds_needed(2000, 1_000_000, 60)
    assert one >= 60 + 2 * holds.BLOCK_SECONDS
    assert holds.seconds_needed(2000, 1000, 60) == 2 * one


def sessions(**figures) -> dict:
    return {"sessions": 2000, "server_cores": 0.4, "db_write_transactions_per_s": 250.0, "db_commits_per_s": 320.0,
            "errors": 0} | figures


def test_the_sessions_targets_are_judged_on_write_transactions_and_a_clean_run():
    met = report.summarize(None, [], [], sessions())
    assert all(target["met"] for target in met.values()), met

    busy = report.summarize(None, [], [], sessions(server_cores=0.6, db_write_transactions_per_s=310.0))
    assert not busy["2000 metered sessions: server CPU < 0.5 core"]["met"]
    assert not busy["2000 metered sessions: database writes < 300/s (write transactions)"]["met"]

    broken = report.summarize(None, [], [], sessions(errors=3))
    assert not broken["2000 metered sessions: server CPU < 0.5 core"]["met"]


def test_hold_cycles_are_reported_beside_consume():
    consume = {"label": report.HOLD_CONSUME, "rps": 1000.0, "concurrency": 16, "server_cpu_per_request_us": 500.0}
    cycle = {"label": report.HOLD_CYCLE, "rps": 400.0, "concurrency": 16, "server_cpu_per_request_us": 1500.0}

    assert report.holds_ratio(consume, cycle) == 0.4
    document = {"results": [consume, cycle], "summary": {}}
    assert report.has_rows(document) and "0.4 x" in report.table(document)
    assert not report.has_rows({"results": []})
