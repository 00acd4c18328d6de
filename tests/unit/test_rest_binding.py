"""A signed REST request must be the call the server runs (api/rest_binding.py)."""

from __future__ import annotations

import pytest

from billing.api.rest_binding import require_signed_request_is_this_call
from billing.domain.auth import SIGNED_METHOD_HEADER, SIGNED_PATH_HEADER
from billing.domain.errors import Unauthenticated
from billing.v1 import billing_service_pb2, consumption_pb2

CONSUME = "/billing.v1.BillingService/Consume"
LIST_EVENTS = "/billing.v1.BillingService/ListEvents"
BODY = b'{"user_id":"u1","operation":"build","seconds":60,"idempotency_key":"k1"}'


def signed(method: str, path: str) -> dict[str, str]:
    return {SIGNED_METHOD_HEADER: method, SIGNED_PATH_HEADER: path}


def consume(**fields) -> consumption_pb2.ConsumeRequest:
    return consumption_pb2.ConsumeRequest(**({"user_id": "u1", "operation": "build", "seconds": 60, "idempotency_key": "k1"} | fields))


def test_the_signed_body_is_the_call():
    require_signed_request_is_this_call(CONSUME, signed("POST", "/v1/billing/consume"), consume(), BODY)


@pytest.mark.parametrize("changed", [{"seconds": 61}, {"user_id": "u2"}, {"idempotency_key": "k2"}, {"operation": "plan"}])
def test_a_call_other_than_the_signed_one_is_refused(changed):
    with pytest.raises(Unauthenticated):
        require_signed_request_is_this_call(CONSUME, signed("POST", "/v1/billing/consume"), consume(**changed), BODY)


@pytest.mark.parametrize("body", [
    b'{"userId":"u1","operation":"build","seconds":60,"idempotencyKey":"k1"}',  # JSON names
    b'{"user_id":"u1","operation":"build","seconds":"60","idempotency_key":"k1"}',  # a number as a string
    b'{"user_id":"u1","operation":"build","seconds":60,"idempotency_key":"k1","unknown":1}',  # dropped, as Envoy does
])
def test_json_spellings_the_transcoder_accepts_are_the_same_call(body):
    require_signed_request_is_this_call(CONSUME, signed("POST", "/v1/billing/consume"), consume(), body)


def test_path_and_query_values_are_read_by_the_json_rules():
    request = billing_service_pb2.ListEventsRequest(user_id="u 1", limit=20, page_token="t")
    require_signed_request_is_this_call(LIST_EVENTS, signed("GET", "/v1/billing/events/u%201?limit=20&page_token=t"), request, b"")
    with pytest.raises(Unauthenticated):
        require_signed_request_is_this_call(LIST_EVENTS, signed("GET", "/v1/billing/events/u%201?limit=21&page_token=t"), request, b"")


def test_a_plus_in_the_query_is_a_plus_as_the_transcoder_reads_it():
    """Envoy's transcoder decodes %XX in a query value and leaves '+' as it is (URI rules, not
    HTML forms): a signed `?page_token=a+b` is the call with page_token "a+b", not "a b"."""
    request = billing_service_pb2.ListEventsRequest(user_id="u1", page_token="a+b c")
    require_signed_request_is_this_call(LIST_EVENTS, signed("GET", "/v1/billing/events/u1?page_token=a+b%20c"), request, b"")
    with pytest.raises(Unauthenticated):
        require_signed_request_is_this_call(
            LIST_EVENTS, signed("GET", "/v1/billing/events/u1?page_token=a+b%20c"),
            billing_service_pb2.ListEventsRequest(user_id="u1", page_token="a b c"), b"")


def test_another_method_or_an_unread_body_is_refused():
    with pytest.raises(Unauthenticated):
        require_signed_request_is_this_call(CONSUME, signed("PUT", "/v1/billing/consume"), consume(), BODY)
    with pytest.raises(Unauthenticated):
        require_signed_request_is_this_call(
            LIST_EVENTS, signed("GET", "/v1/billing/events/u1"), billing_service_pb2.ListEventsRequest(user_id="u1"), b'{"limit":5}')
