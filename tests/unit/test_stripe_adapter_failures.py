"""The real Stripe adapter against a provider that refuses or fails: a final refusal is
PAYMENT_PROVIDER_REFUSED (and an auto top-up failure the balance shows), a transient failure is
Unavailable (503, the attempt stays pending and is sent again). Canned answers (tests/support/
provider_stub.py), for what the stand-in never answers."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.stripe_payments import StripePayments
from billing.api.errors import STATUS_BY_ERROR
from billing.domain.errors import IdempotencyKeyReused, PaymentProviderRefused, RequestInProgress
from billing.service.accounts import create_account
from billing.service.auto_topup import set_auto_topup
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.provider_events import CheckoutItem, TopupCharge
from billing.service.ports import Unavailable
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.fake_storage import FakeDatabase, fake_dependencies
from tests.support.provider_stub import ProviderStub, provider_stub, stripe_error  # noqa: F401 - fixture
from tests.unit.paying_fixtures import clock  # noqa: F401 - fixture

PACK = CheckoutItem(kind="package", key="mini", name="Mini", minutes=60, currency="EUR", unit_amount_cents=479)
CHARGE = TopupCharge("u1", "cus_u1", 1, PACK)
NOT_FOUND_PAGE = "<html><body><h1>404 Not Found</h1>nginx</body></html>"

FINAL = [
    (400, stripe_error("invalid_request_error", "Amount must be at least 50 cents", "amount_too_small"),
     "amount_too_small"),
    (401, stripe_error("invalid_request_error", "Expired API Key provided", "api_key_expired"), "api_key_expired"),
    (403, stripe_error("invalid_request_error", "The key lacks the permission"), "provider_refused"),
    (404, NOT_FOUND_PAGE, "provider_refused"),  # a proxy's page, not Stripe's JSON
    (400, "Bad Request", "provider_refused"),
    (418, stripe_error("api_error", "I'm a teapot"), "provider_refused"),
]
TRANSIENT = [
    (409, stripe_error("idempotency_error", "A request with this key is in progress")),  # as Stripe's lock timeout
    (429, stripe_error("rate_limit_error", "Too many requests", "rate_limit")),
    (500, stripe_error("api_error", "Something went wrong")),
    (503, "<html>Service Unavailable</html>"),
]


def adapter(stub: ProviderStub) -> StripePayments:
    return StripePayments("sk_test_stub", ("whsec_stub",), api_base=stub.api_base)


@pytest.mark.parametrize(("status", "body", "code"), FINAL)
def test_a_final_refusal_of_a_top_up_is_a_failed_attempt_with_the_providers_code(provider_stub, status, body, code):
    provider_stub.answer("POST", "/v1/payment_intents", status, body)
    outcome = asyncio.run(adapter(provider_stub).charge_off_session(CHARGE))
    assert (outcome.status, outcome.payment_id, outcome.code) == ("declined", None, code)


def test_a_customer_the_provider_no_longer_knows_fails_the_top_up(provider_stub):
    provider_stub.answer("GET", "/v1/customers/", 404,
                         stripe_error("invalid_request_error", "No such customer: 'cus_u1'", "resource_missing"))
    outcome = asyncio.run(adapter(provider_stub).charge_off_session(CHARGE))
    assert (outcome.status, outcome.code) == ("declined", "resource_missing")
    assert provider_stub.paths("POST") == []


@pytest.mark.parametrize(("status", "body"), TRANSIENT)
def test_a_transient_failure_of_a_top_up_leaves_it_to_be_sent_again(provider_stub, status, body):
    provider_stub.answer("POST", "/v1/payment_intents", status, body)
    with pytest.raises(Unavailable):
        asyncio.run(adapter(provider_stub).charge_off_session(CHARGE))


@pytest.mark.parametrize(("status", "body", "code"), FINAL)
def test_a_final_refusal_of_any_call_is_payment_provider_refused_never_a_503(provider_stub, status, body, code):
    provider_stub.answer("POST", "/v1/customers", status, body)
    with pytest.raises(PaymentProviderRefused) as refused:
        asyncio.run(adapter(provider_stub).create_customer("u1"))
    assert "<html>" not in refused.value.message and len(refused.value.message) < 300


@pytest.mark.parametrize(("status", "body"), TRANSIENT)
def test_a_transient_failure_of_any_call_is_unavailable(provider_stub, status, body):
    provider_stub.answer("POST", "/v1/customers", status, body)
    with pytest.raises(Unavailable):
        asyncio.run(adapter(provider_stub).create_customer("u1"))


def test_no_answer_at_all_is_unavailable():
    stub = ProviderStub()
    stub.close()  # nothing listens there any more
    with pytest.raises(Unavailable):
        asyncio.run(StripePayments("sk_test_stub", ("whsec_stub",), api_base=stub.api_base).create_customer("u1"))


USER = "topper"


@pytest.fixture
def stub_deps(clock, provider_stub):  # noqa: F811 - fixtures
    deps = fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], clock, FakeDatabase())
    return dataclasses.replace(deps, payments=adapter(provider_stub))


async def _top_up_under(deps, status, body, stub):
    await create_account(deps, USER, "free")
    await set_auto_topup(deps, USER, True, 1200, "mini", "EUR")
    stub.answer("POST", "/v1/payment_intents", status, body)
    await consume(deps, USER, "build", 1600, "under-the-threshold")
    await deps.background.drain()
    assert len(stub.paths("POST")) >= 2, "the customer, then the payment"
    return (await get_balance(deps, USER)).account.auto_topup


async def test_the_balance_shows_a_refused_top_up_as_failed_not_pending(stub_deps, provider_stub):
    topup = await _top_up_under(stub_deps, 404, NOT_FOUND_PAGE, provider_stub)
    assert not topup.pending and topup.last_failure == "provider_refused" and topup.failures == 1


async def test_a_top_up_the_provider_could_not_answer_stays_pending(stub_deps, provider_stub):
    topup = await _top_up_under(stub_deps, 503, "<html>Service Unavailable</html>", provider_stub)
    assert topup.pending and topup.last_failure is None and topup.failures == 0


IN_USE = stripe_error("idempotency_error", "There is currently another in-progress request using this Idempotency Key",
                      "idempotency_key_in_use")


@pytest.mark.parametrize("status", [409, 400])
def test_a_key_still_in_use_at_stripe_is_a_retryable_conflict_not_a_reused_key(provider_stub, status):
    # Two operator refunds with one key at once: Stripe answers the second idempotency_key_in_use.
    provider_stub.answer("POST", "/v1/refunds", status, IN_USE)
    with pytest.raises(RequestInProgress) as in_progress:
        asyncio.run(adapter(provider_stub).create_refund("pi_1", 0, "op-key", {"user_id": "u1"}))
    assert in_progress.value.retry_after_seconds >= 1 and in_progress.value.field == "idempotency_key"
    assert STATUS_BY_ERROR[RequestInProgress] == (grpc.StatusCode.ABORTED, 409)


def test_a_key_used_for_another_request_at_stripe_stays_a_reused_key(provider_stub):
    provider_stub.answer("POST", "/v1/refunds", 400, stripe_error(
        "idempotency_error", "Keys for idempotent requests can only be used with the same parameters"))
    with pytest.raises(IdempotencyKeyReused):
        asyncio.run(adapter(provider_stub).create_refund("pi_1", 0, "op-key", {"user_id": "u1"}))
