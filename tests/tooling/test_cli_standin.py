"""`billing-dev stripe-secret`, `billing-dev clock`, and the stand-in `billing-dev run` starts: the local money workflow."""

from __future__ import annotations

import pytest
import stripe

from devstack import cli, run
from devstack import clock as local_clock
from billing import settings as settings_module
from billing.settings import Settings
from devstack.standin.stripe_standin import StripeStandin

from tests.support.stripe_standin_harness import FEB_29, JAN_31, SECRET, Clock, receiver, subscribed  # noqa: F401

DAY = 86400


@pytest.fixture
def local_files(tmp_path, monkeypatch):
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "BILLING_CLOCK_OFFSET_SECONDS",
                 "BILLING_CLOCK_OFFSET_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("BILLING_STRIPE_STANDIN_PORT", raising=False)
    monkeypatch.setattr(settings_module, "STANDIN_FILES", tmp_path)
    return monkeypatch


def test_the_local_webhook_secret_is_kept_printed_and_given_way_to_stripe_webhook_secret(local_files, capsys):
    assert cli.main(["stripe-secret"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("whsec_") and local_clock.local_webhook_secret() == printed  # the same every time
    assert (local_clock.webhook_secret_file().stat().st_mode & 0o777) == 0o600

    local_files.setenv("STRIPE_WEBHOOK_SECRET", "whsec_mine,whsec_old")
    assert cli.main(["stripe-secret"]) == 0 and capsys.readouterr().out.strip() == "whsec_mine"
    local_files.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/billing")
    standin, server_env = run._stripe_standin(Settings.from_environment())
    assert server_env["STRIPE_WEBHOOK_SECRET"] == "whsec_mine,whsec_old"  # honoured, not overridden
    assert standin._env is not None and standin._env["STRIPE_WEBHOOK_SECRET"] == "whsec_mine"  # signs with it
    assert server_env["BILLING_CLOCK_OFFSET_FILE"] == str(local_clock.clock_offset_file())
    assert local_clock.webhook_secret_file().parent == settings_module.STANDIN_FILES  # the default port's
    assert "--state" in standin._argv

    local_files.setenv("STRIPE_SECRET_KEY", "sk_test_real")
    assert cli.main(["stripe-secret"]) == 1


def test_clock_advance_moves_the_stand_in_and_the_server_offset_together(local_files, receiver, capsys):
    clock = Clock(JAN_31)
    with StripeStandin(webhook_url=receiver.url, webhook_secret=SECRET, clock=clock, tick_seconds=None) as standin:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.api_base}, max_network_retries=0)
        sub_id = subscribed(client, standin, receiver)
        port = standin.api_base.rsplit(":", 1)[1]
        local_files.setenv("BILLING_STRIPE_STANDIN_PORT", port)
        assert local_clock.clock_offset_file() == settings_module.STANDIN_FILES / f"port-{port}" / "clock-offset"
        local_files.setattr(local_clock.time, "time", lambda: float(JAN_31))

        assert cli.main(["clock", "advance", "30d"]) == 0
        assert standin.now() == JAN_31 + 30 * DAY and local_clock.read_offset() == 30 * DAY
        assert receiver.types() == ["customer.subscription.updated", "invoice.paid"]  # Feb 29 was on the way
        assert receiver.events[1].data.object.created == FEB_29
        assert "2 events on the way: customer.subscription.updated, invoice.paid" in capsys.readouterr().out
        assert client.v1.subscriptions.retrieve(sub_id).status == "active"

        local_clock.clock_offset_file().unlink()  # a clock behind the stand-in catches up with it
        assert cli.main(["clock", "advance", "1h"]) == 0
        assert local_clock.read_offset() == 30 * DAY + 3600 == standin.now() - JAN_31
        assert cli.main(["clock"]) == 0 and "30d 1h 0m ahead" in capsys.readouterr().out

    assert cli.main(["clock", "advance", "1d"]) == 1  # nobody answers: nothing moved
    assert local_clock.read_offset() == 30 * DAY + 3600
    local_files.setenv("STRIPE_SECRET_KEY", "sk_live_x")
    assert cli.main(["clock", "advance", "1d"]) == 1


@pytest.mark.parametrize("text, seconds", [("3600", 3600), ("90m", 5400), ("12h", 43200), ("31d", 31 * DAY)])
def test_durations(text, seconds):
    assert local_clock.parse_duration(text) == seconds
