"""Webhook endpoints on the admin surface (issue 22): create, list, disable, enable, delete, rotate the secret.

Not per account, so no wallet change: each write is one transaction that locks the endpoint's row
(the sender's own updates of it, a 410 disabling it say, wait for it). The secret is shown only in
the answers to create and rotate.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from billing.domain.errors import InvalidArgument, WebhookEndpointNotFound
from billing.domain.webhook_endpoints import (
    ENDPOINT_DELETED, ENDPOINT_ID_PREFIX, SECRET_BYTES, WebhookEndpoint, require_description, require_endpoint_id,
    require_event_types, secret_from_bytes,
)
from billing.service.dependencies import Dependencies
from billing.service.ports import UnitOfWork


@dataclass(frozen=True)
class EndpointWithSecret:
    """An endpoint and its signing secret: the only answers that show the secret."""

    endpoint: WebhookEndpoint
    secret: str


@dataclass(frozen=True)
class DeletedEndpoint:
    endpoint: WebhookEndpoint
    failed_deliveries: int  # its pending deliveries, now failed


def new_secret() -> str:
    return secret_from_bytes(secrets.token_bytes(SECRET_BYTES))


def new_endpoint_id() -> str:
    return ENDPOINT_ID_PREFIX + secrets.token_hex(12)


async def create_endpoint(
    deps: Dependencies, url: str, event_types: list[str] | tuple[str, ...], description: str,
) -> EndpointWithSecret:
    types = require_event_types(event_types)
    description = require_description(description)
    refused = await deps.webhook_target_check().refused_reason(url)
    if refused is not None:
        raise InvalidArgument(refused, field="url")
    now = deps.clock.now()
    secret = new_secret()
    endpoint = WebhookEndpoint(
        endpoint_id=new_endpoint_id(), url=url, event_types=types, description=description, enabled=True,
        disabled_reason=None, secret=secret, previous_secret=None, previous_secret_until=None, failing_since=None,
        created_at=now, updated_at=now,
    )
    async with deps.storage.transaction() as uow:
        await uow.webhook_endpoints.add(endpoint)
        await uow.commit()
    return EndpointWithSecret(endpoint, secret)


async def list_endpoints(deps: Dependencies) -> list[WebhookEndpoint]:
    async with deps.storage.reader() as uow:
        return await uow.webhook_endpoints.listed()


async def disable_endpoint(deps: Dependencies, endpoint_id: str) -> WebhookEndpoint:
    """Paused: nothing is sent to it until enabled; its deliveries, and those of the events written
    meanwhile, wait and then go in order (the sender's rule for disabled endpoints)."""
    return await _changed(deps, endpoint_id, WebhookEndpoint.disabled)


async def enable_endpoint(deps: Dependencies, endpoint_id: str) -> WebhookEndpoint:
    """Enabled with a clean slate: its failing streak (failing_since) and disabled_reason cleared."""
    return await _changed(deps, endpoint_id, WebhookEndpoint.reenabled)


async def _changed(
    deps: Dependencies, endpoint_id: str, change: Callable[[WebhookEndpoint, datetime], WebhookEndpoint],
) -> WebhookEndpoint:
    now = deps.clock.now()
    async with deps.storage.transaction() as uow:
        endpoint = change(await _locked(uow, endpoint_id), now)
        await uow.webhook_endpoints.put(endpoint)
        await uow.commit()
    return endpoint


async def delete_endpoint(deps: Dependencies, endpoint_id: str) -> DeletedEndpoint:
    """Soft delete (deleted_at; its log stays readable); its pending deliveries fail with a reason.

    Locks in the sender's order: the turn of the lines (no dispatch meanwhile, so no delivery is
    written for it after its pending ones failed), its deliveries, then its row; a record locks its
    delivery, then the endpoint's row. The other order could deadlock with a record in flight."""
    now = deps.clock.now()
    async with deps.storage.transaction() as uow:
        await _existing(uow, endpoint_id)
        failed = await uow.webhook_endpoints.fail_pending_deliveries(endpoint_id, ENDPOINT_DELETED, now)
        endpoint = (await _locked(uow, endpoint_id)).deleted(now)
        await uow.webhook_endpoints.put(endpoint)
        await uow.commit()
    return DeletedEndpoint(endpoint, failed)


async def rotate_secret(deps: Dependencies, endpoint_id: str) -> EndpointWithSecret:
    """A new secret; the one it replaces signs too for 24 h (previous_secret_until)."""
    now = deps.clock.now()
    secret = new_secret()
    async with deps.storage.transaction() as uow:
        endpoint = (await _locked(uow, endpoint_id)).rotated(secret, now)
        await uow.webhook_endpoints.put(endpoint)
        await uow.commit()
    return EndpointWithSecret(endpoint, secret)


async def _existing(uow: UnitOfWork, endpoint_id: str) -> WebhookEndpoint:
    return await _locked(uow, endpoint_id, lock=False)


async def _locked(uow: UnitOfWork, endpoint_id: str, lock: bool = True) -> WebhookEndpoint:
    require_endpoint_id(endpoint_id)
    endpoint = await uow.webhook_endpoints.get(endpoint_id, lock=lock)
    if endpoint is None or endpoint.deleted_at is not None:
        raise WebhookEndpointNotFound(f"no webhook endpoint {endpoint_id}", field="endpoint_id")
    return endpoint
