"""`billing webhooks create|list|disable|enable|delete|rotate-secret|deliveries|replay`: outbound
webhook endpoints and their delivery log from a shell (issue 22), what the admin surface serves.

Built from the composition root (bootstrap.build_service) as `billing keys` is: one connection, no
change notifier (no wallet changes here). Prints the JSON the REST paths answer (proto field names);
a refusal is printed to stderr with its reason, exit code 1. BILLING_WEBHOOK_ALLOW_PRIVATE applies
as on the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any, Awaitable, Callable

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from billing.api import webhook_mapping
from billing.bootstrap import build_service
from billing.domain.errors import BillingError
from billing.domain.outbound_types import EVENT_TYPES
from billing.domain.webhook_endpoints import DELIVERY_STATUSES
from billing.service import delivery_log, webhook_endpoints
from billing.service.dependencies import Dependencies
from billing.settings import Settings

WEBHOOKS_POOL_SIZE = 1


def _instant(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since must be an RFC 3339 time such as 2026-12-01T00:00:00Z, not {text!r}")
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--since needs a time zone (Z or +hh:mm): {text!r}")
    return instant


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="billing webhooks", description="Outbound webhook endpoints and deliveries.")
    commands = top.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new endpoint; prints it with its secret, shown only here")
    create.add_argument("--url", required=True)
    create.add_argument("--event-type", action="append", default=[], dest="event_types", metavar="TYPE",
                        help=f"repeatable; none: every type ({', '.join(EVENT_TYPES)})")
    create.add_argument("--description", default="")
    commands.add_parser("list", help="the endpoints not deleted, oldest first")
    for name, what in (("disable", "nothing is sent to it until enabled"),
                       ("enable", "enabled; its failing streak and disabled reason cleared"),
                       ("delete", "soft delete; its pending deliveries fail"),
                       ("rotate-secret", "a new secret (printed); the previous one signs too for 24 h")):
        command = commands.add_parser(name, help=what)
        command.add_argument("endpoint_id")
    deliveries = commands.add_parser("deliveries", help="the delivery log, newest first, with the attempts")
    deliveries.add_argument("--endpoint-id", default="")
    deliveries.add_argument("--user-id", default="")
    deliveries.add_argument("--status", default="", choices=["", *DELIVERY_STATUSES])
    deliveries.add_argument("--limit", type=int, default=0, help="0: 50; at most 100")
    deliveries.add_argument("--page-token", default="")
    replay = commands.add_parser("replay", help="EVENT_ID: that event's deliveries; --since: failed ones since then")
    replay.add_argument("event_id", nargs="?")
    replay.add_argument("--since", type=_instant, help="failed deliveries created since this RFC 3339 time")
    replay.add_argument("--endpoint-id", default="", help="with --since: only this endpoint's")
    return top


def webhooks_main(argv: list[str], settings: Settings) -> int:
    top = parser()
    args = top.parse_args(argv)
    if args.command == "replay" and (args.event_id is None) == (args.since is None):
        top.error("replay takes an EVENT_ID or --since, one of them")
    if args.command == "replay" and args.event_id is not None and args.endpoint_id:
        top.error("--endpoint-id goes with --since")
    try:
        message = asyncio.run(_with_service(settings, lambda deps: _run(deps, args)))
    except BillingError as refused:
        where = f" ({refused.field})" if refused.field else ""
        print(f"billing webhooks: {refused.reason}{where}: {refused.message}", file=sys.stderr)
        return 1
    # As Envoy prints it (always_print_primitive_fields, proto field names).
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True,
                                   always_print_fields_with_no_presence=True)))
    return 0


async def _run(deps: Dependencies, args: argparse.Namespace) -> Message:
    command = args.command
    if command == "create":
        created = await webhook_endpoints.create_endpoint(deps, args.url, args.event_types, args.description)
        return webhook_mapping.endpoint_with_secret(created)
    if command == "list":
        return webhook_mapping.endpoints(await webhook_endpoints.list_endpoints(deps))
    if command == "disable":
        return webhook_mapping.endpoint(await webhook_endpoints.disable_endpoint(deps, args.endpoint_id))
    if command == "enable":
        return webhook_mapping.endpoint(await webhook_endpoints.enable_endpoint(deps, args.endpoint_id))
    if command == "delete":
        return webhook_mapping.deleted(await webhook_endpoints.delete_endpoint(deps, args.endpoint_id))
    if command == "rotate-secret":
        return webhook_mapping.endpoint_with_secret(await webhook_endpoints.rotate_secret(deps, args.endpoint_id))
    if command == "deliveries":
        page = await delivery_log.list_deliveries(
            deps, args.endpoint_id, args.user_id, args.status, args.limit, args.page_token)
        return webhook_mapping.deliveries(page)
    if args.event_id is not None:
        return webhook_mapping.replayed(await delivery_log.replay_event(deps, args.event_id))
    return webhook_mapping.replayed(await delivery_log.replay_failed(deps, args.since, args.endpoint_id))


async def _with_service(settings: Settings, work: Callable[[Dependencies], Awaitable[Any]]) -> Any:
    async with AsyncExitStack() as stack:
        service = await build_service(settings, stack, pool_size=WEBHOOKS_POOL_SIZE, announce_changes=False)
        return await work(service.deps)
