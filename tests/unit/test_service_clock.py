"""The service's clock ahead of the wall clock, for local and test use only."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from devstack import clock as local_clock
from billing import settings as settings_module
from billing.adapters.clock import OffsetClock, SystemClock, service_clock
from billing.settings import Settings

DAY = 86400


@pytest.fixture
def environment(monkeypatch, tmp_path):
    monkeypatch.setattr(settings_module, "STANDIN_FILES", tmp_path / "stripe-standin")  # not a developer's local clock
    monkeypatch.delenv("BILLING_STRIPE_STANDIN_PORT", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/billing")
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "BILLING_CLOCK_OFFSET_SECONDS",
                 "BILLING_CLOCK_OFFSET_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_clock_runs_the_offset_and_the_file_ahead_and_follows_the_file(tmp_path):
    offset_file = tmp_path / "clock-offset"
    clock = OffsetClock(DAY, offset_file)
    before = datetime.now(timezone.utc)
    assert before + timedelta(days=1) <= clock.now() <= datetime.now(timezone.utc) + timedelta(days=1)
    offset_file.write_text(f"{30 * DAY}\n")
    assert clock.now() >= before + timedelta(days=31)
    replacement = tmp_path / "next"
    replacement.write_text(str(60 * DAY))
    os.replace(replacement, offset_file)  # as `billing-dev clock advance` writes it
    assert clock.now() >= before + timedelta(days=61)
    offset_file.write_text("not yet a number")
    assert clock.now() >= before + timedelta(days=61)  # the last good reading stays


def test_without_an_offset_the_service_reads_the_wall_clock(tmp_path):
    assert isinstance(service_clock(0, None), SystemClock)
    assert isinstance(service_clock(0, tmp_path / "x"), OffsetClock)


def test_an_offset_is_read_from_the_environment_and_allowed_without_stripe_or_with_the_stand_in(environment, tmp_path):
    environment.setenv("BILLING_CLOCK_OFFSET_SECONDS", str(DAY))
    environment.setenv("BILLING_CLOCK_OFFSET_FILE", str(tmp_path / "clock-offset"))
    settings = Settings.from_environment()
    assert (settings.clock.offset_seconds, settings.clock.offset_file) == (DAY, tmp_path / "clock-offset")
    environment.setenv("STRIPE_SECRET_KEY", "sk_test_local_standin")
    environment.setenv("STRIPE_WEBHOOK_SECRET", "whsec_x")
    environment.setenv("STRIPE_API_BASE", "http://127.0.0.1:12111")
    assert Settings.from_environment().payments.stripe is not None


@pytest.mark.parametrize("key, api_base", [
    ("sk_test_x", None), ("sk_live_x", None), ("sk_test_x", "https://api.stripe.com"), ("sk_live_x", "http://127.0.0.1:1"),
])
@pytest.mark.parametrize("offset", [("BILLING_CLOCK_OFFSET_SECONDS", "60"), ("BILLING_CLOCK_OFFSET_FILE", "/tmp/o")])
def test_an_offset_is_refused_at_startup_with_real_stripe(environment, key, api_base, offset):
    environment.setenv(*offset)
    environment.setenv("STRIPE_SECRET_KEY", key)
    environment.setenv("STRIPE_WEBHOOK_SECRET", "whsec_x")
    if api_base:
        environment.setenv("STRIPE_API_BASE", api_base)
    with pytest.raises(SystemExit, match="refused with a real STRIPE_SECRET_KEY"):
        Settings.from_environment()


@pytest.mark.parametrize("value", ["-5", "1.5", "soon"])
def test_an_offset_that_is_not_whole_seconds_ahead_is_refused(environment, value):
    environment.setenv("BILLING_CLOCK_OFFSET_SECONDS", value)
    with pytest.raises(SystemExit, match="BILLING_CLOCK_OFFSET_SECONDS"):
        Settings.from_environment()


def test_without_a_setting_a_shell_follows_the_local_clock_of_billing_run(environment):
    """`billing tick` (or a server) started from a shell, no Stripe: the offset `billing-dev clock advance` wrote."""
    assert Settings.from_environment().clock.offset_file is None  # the local clock never advanced: none
    local = local_clock.clock_offset_file()
    local.parent.mkdir(parents=True)
    local.write_text(f"{31 * DAY}\n")
    settings = Settings.from_environment()
    assert settings.clock.offset_file == local
    before = datetime.now(timezone.utc)
    assert service_clock(settings.clock.offset_seconds, settings.clock.offset_file).now() >= before + timedelta(days=31)
    environment.setenv("STRIPE_SECRET_KEY", "sk_test_local_standin")  # the stand-in: the same clock
    environment.setenv("STRIPE_WEBHOOK_SECRET", "whsec_x")
    environment.setenv("STRIPE_API_BASE", "http://127.0.0.1:12111")
    assert Settings.from_environment().clock.offset_file == local
    environment.setenv("BILLING_CLOCK_OFFSET_FILE", "")  # said: none
    assert Settings.from_environment().clock.offset_file is None


def test_with_real_stripe_the_local_clock_is_not_followed(environment):
    local = local_clock.clock_offset_file()
    local.parent.mkdir(parents=True)
    local.write_text(f"{31 * DAY}\n")
    environment.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    environment.setenv("STRIPE_WEBHOOK_SECRET", "whsec_x")
    settings = Settings.from_environment()  # not refused: nothing was asked for
    assert settings.clock.offset_file is None
