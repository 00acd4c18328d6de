"""`billing keys create|revoke` and `billing sign` as an operator runs them (README, "Signing requests"):
the installed console script, DATABASE_URL naming a test database, the session's BILLING_MASTER_KEY."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from billing.adapters.db.api_keys import PostgresApiKeys
from billing.settings import libpq_url

from tests.e2e.helpers import RFC3339_UTC, call, create_account, new_user
from tests.support.database import fresh_database
from testkit.processes import VENV_BIN
from testkit.signing import MASTER, SigningKey

BILLING = VENV_BIN / "billing"
KEY_VISIBLE_SECONDS = 10  # servers refresh keys every few seconds (README: within 5 s)


def _billing(*args: str, **env: str) -> subprocess.CompletedProcess:
    # PYTHONPATH is kept: set to a worktree's src, the script runs that code (test_cli.py shows
    # the script works without it).
    environment = {name: value for name, value in os.environ.items() if name != "BILLING_KEY_SECRET"} | env
    return subprocess.run(
        [str(BILLING), *args], cwd="/tmp", env=environment, capture_output=True, text=True, timeout=60
    )


def _usable_key_ids(database_url: str) -> set[str]:
    async def read() -> set[str]:
        async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as connection:
            return {key.key_id for key in await PostgresApiKeys(connection).usable(datetime.now(timezone.utc))}

    return asyncio.run(read())


@pytest.fixture(scope="module")
def keys_database():
    with fresh_database("billing_cli_keys") as url:
        yield url


def _create(database_url: str, *args: str) -> dict:
    result = _billing("keys", "create", *args, DATABASE_URL=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------- keys create / revoke, no server


@pytest.mark.parametrize("ttl, seconds", [("90s", 90), ("30m", 1800), ("1h", 3600), ("12h", 43200), ("2d", 172800)])
def test_create_prints_the_key_as_json_and_the_ttl_sets_its_expiry(keys_database, ttl, seconds):
    before = datetime.now(timezone.utc)
    key = _create(keys_database, "--scope", "service", "--ttl", ttl)
    after = datetime.now(timezone.utc)
    assert set(key) == {"key_id", "secret", "scope", "user_id", "expires_at"}
    assert isinstance(key["key_id"], str) and key["key_id"]
    assert key["secret"] == MASTER.secret(key["key_id"])  # derived from the master key, stored nowhere
    assert key["scope"] == "service" and key["user_id"] is None
    assert RFC3339_UTC.match(key["expires_at"]), key["expires_at"]
    expires = datetime.fromisoformat(key["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=seconds) - timedelta(seconds=1) <= expires <= after + timedelta(seconds=seconds)
    assert key["key_id"] in _usable_key_ids(keys_database)


def test_create_without_ttl_lasts_90_days(keys_database):
    key = _create(keys_database, "--scope", "admin")
    assert key["scope"] == "admin" and key["user_id"] is None
    expires = datetime.fromisoformat(key["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(days=90))) < timedelta(minutes=1)


@pytest.mark.parametrize("ttl", ["1w", "1.5h", "-1h", "h", "1 h", "", "1234567d"])
def test_a_bad_ttl_is_refused_with_a_clear_message_and_no_key(keys_database, ttl):
    before = _usable_key_ids(keys_database)
    # --ttl=...: else argparse takes "-1h" for an option
    result = _billing("keys", "create", "--scope", "service", f"--ttl={ttl}", DATABASE_URL=keys_database)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert f"--ttl must look like 90s, 30m, 12h or 90d, not {ttl!r}" in result.stderr
    assert _usable_key_ids(keys_database) == before


@pytest.mark.parametrize("ttl", ["0s", "0d", "000h"])
def test_a_zero_ttl_is_refused_rather_than_making_a_key_expired_at_once(keys_database, ttl):
    before = _usable_key_ids(keys_database)
    result = _billing("keys", "create", "--scope", "service", "--ttl", ttl, DATABASE_URL=keys_database)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--ttl must be longer than zero (the key would expire at once), not {ttl!r}" in result.stderr
    assert result.stdout == "" and _usable_key_ids(keys_database) == before


@pytest.mark.parametrize("user_id, message", [
    ("bad user!", "--user-id: user_id may hold letters, digits and _ . : @ | - only"),
    ("", "--user-id: user_id is required"),
    ("u" * 129, "--user-id: user_id is longer than 128 characters"),
])
def test_a_bad_user_id_is_a_usage_error_not_a_traceback(keys_database, user_id, message):
    result = _billing("keys", "create", "--scope", "user", "--user-id", user_id, DATABASE_URL=keys_database)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""


def test_a_user_key_names_its_user_and_only_a_user_key_does(keys_database):
    key = _create(keys_database, "--scope", "user", "--user-id", "alice", "--ttl", "1h")
    assert key["scope"] == "user" and key["user_id"] == "alice"
    for args in (["--scope", "user"], ["--scope", "service", "--user-id", "alice"],
                 ["--scope", "admin", "--user-id", "alice"]):
        result = _billing("keys", "create", *args, DATABASE_URL=keys_database)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "--user-id is required for user keys and only for them" in result.stderr
        assert result.stdout == ""


def test_an_unknown_scope_is_refused(keys_database):
    result = _billing("keys", "create", "--scope", "root", DATABASE_URL=keys_database)
    assert result.returncode == 2
    assert "invalid choice: 'root'" in result.stderr


def test_revoke_a_key_then_it_is_no_longer_usable(keys_database):
    key = _create(keys_database, "--scope", "service", "--ttl", "1h")
    assert key["key_id"] in _usable_key_ids(keys_database)
    result = _billing("keys", "revoke", key["key_id"], DATABASE_URL=keys_database)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "revoked"
    assert key["key_id"] not in _usable_key_ids(keys_database)
    again = _billing("keys", "revoke", key["key_id"], DATABASE_URL=keys_database)
    assert again.returncode == 1
    assert again.stdout.strip() == "no such key, or already revoked"


def test_revoke_an_unknown_key_fails_with_a_clear_message(keys_database):
    result = _billing("keys", "revoke", "bk_no_such_key", DATABASE_URL=keys_database)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.strip() == "no such key, or already revoked"


# ---------------------------------------------------------------- billing sign


def _sign_headers(output: str) -> dict[str, str]:
    """`billing sign` prints curl options: -H Name:value ..."""
    words = shlex.split(output)
    assert words[0::2] == ["-H"] * 3, output
    return dict(word.split(":", 1) for word in words[1::2])


def test_sign_needs_a_secret_and_takes_it_from_billing_key_secret():
    refused = _billing("sign", "--key-id", "bk_x", "GET", "/v1/billing/catalog")
    assert refused.returncode == 2
    assert "--secret or BILLING_KEY_SECRET is required" in refused.stderr
    from_environment = _billing("sign", "--key-id", "bk_x", "POST", "/v1/billing/consume", '{"a":1}',
                                BILLING_KEY_SECRET="bsk_test")
    assert from_environment.returncode == 0, from_environment.stderr
    headers = _sign_headers(from_environment.stdout)
    assert headers["X-HMAC-Key-Id"] == "bk_x"
    expected = SigningKey("bk_x", "bsk_test").rest_headers(
        "POST", "/v1/billing/consume", b'{"a":1}', timestamp=int(headers["X-HMAC-Timestamp"]))
    assert headers == expected


def _await_status(http, path: str, key: SigningKey, wanted, what: str) -> None:
    deadline = time.monotonic() + KEY_VISIBLE_SECONDS
    while not wanted(call(http, "GET", path, key=key)[0]):
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def test_a_cli_key_and_billing_sign_make_a_curl_call_the_server_accepts_until_revoked(http, e2e):
    """The README's recipe: keys create, BILLING_KEY_SECRET, curl ... $(billing sign ...), keys revoke."""
    user = new_user()
    create_account(http, user)
    created = _create(e2e.database_url, "--scope", "user", "--user-id", user, "--ttl", "1h")
    key = SigningKey(created["key_id"], created["secret"])
    _await_status(http, f"/v1/billing/balance/{user}", key, lambda status: status == 200,
                  "the server never saw the key billing keys create made")

    def curl(method: str, path: str, body: str = "") -> tuple[int, dict]:
        script = ('curl -s -o - -w "\\n%{http_code}" -X "$1" "127.0.0.1:$PORT$2" '
                  '-H "Content-Type: application/json" ${3:+-d "$3"} '
                  '$("$BILLING" sign --key-id "$KID" "$1" "$2" "${3:-}")')
        result = subprocess.run(
            ["bash", "-c", script, "curl", method, path, body], capture_output=True, text=True, timeout=60,
            env=dict(os.environ) | {
                "PORT": str(e2e.envoy.listen_port), "BILLING": str(BILLING), "KID": key.key_id,
                "BILLING_KEY_SECRET": key.secret},
        )
        assert result.returncode == 0, result.stderr
        reply, _, status = result.stdout.rpartition("\n")
        return int(status), json.loads(reply)

    status, balance = curl("GET", f"/v1/billing/balance/{user}")
    assert status == 200, balance
    assert balance["totals"]["total_seconds"] > 0  # the welcome bonus
    status, events = curl("GET", f"/v1/billing/events/{user}?limit=20")  # the query is signed as sent
    assert status == 200, events
    consume = json.dumps({"user_id": user, "operation": "build", "seconds": 5, "idempotency_key": uuid.uuid4().hex})
    status, consumed = curl("POST", "/v1/billing/consume", consume)
    assert status == 200, consumed
    status, refused = curl("GET", f"/v1/billing/balance/{new_user()}")
    assert status == 403 and refused["error"] == "PERMISSION_DENIED", refused

    revoked = _billing("keys", "revoke", key.key_id, DATABASE_URL=e2e.database_url)
    assert revoked.returncode == 0 and revoked.stdout.strip() == "revoked", revoked.stdout + revoked.stderr
    _await_status(http, f"/v1/billing/balance/{user}", key, lambda status: status == 401,
                  "the key kept working after billing keys revoke")
    status, body = curl("GET", f"/v1/billing/balance/{user}")
    assert status == 401 and body["error"] == "UNAUTHENTICATED", body
