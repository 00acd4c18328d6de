"""The Stripe-Signature check, on its own: a delivery is verified or it is not, and nothing
else can come out of it.

Any exception inside this step means "not verified": the SDK's own check can raise more than
SignatureVerificationError on hostile input (a non-ASCII `v1` made `hmac.compare_digest` raise
TypeError, which was once taken for "verified, not JSON"). The header is first held to Stripe's
shape (ASCII, `t=<digits>` once, `v1=<64 lowercase hex>` a few times), the timestamp to the
tolerance in both directions against the service's clock, and only then is the SDK asked to
compare the HMAC. The payload is parsed only after this says yes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import stripe

from billing.service.ports import InvalidWebhook

TOLERANCE_SECONDS = 300
# Stripe sends t, one v1 per live secret (two during a rotation) and in test mode a v0; a
# header many times that long is an attack on the parser, not a delivery.
SIGNATURE_HEADER_LENGTH_MAX = 1024
SIGNATURE_ITEMS_MAX = 8
PAYLOAD_BYTES_MAX = 512 * 1024  # Stripe's events are a few KiB; Envoy's body limit is above this

_ITEM = re.compile(r"([a-z0-9]{1,8})=([A-Za-z0-9_]{0,128})\Z")
_TIMESTAMP = re.compile(r"[0-9]{1,12}\Z")
_V1 = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    v1_signatures: tuple[str, ...]


def parse_signature_header(header: str) -> SignatureHeader:
    """Stripe's header, strictly: anything else is refused with the reason (for the log line)."""
    if not header:
        raise InvalidWebhook("no Stripe-Signature header")
    if len(header) > SIGNATURE_HEADER_LENGTH_MAX:
        raise InvalidWebhook(f"Stripe-Signature longer than {SIGNATURE_HEADER_LENGTH_MAX} characters")
    if not header.isascii():
        raise InvalidWebhook("Stripe-Signature is not ASCII")
    items = header.split(",")
    if len(items) > SIGNATURE_ITEMS_MAX:
        raise InvalidWebhook(f"Stripe-Signature has more than {SIGNATURE_ITEMS_MAX} items")
    timestamps: list[str] = []
    v1: list[str] = []
    for item in items:
        matched = _ITEM.match(item)
        if matched is None:
            raise InvalidWebhook("Stripe-Signature is not a list of scheme=value items")
        scheme, value = matched.groups()
        if scheme == "t":
            timestamps.append(value)
        elif scheme == "v1":
            if _V1.match(value) is None:
                raise InvalidWebhook("a v1 signature is not 64 lowercase hex digits")
            v1.append(value)
    if len(timestamps) != 1 or _TIMESTAMP.match(timestamps[0]) is None:
        raise InvalidWebhook("Stripe-Signature needs exactly one t=<unix seconds>")
    if not v1:
        raise InvalidWebhook("Stripe-Signature has no v1 signature")
    return SignatureHeader(int(timestamps[0]), tuple(v1))


def verify_signature(payload: bytes, header: str, secrets: tuple[str, ...], now_unix: int) -> None:
    """Returns when one of `secrets` signed `payload` at a time within the tolerance of `now_unix`;
    raises InvalidWebhook (with the reason) in every other case, whatever goes wrong inside."""
    try:
        _verify(payload, header, secrets, now_unix)
    except InvalidWebhook:
        raise
    except Exception as unexpected:  # noqa: BLE001 - a failure to verify is a refusal, never a pass
        raise InvalidWebhook(f"the signature check failed: {type(unexpected).__name__}") from None


def _verify(payload: bytes, header: str, secrets: tuple[str, ...], now_unix: int) -> None:
    if not isinstance(payload, bytes) or not isinstance(header, str):
        raise InvalidWebhook("payload and header of the wrong type")
    if len(payload) > PAYLOAD_BYTES_MAX:
        raise InvalidWebhook(f"payload over {PAYLOAD_BYTES_MAX} bytes")
    parsed = parse_signature_header(header)
    if abs(now_unix - parsed.timestamp) > TOLERANCE_SECONDS:
        raise InvalidWebhook(f"Stripe-Signature timestamp outside {TOLERANCE_SECONDS} s of now")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidWebhook("Stripe signs UTF-8 JSON; this payload is not UTF-8") from None
    for secret in secrets:  # two during a rotation
        if _sdk_verifies(text, header, secret):
            return
    raise InvalidWebhook("no webhook secret verifies the Stripe-Signature header")


def _sdk_verifies(text: str, header: str, secret: str) -> bool:
    try:
        # tolerance=None: the window was checked above, both ways, on the service's clock.
        stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
    except Exception:  # noqa: BLE001 - SignatureVerificationError or anything else: not this secret
        return False
    return True
