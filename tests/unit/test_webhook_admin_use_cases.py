"""Issue 22's admin surface on memory: webhook endpoints, the delivery log and replays; the URL rules."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from billing.adapters.webhook_targets import refused_target_reason
from billing.domain.errors import InvalidArgument, WebhookEndpointNotFound, WebhookEventNotFound
from billing.domain.outbound_types import EVENT_TYPES
from billing.domain.webhook_endpoints import Delivery, DeliveryAttempt
from billing.service import delivery_log, webhook_endpoints
from billing.service.delivery_log import decode_page_token, encode_page_token
from tests.support.fake_storage import fake_dependencies, resolve_test_names
from tests.unit.memory_fixtures import clock, database, deps  # noqa: F401 - fixtures

URL = "https://hooks.example.com/billing"


async def test_an_endpoint_is_created_with_a_secret_shown_once_and_stored(deps, database, clock):
    created = await webhook_endpoints.create_endpoint(deps, URL, ["credit.granted", "balance.low"], "the app")
    assert created.secret.startswith("whsec_") and len(base64.b64decode(created.secret[6:])) == 32
    endpoint = created.endpoint
    assert endpoint.endpoint_id.startswith("ep_") and endpoint.enabled and endpoint.created_at == clock.now()
    # each type once, in the catalogue's order
    assert endpoint.event_types == ("balance.low", "credit.granted")
    assert database.webhook_endpoints[endpoint.endpoint_id].secret == created.secret
    assert await webhook_endpoints.list_endpoints(deps) == [endpoint]


async def test_no_event_types_means_all_and_an_unknown_one_is_refused_naming_the_field(deps):
    assert (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint.event_types == ()
    with pytest.raises(InvalidArgument) as refused:
        await webhook_endpoints.create_endpoint(deps, URL, ["credit.granted", "balance.lowish"], "")
    assert refused.value.field == "event_types" and "balance.lowish" in refused.value.message


def test_the_catalogue_is_the_issues_list():
    assert EVENT_TYPES == (
        "balance.low", "balance.depleted", "balance.recovered", "credit.granted", "credit.expiring", "credit.expired",
        "topup.succeeded", "topup.failed", "topup.disabled", "subscription.activated", "subscription.renewed",
        "subscription.changed", "subscription.canceled", "subscription.past_due", "refund.applied", "hold.expired",
    )


def test_the_protos_list_every_event_type():
    from pathlib import Path

    proto = (Path(__file__).resolve().parents[2] / "protos" / "billing" / "v1" / "webhooks.proto").read_text()
    assert all(t in proto for t in EVENT_TYPES)


REFUSED_URLS = [
    "http://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/", "http://[::1]:8080/",
    "http://localhost:3000/hook",  # resolves to 127.0.0.1
    "http://internal.example.com/",  # one of its addresses is private
    "https://user:pass@hooks.example.com/", "https://token@hooks.example.com/", "ftp://hooks.example.com/",
    "file:///etc/passwd", "http:///nohost", "https://nowhere.example.com/",  # does not resolve
    "http://0.0.0.0/", "http://224.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f.1/",
    "http://192.168.1.1/", "http://172.16.0.1/", "http://100.64.0.1/", "http://[fe80::1]/", "http://[fc00::1]/",
    "https://hooks.example.com/" + "a" * 2048, "", "https://hooks.example.com/a b",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_targets_refused_without_the_opt_in(url):
    assert refused_target_reason(url, False, resolve_test_names) is not None


@pytest.mark.parametrize("url", ["https://hooks.example.com/billing", "http://hooks.example.com:8443/x?y=1",
                                 "http://93.184.216.34/", "https://[2606:2800:220:1:248:1893:25c8:1946]/"])
def test_public_targets_are_allowed(url):
    assert refused_target_reason(url, False, resolve_test_names) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://[::1]/", "http://localhost/", "http://10.0.0.1/"])
def test_the_opt_in_allows_private_targets(url):
    assert refused_target_reason(url, True, resolve_test_names) is None


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://u:p@127.0.0.1/", "http:///x"])
def test_the_opt_in_keeps_the_url_rules(url):
    assert refused_target_reason(url, True, resolve_test_names) is not None


async def test_a_refused_target_is_400_on_url(deps):
    for url in ("http://169.254.169.254/", "http://localhost/", "ftp://hooks.example.com/"):
        with pytest.raises(InvalidArgument) as refused:
            await webhook_endpoints.create_endpoint(deps, url, [], "")
        assert refused.value.field == "url"


async def test_the_opt_in_setting_lets_a_loopback_endpoint_in(clock, database):
    from billing.adapters.catalog_file import load_catalog
    from billing.settings import DEFAULT_CATALOG_PATH

    open_deps = fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], clock, database, allow_private_webhooks=True)
    created = await webhook_endpoints.create_endpoint(open_deps, "http://127.0.0.1:9000/hook", [], "")
    assert created.endpoint.url == "http://127.0.0.1:9000/hook"


async def test_disable_enable_and_the_failing_streak(deps, database, clock):
    endpoint = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint
    disabled = await webhook_endpoints.disable_endpoint(deps, endpoint.endpoint_id)
    assert (disabled.enabled, disabled.disabled_reason) == (False, "disabled by an operator")
    # the sender found it failing for 5 days meanwhile (its own reason stays the first one)
    import dataclasses

    database.webhook_endpoints[endpoint.endpoint_id] = dataclasses.replace(
        database.webhook_endpoints[endpoint.endpoint_id], failing_since=clock.now() - timedelta(days=5))
    enabled = await webhook_endpoints.enable_endpoint(deps, endpoint.endpoint_id)
    assert (enabled.enabled, enabled.disabled_reason, enabled.failing_since) == (True, None, None)
    assert database.webhook_endpoints[endpoint.endpoint_id] == enabled


async def test_rotating_keeps_the_previous_secret_for_a_day(deps, database, clock):
    created = await webhook_endpoints.create_endpoint(deps, URL, [], "")
    rotated = await webhook_endpoints.rotate_secret(deps, created.endpoint.endpoint_id)
    stored = database.webhook_endpoints[created.endpoint.endpoint_id]
    assert rotated.secret != created.secret and stored.secret == rotated.secret
    assert (stored.previous_secret, stored.previous_secret_until) == (created.secret, clock.now() + timedelta(hours=24))


async def test_unknown_or_deleted_endpoints_are_not_found(deps):
    for change in (webhook_endpoints.disable_endpoint, webhook_endpoints.enable_endpoint,
                   webhook_endpoints.delete_endpoint, webhook_endpoints.rotate_secret):
        with pytest.raises(WebhookEndpointNotFound):
            await change(deps, "ep_nope")
    endpoint = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint
    await webhook_endpoints.delete_endpoint(deps, endpoint.endpoint_id)
    assert await webhook_endpoints.list_endpoints(deps) == []
    with pytest.raises(WebhookEndpointNotFound):
        await webhook_endpoints.enable_endpoint(deps, endpoint.endpoint_id)


def _delivery(endpoint_id: str, account: str, seq: int, at: datetime, status: str = "failed", attempts: int = 1,
              event_id: str | None = None) -> Delivery:
    log = tuple(DeliveryAttempt(n, at + timedelta(seconds=n), 500, 40, "oops", None) for n in range(1, attempts + 1))
    return Delivery(account, endpoint_id, seq, event_id or f"evt_{account}_{seq}", "credit.granted", status, attempts,
                    at if status == "pending" else None, 500 if attempts else None, None, at,
                    None if status == "pending" else at + timedelta(hours=1), log)


def _store(database, *deliveries: Delivery) -> None:
    for d in deliveries:
        database.webhook_deliveries[(d.account_id, d.endpoint_id, d.seq)] = d


async def test_deleting_fails_the_pending_deliveries_with_a_reason(deps, database, clock):
    endpoint = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint
    t = clock.now()
    _store(database, _delivery(endpoint.endpoint_id, "alice", 1, t, "pending", 0),
           _delivery(endpoint.endpoint_id, "alice", 2, t, "pending", 2), _delivery(endpoint.endpoint_id, "bob", 1, t, "delivered"))
    deleted = await webhook_endpoints.delete_endpoint(deps, endpoint.endpoint_id)
    assert deleted.failed_deliveries == 2 and deleted.endpoint.deleted_at == t
    statuses = {(d.account_id, d.seq): (d.status, d.last_error) for d in database.webhook_deliveries.values()}
    assert statuses == {("alice", 1): ("failed", "endpoint deleted"), ("alice", 2): ("failed", "endpoint deleted"),
                        ("bob", 1): ("delivered", None)}


async def test_the_log_pages_newest_first_with_filters(deps, database, clock):
    a = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint.endpoint_id
    b = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint.endpoint_id
    t = clock.now()
    every = [_delivery(endpoint, account, seq, t + timedelta(seconds=seq // 2), status)
             for seq in range(1, 8) for account in ("alice", "bob") for endpoint in (a, b)
             for status in (["failed", "delivered", "pending"][seq % 3],)]
    _store(database, *every)
    seen, token = [], ""
    while True:
        page = await delivery_log.list_deliveries(deps, "", "", "", 5, token)
        seen += page.deliveries
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(every) and len({d.position for d in seen}) == len(every)
    assert [d.position for d in seen] == sorted((d.position for d in every), reverse=True)
    only = await delivery_log.list_deliveries(deps, a, "bob", "failed", 100, "")
    assert only.deliveries and all((d.endpoint_id, d.account_id, d.status) == (a, "bob", "failed") for d in only.deliveries)
    assert only.deliveries[0].attempt_log[0].status_code == 500


async def test_the_log_refuses_bad_filters_and_tokens(deps):
    for kwargs, field in (({"status": "lost"}, "status"), ({"limit": -1}, "limit"), ({"page_token": "zz"}, "page_token"),
                          ({"user_id": "no spaces"}, "user_id"), ({"endpoint_id": "x" * 65}, "endpoint_id")):
        arguments = {"endpoint_id": "", "user_id": "", "status": "", "limit": 0, "page_token": ""} | kwargs
        with pytest.raises(InvalidArgument) as refused:
            await delivery_log.list_deliveries(deps, **arguments)
        assert refused.value.field == field
    assert (await delivery_log.list_deliveries(deps, "", "", "", 1000, "")).deliveries == []  # capped, not refused


def test_a_page_token_round_trips():
    from billing.domain.webhook_endpoints import DeliveryPosition

    position = DeliveryPosition(datetime(2026, 3, 14, 9, 30, 0, 123456, tzinfo=timezone.utc), "a|b", "ep_1", 7)
    assert decode_page_token(encode_page_token(position)) == position


async def test_replaying_an_event_makes_its_deliveries_pending_with_their_attempts(deps, database, clock):
    a = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint.endpoint_id
    b = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint.endpoint_id
    gone = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint.endpoint_id
    t = clock.now() - timedelta(days=4)
    _store(database, _delivery(a, "alice", 3, t, "failed", 8, "evt_x"), _delivery(b, "alice", 3, t, "delivered", 1, "evt_x"),
           _delivery(gone, "alice", 3, t, "failed", 8, "evt_x"))
    await webhook_endpoints.delete_endpoint(deps, gone)
    assert (await delivery_log.replay_event(deps, "evt_x")).replayed == 2
    replayed = database.webhook_deliveries[("alice", a, 3)]
    assert (replayed.status, replayed.next_attempt_at, replayed.finished_at, replayed.attempts) == (
        "pending", clock.now(), None, 8)
    assert len(replayed.attempt_log) == 8
    assert database.webhook_deliveries[("alice", gone, 3)].status == "failed"
    with pytest.raises(WebhookEventNotFound):
        await delivery_log.replay_event(deps, "evt_unknown")


async def test_replaying_the_failed_since_a_time_is_bounded(deps, database, clock, monkeypatch):
    a = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint.endpoint_id
    b = (await webhook_endpoints.create_endpoint(deps, URL, [], "")).endpoint.endpoint_id
    since = clock.now() - timedelta(hours=2)
    _store(database, *[_delivery(a, "alice", n, since + timedelta(minutes=n), "failed") for n in range(1, 6)],
           _delivery(a, "alice", 99, since - timedelta(minutes=1), "failed"),  # before `since`
           _delivery(b, "bob", 1, since + timedelta(minutes=1), "failed"), _delivery(b, "bob", 2, since, "delivered"))
    monkeypatch.setattr(delivery_log, "REPLAY_BATCH_MAX", 3)
    first = await delivery_log.replay_failed(deps, since, a)
    assert (first.replayed, first.more) == (3, True)
    assert [n for n in range(1, 6) if database.webhook_deliveries[("alice", a, n)].status == "pending"] == [1, 2, 3]
    second = await delivery_log.replay_failed(deps, since, "")
    assert (second.replayed, second.more) == (3, True)  # alice 4, bob 1, alice 5: oldest first
    assert (await delivery_log.replay_failed(deps, since, "")).replayed == 0
    assert database.webhook_deliveries[("alice", a, 99)].status == "failed"
    with pytest.raises(InvalidArgument):
        await delivery_log.replay_failed(deps, None, "")
