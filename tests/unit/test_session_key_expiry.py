"""Session keys expire by the wall clock, as the authenticator checks them, even when the service's
clock runs ahead for local use (BILLING_CLOCK_OFFSET_*)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from billing.adapters.clock import FixedClock
from billing.adapters.key_secrets import MasterKey, SessionKeyIssuer
from billing.service.dependencies import Dependencies
from billing.service.session_keys import create_session_key

WALL = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
AHEAD = WALL + timedelta(days=31)  # `billing-dev clock advance 31d`


def _deps(wall_clock: FixedClock | None) -> Dependencies:
    return Dependencies(
        storage=None, catalog=None, clock=FixedClock(AHEAD), wall_clock=wall_clock,  # type: ignore[arg-type]
        key_issuer=SessionKeyIssuer(MasterKey(bytes(32))),
    )


def test_a_session_key_expires_a_ttl_after_the_wall_clock_not_the_clock_run_ahead():
    issued = create_session_key(_deps(FixedClock(WALL)), "alice", ttl_seconds=600)
    assert issued.key.expires_at == WALL + timedelta(seconds=600)


def test_without_a_wall_clock_of_its_own_the_service_clock_is_the_wall_clock():
    issued = create_session_key(_deps(None), "alice", ttl_seconds=600)
    assert issued.key.expires_at == AHEAD + timedelta(seconds=600)
