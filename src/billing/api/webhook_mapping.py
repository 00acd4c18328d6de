"""Webhook endpoints and the delivery log (issue 22) as billing.v1 messages; never the stored secrets."""

from __future__ import annotations

from billing.api.mapping import saturate_int32, timestamp
from billing.domain.webhook_endpoints import Delivery, DeliveryAttempt, WebhookEndpoint
from billing.service.delivery_log import DeliveryPage, Replayed
from billing.service.webhook_endpoints import DeletedEndpoint, EndpointWithSecret
from billing.v1 import webhooks_pb2


def endpoint(value: WebhookEndpoint) -> webhooks_pb2.WebhookEndpoint:
    message = webhooks_pb2.WebhookEndpoint(
        endpoint_id=value.endpoint_id, url=value.url, event_types=list(value.event_types), enabled=value.enabled,
        created_at=timestamp(value.created_at), description=value.description,
    )
    if value.disabled_reason is not None and not value.enabled:
        message.disabled_reason = value.disabled_reason
    return message


def endpoint_with_secret(value: EndpointWithSecret) -> webhooks_pb2.WebhookEndpointWithSecret:
    return webhooks_pb2.WebhookEndpointWithSecret(endpoint=endpoint(value.endpoint), secret=value.secret)


def endpoints(values: list[WebhookEndpoint]) -> webhooks_pb2.ListWebhookEndpointsResponse:
    return webhooks_pb2.ListWebhookEndpointsResponse(endpoints=[endpoint(v) for v in values])


def deleted(value: DeletedEndpoint) -> webhooks_pb2.DeleteWebhookEndpointResponse:
    return webhooks_pb2.DeleteWebhookEndpointResponse(
        endpoint=endpoint(value.endpoint), failed_deliveries=saturate_int32(value.failed_deliveries))


def attempt(value: DeliveryAttempt) -> webhooks_pb2.WebhookAttempt:
    message = webhooks_pb2.WebhookAttempt(
        attempted_at=timestamp(value.attempted_at), latency_ms=saturate_int32(value.latency_ms),
        response_excerpt=value.response_excerpt,
    )
    if value.status_code is not None:
        message.status_code = value.status_code
    if value.error is not None:
        message.error = value.error
    return message


def delivery(value: Delivery) -> webhooks_pb2.WebhookDelivery:
    message = webhooks_pb2.WebhookDelivery(
        event_id=value.event_id, event_type=value.event_type, user_id=value.account_id,
        endpoint_id=value.endpoint_id, status=value.status, attempts=saturate_int32(value.attempts),
        created_at=timestamp(value.created_at), attempt_log=[attempt(a) for a in value.attempt_log],
    )
    if value.next_attempt_at is not None:
        message.next_attempt_at.CopyFrom(timestamp(value.next_attempt_at))
    if value.finished_at is not None:
        message.finished_at.CopyFrom(timestamp(value.finished_at))
    if value.last_status_code is not None:
        message.last_status_code = value.last_status_code
    if value.last_error is not None:
        message.last_error = value.last_error
    return message


def deliveries(page: DeliveryPage) -> webhooks_pb2.ListWebhookDeliveriesResponse:
    return webhooks_pb2.ListWebhookDeliveriesResponse(
        deliveries=[delivery(d) for d in page.deliveries], next_page_token=page.next_page_token)


def replayed(value: Replayed) -> webhooks_pb2.ReplayWebhookDeliveriesResponse:
    return webhooks_pb2.ReplayWebhookDeliveriesResponse(replayed=saturate_int32(value.replayed), more=value.more)
