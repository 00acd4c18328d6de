"""Holds: seconds reserved for work whose length nobody knows up front, then used and settled.

A hold reserves seconds on the buckets in the consumption order (all or nothing, as a consume
takes them), so nothing else can take them; each commit debits what was used so far from those
reservations (a `consumption` ledger entry per bucket, so usage and history see it as a consume);
settling gives the rest back to the buckets it came from (usable again, or expired with its
bucket if that expired meanwhile). Reserving writes no ledger entry: the ledger records seconds
leaving a bucket, and held seconds have not left it (docs/decisions.md, "Holds").
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from billing.domain.clock_math import assert_utc
from billing.domain.errors import HoldExceeded, HoldSettled, InvalidArgument, TooManyHolds
from billing.domain.events import HoldExpired
from billing.domain.hold import HeldPart, Hold, HoldState, summary_of
from billing.domain.wallet import EventType, Wallet

OPEN_HOLDS_MAX = 100  # per account
HOLD_TTL_SECONDS_DEFAULT = 900
HOLD_TTL_SECONDS_MIN = 5
HOLD_TTL_SECONDS_MAX = 86_400


def ttl_within_limits(seconds: int) -> int:
    """A computed TTL (a metered session's held time left plus its grace) kept within the limits."""
    return max(HOLD_TTL_SECONDS_MIN, min(HOLD_TTL_SECONDS_MAX, seconds))


def place(wallet: Wallet, hold_id: str, operation: str, seconds: int, ttl_seconds: int, now: datetime) -> Hold:
    """A new open hold of `seconds`, or InsufficientAiTime / TooManyHolds having reserved nothing."""
    assert_utc(now)
    assert hold_id not in wallet.holds
    if wallet.account.holds.open_count >= OPEN_HOLDS_MAX:
        raise TooManyHolds(f"an account may have at most {OPEN_HOLDS_MAX} open holds", field="hold_id")
    parts = _reserve(wallet, seconds, now)
    hold = Hold(
        account_id=wallet.account.account_id, hold_id=hold_id, operation=operation, held_seconds=seconds,
        committed_seconds=0, state=HoldState.OPEN, created_at=now, expires_at=now + timedelta(seconds=ttl_seconds),
        requested_seconds=seconds, requested_ttl_seconds=ttl_seconds, parts=parts,
    )
    _put(wallet, hold)
    return hold


def extend(wallet: Wallet, hold: Hold, seconds: int, ttl_seconds: int | None, now: datetime) -> Hold:
    """Holds `seconds` more (all or nothing) and/or moves the expiry to `ttl_seconds` from now.

    What the hold reserved on buckets that have expired since is given back first (it expires with
    them): an extension carries only live seconds forward, so a hold kept alive by extensions can
    never keep a bucket's seconds past that bucket's expiry by more than one TTL."""
    _require_open(hold, "extended")
    if seconds:
        wallet.plan_or_refuse(seconds, now)  # refused before anything changes
    hold = _drop_expired_parts(wallet, hold, now)
    parts = hold.parts
    if seconds:
        parts = _merge(parts, _reserve(wallet, seconds, now))
    expires_at = hold.expires_at if ttl_seconds is None else now + timedelta(seconds=ttl_seconds)
    extended = dataclasses.replace(hold, held_seconds=hold.held_seconds + seconds, parts=parts, expires_at=expires_at)
    _put(wallet, extended)
    return extended


def commit(wallet: Wallet, hold: Hold, used_seconds: int, final: bool, now: datetime) -> Hold:
    """Records the seconds used so far (cumulative); `final` settles and gives the rest back.

    A final commit repeated on the hold it settled, with the same seconds, changes nothing."""
    if not hold.is_open:
        if final and hold.state is HoldState.SETTLED and used_seconds == hold.committed_seconds:
            return hold
        _require_open(hold, "committed")
    if used_seconds < hold.committed_seconds:
        raise InvalidArgument(
            f"used_seconds is cumulative: {used_seconds} is less than the {hold.committed_seconds} already committed",
            field="used_seconds")
    if used_seconds > hold.held_seconds:
        raise HoldExceeded(
            f"used_seconds {used_seconds} is more than the {hold.held_seconds} held: extend the hold first",
            field="used_seconds")
    hold = _take(wallet, hold, used_seconds - hold.committed_seconds, now)
    if final:
        hold = _settle(wallet, hold, HoldState.SETTLED, now)
    _put(wallet, hold)
    return hold


def release(wallet: Wallet, hold: Hold, now: datetime) -> Hold:
    """Settles at what was committed; a settled hold is returned as it is (a retried release)."""
    if not hold.is_open:
        return hold
    settled = _settle(wallet, hold, HoldState.SETTLED, now)
    _put(wallet, settled)
    return settled


def expire_due(wallet: Wallet, now: datetime) -> list[Hold]:
    """Settles every open hold whose expiry has come (state `expired`), at its committed seconds."""
    assert wallet.open_holds_loaded
    expired = []
    for hold in sorted(wallet.holds.values(), key=lambda h: (h.expires_at, h.hold_id)):
        if hold.is_open and hold.expires_at <= now:
            released = hold.reserved_seconds
            settled = _settle(wallet, hold, HoldState.EXPIRED, now)
            _put(wallet, settled)
            wallet.record(HoldExpired(wallet.account.account_id, hold.hold_id, hold.committed_seconds, released))
            expired.append(settled)
    return expired


def surrender(wallet: Wallet, bucket_seq: int, seconds: int, now: datetime) -> int:
    """Takes up to `seconds` of what open holds reserve on one bucket away from them (a refund
    takes back what its payment credited, reserved or not), oldest hold first; the seconds become
    free for the caller to take. Returns how many. A hold so cut holds less: a commit above what it
    now holds is HOLD_EXCEEDED."""
    assert wallet.open_holds_loaded
    left = seconds
    for hold in open_holds(wallet):
        if left == 0:
            break
        part = next((p for p in hold.parts if p.bucket_seq == bucket_seq), None)
        if part is None:
            continue
        cut = min(left, part.seconds)
        wallet.unreserve(bucket_seq, cut)
        kept = [p for p in hold.parts if p is not part]
        if part.seconds > cut:
            kept.insert(hold.parts.index(part), HeldPart(bucket_seq, part.seconds - cut))
        parts = tuple(kept)
        _put(wallet, dataclasses.replace(hold, held_seconds=hold.held_seconds - cut, parts=parts))
        left -= cut
    return seconds - left


def open_holds(wallet: Wallet) -> list[Hold]:
    """Oldest first."""
    assert wallet.open_holds_loaded
    return sorted((h for h in wallet.holds.values() if h.is_open), key=lambda h: (h.created_at, h.hold_id))


def _require_open(hold: Hold, verb: str) -> None:
    if not hold.is_open:
        raise HoldSettled(f"hold {hold.hold_id!r} is {hold.state} and cannot be {verb}", field="hold_id")


def _reserve(wallet: Wallet, seconds: int, now: datetime) -> tuple[HeldPart, ...]:
    debits = wallet.plan_or_refuse(seconds, now)
    for debit in debits:
        wallet.reserve(debit.bucket.bucket_seq, debit.seconds)
    return tuple(HeldPart(debit.bucket.bucket_seq, debit.seconds) for debit in debits)


def _merge(parts: tuple[HeldPart, ...], more: tuple[HeldPart, ...]) -> tuple[HeldPart, ...]:
    seconds = {part.bucket_seq: part.seconds for part in parts}
    for part in more:
        seconds[part.bucket_seq] = seconds.get(part.bucket_seq, 0) + part.seconds
    return tuple(HeldPart(seq, s) for seq, s in seconds.items())


def _take(wallet: Wallet, hold: Hold, seconds: int, now: datetime) -> Hold:
    """Debits `seconds` of the hold's reservations, first parts first."""
    if seconds == 0:
        return hold
    reason = f"AI operation: {hold.operation}"
    metadata = {"hold_id": hold.hold_id}
    left = seconds
    parts: list[HeldPart] = []
    for part in hold.parts:
        taken = min(left, part.seconds)
        if taken:
            wallet.take_reserved(part.bucket_seq, taken, EventType.CONSUMPTION, reason, now, hold.operation, metadata)
            left -= taken
        if part.seconds > taken:
            parts.append(HeldPart(part.bucket_seq, part.seconds - taken))
    assert left == 0
    return dataclasses.replace(hold, committed_seconds=hold.committed_seconds + seconds, parts=tuple(parts))


def _drop_expired_parts(wallet: Wallet, hold: Hold, now: datetime) -> Hold:
    dropped = [part for part in hold.parts if wallet.bucket(part.bucket_seq).is_expired(now)]
    if not dropped:
        return hold
    for part in dropped:
        wallet.unreserve(part.bucket_seq, part.seconds)
    seconds = sum(part.seconds for part in dropped)
    return dataclasses.replace(
        hold, held_seconds=hold.held_seconds - seconds, expired_seconds=hold.expired_seconds + seconds,
        parts=tuple(part for part in hold.parts if part not in dropped))


def _settle(wallet: Wallet, hold: Hold, state: HoldState, now: datetime) -> Hold:
    expired = 0
    for part in hold.parts:
        wallet.unreserve(part.bucket_seq, part.seconds)
        if wallet.bucket(part.bucket_seq).is_expired(now):
            expired += part.seconds
    return dataclasses.replace(
        hold, state=state, parts=(), settled_at=now, expired_seconds=hold.expired_seconds + expired)


def _put(wallet: Wallet, hold: Hold) -> None:
    wallet.put_hold(hold, summary_of({**wallet.holds, hold.hold_id: hold}.values()))
