"""A signed REST request must be the call the server runs (api/rest_binding.py)."""

from __future__ import annotations

import pytest
from google.api import annotations_pb2
from google.protobuf import message_factory

from billing.api.rest_binding import require_signed_request_is_this_call
from billing.domain.auth import SIGNED_METHOD_HEADER, SIGNED_PATH_HEADER
from billing.domain.errors import InvalidArgument, Unauthenticated
from billing.v1 import billing_service_pb2, consumption_pb2, payments_pb2

CONSUME = "/billing.v1.BillingService/Consume"
LIST_EVENTS = "/billing.v1.BillingService/ListEvents"
BODY = b'{"user_id":"u1","operation":"build","seconds":60,"idempotency_key":"k1"}'


def signed(method: str, path: str) -> dict[str, str]:
    return {SIGNED_METHOD_HEADER: method, SIGNED_PATH_HEADER: path}


def consume(**fields) -> consumption_pb2.ConsumeRequest:
    return consumption_pb2.ConsumeRequest(**({"user_id": "u1", "operation": "build", "seconds": 60, "idempotency_key": "k1"} | fields))


def accepted(method: str, sent: tuple[str, str], request, body: bytes) -> bool:
    """The binding returns nothing when the signed request is the call, and raises otherwise."""
    try:
        require_signed_request_is_this_call(method, signed(*sent), request, body)
    except (Unauthenticated, InvalidArgument):
        return False
    return True


def test_the_signed_body_is_the_call():
    assert accepted(CONSUME, ("POST", "/v1/billing/consume"), consume(), BODY)


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
    assert accepted(CONSUME, ("POST", "/v1/billing/consume"), consume(), body)
    assert not accepted(CONSUME, ("POST", "/v1/billing/consume"), consume(seconds=61), body)


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


# ---------------------------------------------------------------- undecodable paths and queries (issue 19, item 5)

GET_BALANCE = "/billing.v1.BillingService/GetBalance"
UPDATE_AUTO_TOPUP = "/billing.v1.BillingService/UpdateAutoTopup"


def refusal(method: str, sent: tuple[str, str], request, body: bytes = b"") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as refused:
        require_signed_request_is_this_call(method, signed(*sent), request, body)
    return refused.value


@pytest.mark.parametrize("segment", ["%ff", "%c0%af", "%ed%a0%80", "%f4%90%80%80", "%e2%82", "a%00b", "%80abc"])
def test_a_path_segment_that_is_not_utf8_once_decoded_is_invalid_argument_naming_the_field(segment):
    """The transcoder takes a body's user_id over the path's (PUT /auto-topup/%ff with a user_id in
    the body), so the message decodes fine and only this re-reading sees the path: it used to raise
    UnicodeDecodeError, a 500 with a traceback."""
    request = payments_pb2.UpdateAutoTopupRequest(user_id="u1", enabled=False)
    error = refusal(UPDATE_AUTO_TOPUP, ("PUT", f"/v1/billing/auto-topup/{segment}"), request, b'{"enabled":false}')
    assert error.field == "user_id"


@pytest.mark.parametrize("query, field", [
    ("limit=%ff", "limit"), ("page_token=a%c0%80", "page_token"), ("page_token=%00", "page_token"),
    ("%ff=1", "query"), ("li%00mit=1", "query"),
])
def test_a_query_part_that_is_not_utf8_once_decoded_is_invalid_argument_naming_it(query, field):
    request = billing_service_pb2.ListEventsRequest(user_id="u1")
    assert refusal(LIST_EVENTS, ("GET", f"/v1/billing/events/u1?{query}"), request).field == field


def test_bad_percent_escapes_are_kept_as_text_as_the_transcoder_keeps_them():
    request = billing_service_pb2.ListEventsRequest(user_id="u1", page_token="%zz%")
    assert accepted(LIST_EVENTS, ("GET", "/v1/billing/events/u1?page_token=%zz%"), request, b"")


# ---------------------------------------------------------------- a path field given twice (issue 19, item 8)


@pytest.mark.parametrize("query", ["user_id=alice", "userId=alice", "limit=5&user_id=bob", "user_id="])
def test_a_query_that_repeats_a_path_field_is_invalid_argument_naming_it(query):
    """`GET /events/bob?user_id=alice` is transcoded as alice's call; it is refused whatever the
    value (the same one too): each field comes from one place."""
    request = billing_service_pb2.ListEventsRequest(user_id="alice", limit=5)
    error = refusal(LIST_EVENTS, ("GET", f"/v1/billing/events/bob?{query}"), request)
    assert error.field == "user_id" and "query" in error.message


def test_a_query_that_repeats_the_balance_path_field_is_refused():
    error = refusal(GET_BALANCE, ("GET", "/v1/billing/balance/bob?user_id=alice"),
                    billing_service_pb2.GetBalanceRequest(user_id="alice"))
    assert error.field == "user_id"


@pytest.mark.parametrize("body", [b'{"enabled":false,"user_id":"alice"}', b'{"enabled":false,"userId":"bob"}'])
def test_a_body_that_repeats_a_path_field_is_invalid_argument_naming_it(body):
    request = payments_pb2.UpdateAutoTopupRequest(user_id="alice", enabled=False)
    error = refusal(UPDATE_AUTO_TOPUP, ("PUT", "/v1/billing/auto-topup/bob"), request, body)
    assert error.field == "user_id" and "body" in error.message


# method -> the field its path binds
PATH_BOUND = {
    "GetBalance": "user_id", "WatchBalance": "user_id", "GetUsage": "user_id", "ListEvents": "user_id",
    "GetAutoTopup": "user_id", "UpdateAutoTopup": "user_id", "GetAlertThresholds": "user_id", "SetAlertThresholds": "user_id",
    "ExtendHold": "hold_id", "CommitHold": "hold_id", "ReleaseHold": "hold_id",
    "DisableWebhookEndpoint": "endpoint_id", "EnableWebhookEndpoint": "endpoint_id",
    "DeleteWebhookEndpoint": "endpoint_id", "RotateWebhookEndpointSecret": "endpoint_id",
    "ReplayWebhookEvent": "event_id",
}


def test_the_path_bound_methods_are_all_listed_here():
    service = billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"]
    bound = [m.name for m in service.methods if "{" in str(m.GetOptions().Extensions[annotations_pb2.http])]
    assert sorted(bound) == sorted(PATH_BOUND)


@pytest.mark.parametrize("name", sorted(PATH_BOUND))
def test_every_path_binding_refuses_its_field_again_in_the_query(name):
    field = PATH_BOUND[name]
    method = billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"].methods_by_name[name]
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    path = getattr(rule, verb).replace(f"{{{field}}}", "bob")
    request = message_factory.GetMessageClass(method.input_type)(**{field: "alice"})
    body = b"{}" if rule.body == "*" else b""
    error = refusal(f"/billing.v1.BillingService/{name}", (verb.upper(), f"{path}?{field}=alice"), request, body)
    assert error.field == field


def test_a_hold_id_in_the_body_may_not_override_the_paths():
    """POST /holds/h1/commit with {"hold_id":"h2"}: the transcoder would commit h2 while the URL says h1."""
    from billing.v1 import holds_pb2

    request = holds_pb2.CommitHoldRequest(user_id="u1", hold_id="h2", used_seconds=5)
    body = b'{"user_id":"u1","hold_id":"h2","used_seconds":5}'
    error = refusal("/billing.v1.BillingService/CommitHold", ("POST", "/v1/billing/holds/h1/commit"), request, body)
    assert error.field == "hold_id" and "body" in error.message


def test_a_hold_commit_signed_as_its_path_and_body_is_the_call():
    from billing.v1 import holds_pb2

    request = holds_pb2.CommitHoldRequest(user_id="u1", hold_id="h1", used_seconds=5, final=True)
    body = b'{"user_id":"u1","used_seconds":5,"final":true}'
    assert accepted("/billing.v1.BillingService/CommitHold", ("POST", "/v1/billing/holds/h1/commit"), request, body)
    assert not accepted("/billing.v1.BillingService/CommitHold", ("POST", "/v1/billing/holds/h2/commit"), request, body)
