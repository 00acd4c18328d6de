"""`billing-dev clock` and `billing-dev stripe-secret`: the local Stripe stand-in of `make run` (no STRIPE_SECRET_KEY),
its files under .data/stripe-standin/, and the one local clock the stand-in and the server share.

    billing-dev stripe-secret          # the whsec_... the stand-in signs webhooks with (and the server checks)
    billing-dev clock                  # the local time, and how far it runs ahead of the wall clock
    billing-dev clock advance 31d      # live through 31 days: renewals, rollovers, redeliveries (also 12h, 90m, 3600)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Where the stand-in keeps its files (per port) and its port are settings (Settings read the local clock's file).
from billing.settings import local_clock_offset_file, standin_dir, standin_port, webhook_secrets
from billing.settings import text as settings_text


def state_file() -> Path:
    return standin_dir() / "state.json"


def webhook_secret_file() -> Path:
    return standin_dir() / "webhook-secret"


def clock_offset_file() -> Path:
    """BILLING_CLOCK_OFFSET_FILE of the server under `billing-dev run` (and of a shell's Settings by default)."""
    return local_clock_offset_file()


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)([smhd]?)$")


def local_webhook_secret() -> str:
    """STRIPE_WEBHOOK_SECRET when set (the first, while rotating), else the one kept under .data/ (made once)."""
    configured = webhook_secrets()
    if configured:
        return configured[0]
    if webhook_secret_file().exists():
        return webhook_secret_file().read_text().strip()
    secret = "whsec_" + secrets.token_hex(24)
    _write_atomically(webhook_secret_file(), secret + "\n", mode=0o600)
    return secret


def stripe_secret_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="billing-dev stripe-secret",
        description="Print the webhook signing secret of the local Stripe stand-in under `make run` "
                    "(STRIPE_WEBHOOK_SECRET when set, else the one kept in .data/stripe-standin/webhook-secret; "
                    "another BILLING_STRIPE_STANDIN_PORT has its own, in .data/stripe-standin/port-N/).",
    )
    parser.parse_args(argv)
    if _real_stripe():
        print("billing-dev stripe-secret: STRIPE_SECRET_KEY is set: the secret is Stripe's (the Dashboard or "
              "`stripe listen`), not a local one", file=sys.stderr)
        return 1
    print(local_webhook_secret())
    return 0


def clock_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="billing-dev clock",
        description="The local clock under `make run` (the stand-in's and the server's together). Without a "
                    "command: show it.",
    )
    commands = parser.add_subparsers(dest="command")
    advance = commands.add_parser("advance", help="move the local clock ahead: what falls due happens, in order")
    advance.add_argument("duration", type=parse_duration, help="whole seconds, or a number with s, m, h or d")
    args = parser.parse_args(argv)
    if _real_stripe():
        print("billing-dev clock: STRIPE_SECRET_KEY is set: the clock only moves with the local stand-in "
              "(the server refuses BILLING_CLOCK_OFFSET_* with real Stripe)", file=sys.stderr)
        return 1
    base = f"http://127.0.0.1:{standin_port()}"
    try:
        standin_now = int(_call(base, "GET", "/_standin/clock")["now"])
        if args.command != "advance":
            _show(standin_now)
            return 0
        # Both clocks land on the same instant, even when one of them was ahead (a file removed by hand).
        target = max(standin_now, int(time.time()) + read_offset()) + args.duration
        _write_atomically(clock_offset_file(), f"{target - int(time.time())}\n")  # the server's first
        answer = _call(base, "POST", "/_standin/clock/advance", {"to": target})
    except (OSError, ValueError, KeyError) as error:
        print(f"billing-dev clock: the local Stripe stand-in does not answer on {base} ({error}); start `make run` "
              "first (without STRIPE_SECRET_KEY)", file=sys.stderr)
        return 1
    _show(int(answer["now"]))
    if answer["events"]:
        events = {event["id"]: event["type"] for event in _call(base, "GET", "/_standin/events")}
        print(f"{len(answer['events'])} events on the way: " + ", ".join(events[i] for i in answer["events"]))
    return 0


def read_offset() -> int:
    try:
        text = clock_offset_file().read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 0


def parse_duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: whole seconds, or a number with s, m, h or d (e.g. 31d)")
    return int(match.group(1)) * UNITS[match.group(2) or "s"]


def _show(now: int) -> None:
    ahead = max(0, now - int(time.time()))
    shown = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"local clock: {shown} ({ahead // 86400}d {ahead % 86400 // 3600}h {ahead % 3600 // 60}m ahead of the wall clock)")


def _real_stripe() -> bool:
    from devstack.run import STANDIN_SECRET_KEY

    key = settings_text("STRIPE_SECRET_KEY").strip()
    return bool(key) and key != STANDIN_SECRET_KEY


def _call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=120) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ValueError(error.read().decode(errors="replace")) from None


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(temporary, path)
