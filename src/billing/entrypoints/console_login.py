"""`billing console-login`: a one-time URL that signs the operator console in with a new short-lived
admin key (service/console_login.py). The code is printed once, in the URL's fragment (never sent to
a server by the browser: the console reads it and redeems it over the internal listener)."""

from __future__ import annotations

import argparse
import asyncio
import json
from contextlib import AsyncExitStack
from datetime import datetime, timedelta

from billing.adapters.key_secrets import new_key_id
from billing.bootstrap import build_service
from billing.domain.console_login import CONSOLE_KEY_TTL, CONSOLE_KEY_TTL_MAX
from billing.entrypoints.keys import KEYS_POOL_SIZE, parse_ttl
from billing.service.console_login import ConsoleLogin, mint_console_login
from billing.settings import Settings

CONSOLE_PATH = "/console/"


def console_login_main(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(
        prog="billing console-login",
        description="prints a one-time URL (valid 10 minutes, usable once) that signs the console in")
    parser.add_argument("--ttl", type=parse_ttl, default=CONSOLE_KEY_TTL,
                        help=f"how long the console's admin key lives (default 8h, at most {CONSOLE_KEY_TTL_MAX})")
    parser.add_argument("--json", action="store_true", help="print the URL, the key id and the expiries as JSON")
    args = parser.parse_args(argv)
    if args.ttl > CONSOLE_KEY_TTL_MAX:
        parser.error(f"--ttl: at most {CONSOLE_KEY_TTL_MAX}")
    login = asyncio.run(_mint(settings, args.ttl))
    url = console_url(settings, login.code)
    if args.json:
        print(json.dumps({"url": url, "key_id": login.key.key_id, "key_expires_at": _rfc3339(login.key.expires_at),
                          "code_expires_at": _rfc3339(login.code_expires_at)}))
    else:
        print(url)
        print(f"(usable once, until {_rfc3339(login.code_expires_at)}; signs in as {login.key.key_id} "
              f"until {_rfc3339(login.key.expires_at)})")
    return 0


# A listener bound to every address is reached on this machine at the loopback one (a browser
# cannot open 0.0.0.0 everywhere, and the URL must not suggest the console is meant to be public).
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]", "": "127.0.0.1"}


def console_url(settings: Settings, code: str) -> str:
    host, port = settings.edge.admin_rest_host, settings.edge.admin_rest_port
    host = _WILDCARD_HOSTS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    return f"http://{host}:{port}{CONSOLE_PATH}#login={code}"


async def _mint(settings: Settings, ttl: timedelta) -> ConsoleLogin:
    async with AsyncExitStack() as stack:
        service = await build_service(settings, stack, pool_size=KEYS_POOL_SIZE, announce_changes=False)
        return await mint_console_login(service.deps, new_key_id(), ttl)


def _rfc3339(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")
