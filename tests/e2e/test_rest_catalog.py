from __future__ import annotations

import pytest

from tests.e2e.helpers import assert_error, call

PLAN_KEYS = {"key", "name", "minutes", "price", "price_cents", "bonusDaily", "monthlyBonusCap", "rolloverCap",
             "taxInclusive", "advisor"}
PACKAGE_KEYS = {"key", "name", "minutes", "price", "price_cents", "taxInclusive"}


def test_catalog_has_the_contract_shape_with_camel_case_names(http):
    status, headers, catalog = call(http, "GET", "/v1/billing/catalog?currency=USD")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert set(catalog) == {"version", "rollover_policy", "subscriptions", "packages", "currency"}
    assert catalog["currency"] == "USD" and catalog["rollover_policy"] == {"days": 90}
    free = catalog["subscriptions"][0]
    assert set(free) == PLAN_KEYS
    assert free["key"] == "free" and free["bonusDaily"] == 15 and free["monthlyBonusCap"] == 300
    assert free["advisor"] == {"eligible": False}
    pro = next(plan for plan in catalog["subscriptions"] if plan["key"] == "pro")
    assert pro["advisor"] == {"eligible": True, "payoutUSD": 5}
    assert pro["price"] == 29.99 and pro["price_cents"] == 2999 and pro["taxInclusive"] is False
    assert all(set(package) == PACKAGE_KEYS for package in catalog["packages"])
    assert all(isinstance(package["minutes"], int) for package in catalog["packages"])


def test_catalog_sends_an_etag_and_answers_304_to_a_matching_if_none_match(http):
    status, headers, _ = http("GET", "/v1/billing/catalog?currency=EUR")
    assert status == 200 and headers["etag"].startswith('"')
    assert "max-age" in headers["cache-control"]
    status, headers_304, body = http("GET", "/v1/billing/catalog?currency=EUR", headers={"If-None-Match": headers["etag"]})
    assert status == 304
    assert body == b""
    assert headers_304["etag"] == headers["etag"]
    assert not any(name.startswith("grpc-") or name.startswith("x-http") for name in headers_304)


def test_etag_differs_per_currency_and_a_stale_etag_gets_the_full_catalog(http):
    _, usd, _ = http("GET", "/v1/billing/catalog?currency=USD")
    _, gbp, _ = http("GET", "/v1/billing/catalog?currency=GBP")
    assert usd["etag"] != gbp["etag"]
    status, _, body = call(http, "GET", "/v1/billing/catalog?currency=GBP", headers={"If-None-Match": usd["etag"]})
    assert status == 200 and body["currency"] == "GBP"
    assert body["subscriptions"][1]["taxInclusive"] is True


def test_unpriced_currency_falls_back_to_usd_and_says_so(http):
    status, _, catalog = call(http, "GET", "/v1/billing/catalog?currency=JPY")
    assert status == 200
    assert catalog["currency"] == "USD" and catalog["currency_fallback_from"] == "JPY"


def test_catalog_defaults_to_usd(http):
    status, _, catalog = call(http, "GET", "/v1/billing/catalog")
    assert status == 200 and catalog["currency"] == "USD" and "currency_fallback_from" not in catalog


def test_malformed_currency_is_a_400_naming_the_field(http):
    status, _, body = call(http, "GET", "/v1/billing/catalog?currency=US%24")
    assert_error(status, body, 400, "INVALID_ARGUMENT", "currency")


def test_unknown_query_parameter_is_a_json_400(http):
    status, _, body = call(http, "GET", "/v1/billing/catalog?colour=red")
    assert_error(status, body, 400, "INVALID_ARGUMENT")


def test_unknown_path_is_a_json_404(http):
    status, _, body = call(http, "GET", "/v1/billing/nothing-here")
    assert_error(status, body, 404, "NOT_FOUND")


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1:3000"])
def test_cors_preflight_is_answered_for_the_configured_origin(http, origin):
    status, headers, _ = http(
        "OPTIONS", "/v1/billing/consume",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-resume-token"},
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == origin
    assert "POST" in headers["access-control-allow-methods"]


def test_cors_is_not_granted_to_another_origin(http):
    status, headers, _ = http(
        "OPTIONS", "/v1/billing/consume",
        headers={"Origin": "http://127.0.0.1:3001", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in headers
