"""The per-key rate limit: token buckets (pure, time passed in) and the check the auth layer runs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.api.key_rate_limit import KeyRateLimiter
from billing.domain.auth import ApiKey, Scope
from billing.domain.errors import RateLimited
from billing.domain.rate_limit import RateLimit, TokenBuckets, replica_share

LIMIT = RateLimit(per_second=10, burst=20)
NEVER = datetime(2100, 1, 1, tzinfo=timezone.utc)


def test_a_burst_goes_then_calls_wait_for_the_refill():
    buckets = TokenBuckets()
    assert [buckets.take("k", LIMIT, 0.0) for _ in range(20)] == [0.0] * 20
    assert buckets.take("k", LIMIT, 0.0) == pytest.approx(0.1)  # one token every 1/10 s
    assert buckets.take("k", LIMIT, 0.1) == 0.0
    assert buckets.take("other", LIMIT, 0.1) == 0.0  # each key has its own bucket


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300))
def test_no_window_lets_through_more_than_the_burst_plus_the_rate(gaps):
    """Over any interval [a, b] of the calls, the accepted ones number at most burst + rate x (b - a)."""
    buckets, now, accepted = TokenBuckets(), 0.0, []
    for gap in gaps:
        now += gap
        if buckets.take("k", LIMIT, now) == 0.0:
            accepted.append(now)
    for i, start in enumerate(accepted):
        for j in range(i, len(accepted)):
            assert j - i + 1 <= LIMIT.burst + LIMIT.per_second * (accepted[j] - start) + 1e-9


def test_memory_is_bounded_and_forgets_full_buckets_first():
    buckets = TokenBuckets(max_keys=3)
    for key in ("a", "b", "c"):
        buckets.take(key, LIMIT, 0.0)
    assert buckets.take("d", LIMIT, 10.0) == 0.0  # a, b, c refilled by then: forgotten
    assert len(buckets) == 1
    for key in ("e", "f"):
        buckets.take(key, LIMIT, 10.0)
    assert buckets.take("g", LIMIT, 10.0) == 0.0  # none full: all forgotten rather than grow
    assert len(buckets) == 1


def key(scope: Scope, key_id: str = "k1") -> ApiKey:
    return ApiKey(key_id, scope, "u1" if scope is Scope.USER else None, NEVER)


def test_a_key_over_its_scopes_limit_is_told_when_to_retry():
    now = [0.0]
    limiter = KeyRateLimiter({Scope.USER: RateLimit(1, 2), Scope.SERVICE: None}, clock=lambda: now[0])
    limiter.check(key(Scope.USER))
    limiter.check(key(Scope.USER))
    with pytest.raises(RateLimited) as refused:
        limiter.check(key(Scope.USER))
    assert refused.value.retry_after_seconds == 1 and refused.value.reason == "RATE_LIMITED"
    for _ in range(1000):
        limiter.check(key(Scope.SERVICE, "s1"))  # no limit for this scope
    now[0] = 1.0
    limiter.check(key(Scope.USER))


def test_the_settings_give_each_scope_its_limit_and_zero_turns_one_off(monkeypatch):
    from billing.entrypoints.server import key_rate_limiter
    from billing.settings import Settings

    monkeypatch.setenv("BILLING_KEY_RATE_LIMIT_USER", "3")
    monkeypatch.setenv("BILLING_KEY_RATE_LIMIT_ADMIN", "0")
    settings_ = Settings.from_environment("postgresql://u@h/db")
    assert settings_.limits.key_rate_limits == {"user": 3, "service": 5000, "admin": 0}
    limiter = key_rate_limiter(settings_)
    for _ in range(6):
        limiter.check(key(Scope.USER))
    with pytest.raises(RateLimited):
        limiter.check(key(Scope.USER))
    for _ in range(10_000):
        limiter.check(key(Scope.ADMIN, "a1"))


@pytest.mark.parametrize("value", ["-1", "0.5", "lots", ""])
def test_a_rate_that_is_not_a_whole_number_stops_the_server_with_its_name(monkeypatch, value):
    from billing.settings import Settings

    monkeypatch.setenv("BILLING_KEY_RATE_LIMIT_SERVICE", value)
    with pytest.raises(SystemExit, match="BILLING_KEY_RATE_LIMIT_SERVICE"):
        Settings.from_environment("postgresql://u@h/db")


async def test_a_streams_messages_are_read_at_its_keys_rate_not_refused():
    """ConsumeStream and MeterSession spend a token per message: past the burst, each later message
    waits for the next token (the stream is slowed, never answered RATE_LIMITED); no limit, no wait."""
    from billing.api.interceptors import paced

    now, slept = [0.0], []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    limiter = KeyRateLimiter({Scope.SERVICE: RateLimit(2, 3), Scope.ADMIN: None}, clock=lambda: now[0], sleep=sleep)

    async def messages(count: int):
        for n in range(count):
            yield n

    assert [m async for m in paced(messages(5), limiter, key(Scope.SERVICE, "s1"))] == [0, 1, 2, 3, 4]
    assert slept == [0.5, 0.5]  # three in the burst, then one every 1/2 s
    assert [m async for m in paced(messages(50), limiter, key(Scope.ADMIN, "a1"))] == list(range(50))
    assert slept == [0.5, 0.5]


def test_a_replicas_share_divides_the_rate_and_the_burst_and_keeps_a_call_in_the_bucket():
    assert replica_share(LIMIT, 1) == LIMIT
    assert replica_share(LIMIT, 0) == LIMIT  # a count that lost this replica still leaves it the limit
    assert replica_share(LIMIT, 4) == RateLimit(per_second=2.5, burst=5)
    assert replica_share(LIMIT, 50) == RateLimit(per_second=0.2, burst=1)  # never below one call


@settings(max_examples=100, deadline=None)
@given(replicas=st.integers(min_value=1, max_value=8), calls=st.integers(min_value=1, max_value=400),
       seconds=st.floats(min_value=0, max_value=5))
def test_replicas_sharing_a_keys_limit_accept_at_most_the_limit_together(replicas, calls, seconds):
    """Calls spread round-robin over the replicas (as Envoy does), each replica with its share and
    its own buckets, on one fake clock: together they accept at most burst + rate x elapsed."""
    now = [0.0]
    limiters = [KeyRateLimiter({Scope.USER: LIMIT}, clock=lambda: now[0]) for _ in range(replicas)]
    for limiter in limiters:
        limiter.share_among(replicas)
    accepted = 0
    for n in range(calls):
        now[0] = seconds * n / calls
        try:
            limiters[n % replicas].check(key(Scope.USER))
            accepted += 1
        except RateLimited:
            pass
    assert accepted <= LIMIT.burst + LIMIT.per_second * now[0] + 1e-9
    if calls >= 2 * LIMIT.burst and seconds == 0:  # a burst at one instant: the burst, less the shares' fractions
        assert LIMIT.burst - replicas < accepted <= LIMIT.burst


def test_a_share_follows_the_live_replicas_count_both_ways():
    now = [0.0]
    limiter = KeyRateLimiter({Scope.USER: RateLimit(10, 20), Scope.SERVICE: None}, clock=lambda: now[0])
    limiter.share_among(2)
    assert sum(_accepted(limiter, Scope.USER, "a", 100)) == 10
    for _ in range(1000):
        limiter.check(key(Scope.SERVICE, "s1"))  # no limit stays no limit
    limiter.share_among(1)  # the other replica is gone: the whole limit again, from the next refill
    now[0] = 10.0
    assert sum(_accepted(limiter, Scope.USER, "a", 100)) == 20


def _accepted(limiter: KeyRateLimiter, scope: Scope, key_id: str, calls: int) -> list[int]:
    accepted = []
    for _ in range(calls):
        try:
            limiter.check(key(scope, key_id))
            accepted.append(1)
        except RateLimited:
            accepted.append(0)
    return accepted
