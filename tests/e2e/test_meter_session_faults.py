"""Issue 21's faults proof: 200 metered sessions open on two replicas, `kill -9` of one replica and a
PostgreSQL restart mid-load; after the TTLs every session's hold is settled, no second is charged
twice, none is lost beyond the documented bound (docs/decisions.md, "Metered sessions"), and the
ledger's invariants hold.

The stack is test_outages.py's: a PostgreSQL of this test's own (it is restarted) and two plain
servers on it. Each session reports its cumulative elapsed seconds, one more every 0.1-0.2 s (the
server does not hold elapsed seconds against the wall clock, so a minute of work takes seconds),
waiting for each answer before the next report, and sends `done` when the load ends. A session
whose stream breaks either resumes with the same open message on whichever replica answers (two in
three) or stops there, as a crashed client would (one in three): its hold is left to expire. The
TTLs are then run out by `billing tick` with its clock moved past the documented bound (the servers
keep the wall clock).

What each session can be charged, from what its client knows: at most the last elapsed it sent, at
least the last `committed_seconds` it was answered; exactly its `done` elapsed when it was answered
`settled`; and for one that stopped, at least its last elapsed sent less PERSIST_EVERY_SECONDS (the
server persists every 10 s of work; a report sent but not answered is one second more, which the
bound's `>=` at 10 covers: the unanswered report either reached the server or was the step the
persist was due at).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import grpc
import psycopg
import pytest

from billing.adapters.db.invariants import find_violations_in_database
from billing.domain.auth import Scope
from billing.service.metered_sessions import PERSIST_EVERY_SECONDS, RESUME_GRACE_SECONDS
from billing.settings import libpq_url
from billing.v1 import accounts_pb2, billing_service_pb2_grpc, metered_sessions_pb2 as pb
from tests.e2e.helpers import assert_few_outage_lines_and_no_traceback
from testkit.postgres import postgres_ctl
from testkit.processes import VENV_BIN, health_serving, start_billing_server, stop_process
from testkit.signing import create_key, signed_channel
from testkit.waiting import wait_until

SESSIONS = 200
ACCOUNTS = 20  # ten sessions an account: concurrent writers on one wallet, across replicas
GRANT_SECONDS = 100_000  # no session runs out (an exhausted session is issue 21's other test)
BLOCK_SECONDS = 60
REPORT_EVERY_SECONDS = (0.1, 0.2)
LOAD_SECONDS = 12.0
KILL_REPLICA_AT = 3.0
RESTART_DATABASE_AT = 6.5
DATABASE_DOWN_SECONDS = 1.5
STOPS_WHEN_BROKEN = 3  # session n stops at its first broken stream when n % 3 == 0; the others resume
RESUME_WITHIN_SECONDS = 30.0  # a broken session that resumes finds a replica that answers within this
RETRY_PAUSE_SECONDS = 0.1
CALL_TIMEOUT_SECONDS = 30.0
# A hold's expiry is at most "held time left + grace" after its last write, and a session holds less
# than a block and a half ahead (the next block is held when less than half a block is left).
TTL_BOUND_SECONDS = BLOCK_SECONDS * 3 // 2 + RESUME_GRACE_SECONDS
SETTLED_WITHIN_SECONDS = 30.0


@dataclass
class SessionLog:
    session_id: str
    user: str
    resumes: bool  # when its stream breaks: resumes (True) or stops there, as a crashed client
    sent: int = 0  # the last elapsed sent (report or done), answered or not
    acknowledged: int = 0  # the highest committed_seconds answered
    opened: bool = False
    opens: int = 0  # streams it opened (or resumed) on
    done_sent: bool = False
    done_at: int | None = None  # `done` answered settled, at this elapsed
    stopped: bool = False
    breaks: Counter = field(default_factory=Counter)  # the status codes its streams broke with
    resumed: int = 0


def _opening(log: SessionLog) -> pb.MeterSessionRequest:
    return pb.MeterSessionRequest(open=pb.MeterSessionOpen(
        user_id=log.user, session_id=log.session_id, operation="build", block_seconds=BLOCK_SECONDS))


async def _exchange(call, request: pb.MeterSessionRequest, log: SessionLog) -> pb.MeterSessionResponse:
    try:
        await call.write(request)
    except asyncio.InvalidStateError:
        pass  # the call has ended (the server went away): the read raises its status
    answer = await call.read()
    if answer is grpc.aio.EOF:  # the server ended the stream without a status: never expected
        raise AssertionError(f"{log.session_id}: the stream ended without an answer or a status")
    assert not answer.HasField("exhausted"), (log.session_id, answer)
    assert answer.committed_seconds >= log.acknowledged, f"{log.session_id}: acknowledged seconds were lost"
    log.acknowledged = answer.committed_seconds
    return answer


async def _stream(stub, log: SessionLog, metadata, rng: random.Random, until: float) -> None:
    """One stream: open (or resume), report until the load ends, then done. Raises AioRpcError when it breaks."""
    loop = asyncio.get_running_loop()
    call = stub.MeterSession(metadata=metadata, timeout=CALL_TIMEOUT_SECONDS + LOAD_SECONDS)
    try:
        opened = await _exchange(call, _opening(log), log)
        if opened.settled:
            # Its `done` settled but the answer was lost: opening again answers what was charged.
            assert log.done_sent and opened.committed_seconds == log.sent, (log.session_id, opened)
            log.done_at = log.sent
            return
        log.resumed += log.opened
        log.opened = True
        log.opens += 1
        while loop.time() < until:
            await asyncio.sleep(rng.uniform(*REPORT_EVERY_SECONDS))
            log.sent += 1
            await _exchange(call, pb.MeterSessionRequest(report=pb.MeterSessionReport(elapsed_seconds=log.sent)), log)
        log.done_sent = True
        answer = await _exchange(call, pb.MeterSessionRequest(done=pb.MeterSessionDone(elapsed_seconds=log.sent)), log)
        assert answer.settled and answer.committed_seconds == log.sent, (log.session_id, answer)
        log.done_at = log.sent
        await call.done_writing()
    finally:
        call.cancel()  # a no-op on a finished call


def _a_fault(broken: grpc.aio.AioRpcError) -> bool:
    """What the faults may end a stream with: UNAVAILABLE (a server gone, the database down), a
    deadline, or the client's own INTERNAL when it sends on a connection reset by the killed server
    (the server's INTERNAL says "internal error", api/errors.py, and is never expected)."""
    if broken.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return True
    return broken.code() == grpc.StatusCode.INTERNAL and broken.details() == "Internal error from Core"


async def _session(n: int, stubs, log: SessionLog, metadata, until: float) -> None:
    rng = random.Random(n)
    loop = asyncio.get_running_loop()
    replica = n % 2
    failing_since: float | None = None  # the first of the breaks since a stream last opened
    while True:
        opens = log.opens
        try:
            await _stream(stubs[replica], log, metadata, rng, until)
            return
        except grpc.aio.AioRpcError as broken:
            assert _a_fault(broken), (log.session_id, broken.code(), broken.details())
            log.breaks[broken.code().name] += 1
        if log.opened and not log.resumes:
            log.stopped = True
            return
        # Resumed (or opened again) on the other replica, then back, until one answers.
        if failing_since is None or log.opens != opens:
            failing_since = loop.time()
        assert loop.time() - failing_since < RESUME_WITHIN_SECONDS, f"{log.session_id} could not resume"
        replica = 1 - replica
        await asyncio.sleep(RETRY_PAUSE_SECONDS)


async def _load(targets: list[str], logs: list[SessionLog], metadata, faults) -> None:
    channels = [grpc.aio.insecure_channel(target) for target in targets]
    try:
        stubs = [billing_service_pb2_grpc.BillingServiceStub(channel) for channel in channels]
        started = asyncio.get_running_loop().time()
        sessions = [asyncio.ensure_future(_session(n, stubs, log, metadata, started + LOAD_SECONDS))
                    for n, log in enumerate(logs)]
        await faults(started)
        await asyncio.wait_for(asyncio.gather(*sessions), LOAD_SECONDS + RESUME_WITHIN_SECONDS + CALL_TIMEOUT_SECONDS)
    finally:
        for channel in channels:
            await channel.close()


def _holds(database_url: str, users: list[str]) -> dict[str, tuple[str, int, datetime]]:
    """hold_id -> (state, committed_seconds, expires_at)."""
    with psycopg.connect(libpq_url(database_url)) as connection:
        rows = connection.execute(
            "SELECT hold_id, state, committed_seconds, expires_at FROM holds WHERE account_id = ANY(%s)",
            (users,)).fetchall()
    return {hold_id: (state, committed, expires_at) for hold_id, state, committed, expires_at in rows}


def _tick(database_url: str, ahead_seconds: int) -> None:
    """`billing tick` with the service's clock moved ahead: the idle accounts' holds past their expiry settle."""
    env = os.environ | {"DATABASE_URL": database_url, "BILLING_CLOCK_OFFSET_SECONDS": str(ahead_seconds),
                        "BILLING_CLOCK_OFFSET_FILE": ""}
    done = subprocess.run([str(VENV_BIN / "billing"), "tick"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_metered_sessions_through_kill_9_and_a_database_restart_charge_each_second_once(own_postgres, tmp_path):
    data_dir, database_url = own_postgres
    service_key = create_key(database_url, Scope.SERVICE)  # before the servers start: they load it then
    # Their warnings are kept: the outage's lines are counted (api/logs.py OutageLogThrottle).
    log_settings = {"BILLING_LOG_LEVEL": "WARNING", "BILLING_LOG_FORMAT": "json"}
    replica_a = start_billing_server(database_url, tmp_path / "replica-a", migrate=False, extra_env=log_settings)
    replica_b = start_billing_server(database_url, tmp_path / "replica-b", migrate=False, extra_env=log_settings)
    try:
        users = [f"meter-{os.urandom(4).hex()}-{n}" for n in range(ACCOUNTS)]
        with signed_channel(replica_b.grpc_target) as channel:
            stub = billing_service_pb2_grpc.BillingServiceStub(channel)
            for user in users:
                stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=10)
                stub.CreateGrant(accounts_pb2.CreateGrantRequest(
                    user_id=user, source="gift", seconds=GRANT_SECONDS, reason="meter faults",
                    idempotency_key=f"grant-{user}"), timeout=10)
        logs = [SessionLog(f"faults-{n}-{os.urandom(3).hex()}", users[n % ACCOUNTS], n % STOPS_WHEN_BROKEN != 0)
                for n in range(SESSIONS)]

        async def faults(started: float) -> None:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, started + KILL_REPLICA_AT - loop.time()))
            replica_a.process.send_signal(signal.SIGKILL)
            await asyncio.sleep(max(0.0, started + RESTART_DATABASE_AT - loop.time()))
            await asyncio.to_thread(postgres_ctl, "stop", data_dir)
            await asyncio.sleep(DATABASE_DOWN_SECONDS)
            await asyncio.to_thread(postgres_ctl, "start", data_dir)

        began = time.monotonic()
        asyncio.run(_load([replica_a.grpc_target, replica_b.grpc_target], logs, service_key.bearer(), faults))
        wall = time.monotonic() - began
        assert replica_a.process.wait(timeout=10) == -signal.SIGKILL
        wait_until(lambda: health_serving(replica_b.grpc_target), "replica B SERVING after the faults")

        done = [log for log in logs if log.done_at is not None]
        stopped = [log for log in logs if log.stopped]
        breaks = sum((log.breaks for log in logs), Counter())
        print(f"\n{SESSIONS} sessions in {wall:.1f}s: {len(done)} done ({sum(log.resumed > 0 for log in done)} "
              f"after a resume), {len(stopped)} stopped; broken streams {dict(breaks)}; "
              f"{sum(log.sent for log in logs)} s reported")
        assert len(done) + len(stopped) == SESSIONS, "every session either said done or stopped"
        assert all(log.opened for log in logs)
        assert stopped and any(log.resumed for log in done), "the faults broke streams, some resumed"
        assert min(log.sent for log in logs) > PERSIST_EVERY_SECONDS, "every session ran past its first persist"

        # The stopped sessions' holds wait for their expiry, within the documented bound of their last write.
        holds = _holds(database_url, users)
        assert set(holds) == {f"session:{log.session_id}" for log in logs}
        still_open = [hold for hold in holds.values() if hold[0] == "open"]
        assert still_open, "the stopped sessions' holds wait for their expiry"
        latest = datetime.now(timezone.utc) + timedelta(seconds=TTL_BOUND_SECONDS)
        assert all(expires_at <= latest for _, _, expires_at in still_open), still_open

        def all_settled() -> bool:
            _tick(database_url, TTL_BOUND_SECONDS + 5)
            return all(state != "open" for state, _, _ in _holds(database_url, users).values())

        wait_until(all_settled, "every session's hold settled after the TTLs", timeout=SETTLED_WITHIN_SECONDS,
                   interval=0.5)

        holds = _holds(database_url, users)
        with psycopg.connect(libpq_url(database_url)) as connection:
            charged = dict(connection.execute(
                "SELECT metadata->>'hold_id', -sum(seconds) FROM ledger_events "
                "WHERE type = 'consumption' AND account_id = ANY(%s) GROUP BY 1", (users,)).fetchall())
        assert set(charged) <= set(holds), "nothing consumed but through a session's hold"
        below = [log.sent - holds[f"session:{log.session_id}"][1] for log in stopped]
        print(f"stopped sessions charged up to {max(below)} s below their last report (bound {PERSIST_EVERY_SECONDS})")
        for log in logs:
            state, committed, _ = holds[f"session:{log.session_id}"]
            assert charged.get(f"session:{log.session_id}", 0) == committed, (log, committed)
            assert log.acknowledged <= committed <= log.sent, (log, committed)
            if log.done_at is not None:
                assert (state, committed) == ("settled", log.done_at), (log, state, committed)
            else:
                assert state == "expired" and committed >= log.sent - PERSIST_EVERY_SECONDS, (log, state, committed)

        # Each session the database stop broke could not persist: one outage line, not a traceback each.
        assert_few_outage_lines_and_no_traceback(replica_b.stderr_log)
        assert asyncio.run(find_violations_in_database(database_url)) == []
        verify = subprocess.run([str(VENV_BIN / "billing"), "verify"], env=os.environ | {"DATABASE_URL": database_url},
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        stop_process(replica_b.process)
        stop_process(replica_a.process)
