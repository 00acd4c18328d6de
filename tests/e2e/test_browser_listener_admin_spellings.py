"""The browser listener (:8080) serves no admin path and no console file, however the path is
spelled: doubled or dotted segments, percent-escapes of letters or slashes, case, a trailing slash.
Each request is signed with the admin key over exactly what is sent, so a spelling that slipped past
the listener's `/v1/billing/admin/` block to the transcoder would answer 200; every one must be a
4xx (the block's 404, or a refusal of the path), never a 2xx nor a 5xx."""

from __future__ import annotations

import pytest

ADMIN_SPELLINGS = [
    "/v1/billing//admin/health",
    "//v1/billing/admin/health",
    "/v1//billing/admin/health",
    "/v1/billing/./admin/health",
    "/v1/billing/x/../admin/health",
    "/v1/billing/balance/../admin/health",
    "/v1/billing/%61dmin/health",
    "/v1/billing/%2561dmin/health",
    "/v1/billing/admin%2Fhealth",
    "/v1/billing%2Fadmin/health",
    "/v1/billing/ADMIN/health",
    "/v1/billing/Admin/health",
    "/v1/billing/admin/health/",
    "/v1/billing/admin;x=1/health",
    "/v1/billing/admin/./health",
    "/v1/billing//admin/accounts?query=e2e",
    "/v1/billing/%61dmin/accounts?query=e2e",
    "/v1/billing//admin/webhook-endpoints",
    "/v1/billing/%61dmin/webhook-endpoints",
    "/v1/billing//admin/audit",
]

CONSOLE_SPELLINGS = ["/console", "/console/", "/console/index.html", "/console/console.js", "//console/",
                     "/Console/", "/%63onsole/", "/console%2F", "/./console/", "/x/../console/console.js"]


@pytest.mark.parametrize("path", ADMIN_SPELLINGS)
def test_no_spelling_of_an_admin_path_reaches_the_admin_api_on_the_browser_listener(e2e, path):
    status, _, body = e2e.http("GET", path, browser_listener=True)
    assert 400 <= status < 500, (status, body[:300])


@pytest.mark.parametrize("path", ["/v1/billing//admin/console-logins/redeem", "/v1/billing/%61dmin/console-logins/redeem",
                                  "//v1/billing/admin/console-logins/redeem"])
def test_no_spelling_of_the_console_login_reaches_it_on_the_browser_listener(e2e, path):
    status, _, body = e2e.http("POST", path, json={"code": "x" * 43}, key=None, browser_listener=True)
    assert status in (400, 403, 404), (status, body[:300])


@pytest.mark.parametrize("path", CONSOLE_SPELLINGS)
def test_no_console_file_on_the_browser_listener(e2e, path):
    status, _, body = e2e.http("GET", path, key=None, browser_listener=True)
    assert 400 <= status < 500, (status, body[:300])
    assert b"<script" not in body and b"Billing console" not in body
