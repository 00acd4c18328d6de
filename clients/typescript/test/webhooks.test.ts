import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterEach, describe, mock, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import {
  BILLING_WEBHOOK_EVENT_TYPES, WebhookVerificationError, isBillingWebhookEventType, isKnownBillingWebhookEvent,
  verifyBillingWebhook, type BillingWebhookEvent, type UnknownBillingWebhookEvent,
} from '../src/webhooks.js';

interface Delivery {
  timestamp: number;
  headers: Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string>;
  body: string;
}

// Signed by the service's own code (scripts/webhook_fixtures.py: real outbox payloads, canonical_body,
// adapters/webhook_http.signature_headers); tests/unit/test_typescript_client.py keeps them in step.
function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../../test/fixtures/webhook_${name}.json`, import.meta.url), 'utf8')) as T;
}
const { secret: SECRET, deliveries } = fixture<{ secret: string; deliveries: Delivery[] }>('deliveries');
const rotation = fixture<{ secret: string; previous_secret: string; delivery: Delivery }>('rotation');
const OTHER_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

/** This machine's clock at `unixSeconds` (standardwebhooks reads Date.now()). */
function clockAt(unixSeconds: number): void {
  mock.method(Date, 'now', () => unixSeconds * 1000);
}

function refused(run: () => unknown, message: RegExp): void {
  assert.throws(run, (error: unknown) => error instanceof WebhookVerificationError && message.test(error.message));
}

afterEach(() => mock.restoreAll());

/** Compile-time too: `data` is typed by `type`, and the switch covers the catalogue (`never` left). */
function summary(event: BillingWebhookEvent): string {
  const { totals } = event.data;
  switch (event.type) {
    case 'balance.low':
      return `below ${event.data.threshold_seconds}s, ${totals.total_seconds}s left`;
    case 'balance.depleted':
    case 'balance.recovered':
      return `${event.type} at ${totals.total_seconds}s`;
    case 'credit.granted':
      return `+${event.data.events[0]?.seconds}s (${event.data.source}): ${event.data.events[0]?.reason}`;
    case 'credit.expiring':
      return `${event.data.seconds_at_risk}s expire at ${event.data.expires_at}`;
    case 'credit.expired':
      return `${event.data.expired_seconds}s expired`;
    case 'topup.succeeded':
      return `top-up ${event.data.package_key}`;
    case 'topup.failed':
      return `top-up failed ${event.data.failures}x: ${event.data.last_failure}, again ${event.data.retry_at ?? 'never'}`;
    case 'topup.disabled':
      return `top-up off: ${event.data.last_failure}`;
    case 'subscription.canceled':
      return `${event.data.plan_key} canceled${event.data.at_period_end ? ' at period end' : ''}`;
    case 'subscription.activated':
    case 'subscription.renewed':
    case 'subscription.changed':
    case 'subscription.past_due':
      return `${event.type} ${event.data.previous_plan_key} -> ${event.data.plan_key}`;
    case 'refund.applied':
      return `refund ${event.data.payment_id}: -${event.data.removed_seconds}s`;
    case 'hold.expired':
      return `hold ${event.data.hold_id}: ${event.data.committed_seconds}s kept, ${event.data.released_seconds}s back`;
    default: {
      const none: never = event;
      return none;
    }
  }
}

describe('deliveries signed by the service', () => {
  test('the fixtures hold the common types', () => {
    const types = new Set(deliveries.map((d) => JSON.parse(d.body).type as string));
    for (const type of ['credit.granted', 'balance.low', 'balance.depleted', 'balance.recovered', 'hold.expired']) {
      assert.ok(types.has(type), type);
    }
  });

  for (const delivery of deliveries) {
    const sent = JSON.parse(delivery.body) as BillingWebhookEvent;
    test(`${sent.type} verifies as text, Buffer and Uint8Array, and is the body parsed`, () => {
      clockAt(delivery.timestamp);
      const bytes = Buffer.from(delivery.body, 'utf8');
      for (const raw of [delivery.body, bytes, new Uint8Array(bytes)]) {
        const event = verifyBillingWebhook(raw, delivery.headers, SECRET);
        assert.deepEqual(event, sent);
        assert.ok(isKnownBillingWebhookEvent(event));
        assert.equal(event.id, delivery.headers['webhook-id']);
        assert.equal(typeof summary(event), 'string');
      }
    });
  }

  test('typed fields read as the service wrote them (UTF-8 reason, totals, threshold, hold)', () => {
    const events = deliveries.map((d) => {
      clockAt(d.timestamp);
      const event = verifyBillingWebhook(d.body, d.headers, SECRET);
      assert.ok(isKnownBillingWebhookEvent(event));
      return event;
    });
    const lines = events.map(summary);
    assert.ok(lines.includes('+1200s (gift): désolé ☕: the outage'), lines.join('\n'));
    assert.ok(lines.includes('below 600s, 599s left'));
    assert.ok(lines.includes('hold render-7: 0s kept, 1100s back'));
    const low = events.find((e) => e.type === 'balance.low');
    assert.deepEqual(Object.keys(low!.data.totals).sort(),
      ['bonus_seconds', 'held_seconds', 'next_expiry_at', 'paid_seconds', 'total_seconds']);
  });

  test('headers as node:http gives them, in any case, or as fetch Headers', () => {
    const [delivery] = deliveries;
    clockAt(delivery!.timestamp);
    const nodeHeaders: IncomingHttpHeaders = { ...delivery!.headers, 'content-type': 'application/json', host: 'x' };
    const shouted = Object.fromEntries(Object.entries(delivery!.headers).map(([k, v]) => [k.toUpperCase(), v]));
    for (const headers of [nodeHeaders, shouted, new Headers(delivery!.headers)]) {
      assert.equal(verifyBillingWebhook(delivery!.body, headers, SECRET).id, delivery!.headers['webhook-id']);
    }
  });
});

describe('what is refused (WebhookVerificationError: answer 400)', () => {
  const delivery = deliveries.find((d) => d.body.includes('"balance.low"'))!;

  test('a body changed by one character, or parsed and serialized again', () => {
    clockAt(delivery.timestamp);
    const changed = delivery.body.replace('"total_seconds":599', '"total_seconds":999');
    assert.notEqual(changed, delivery.body);
    refused(() => verifyBillingWebhook(changed, delivery.headers, SECRET), /No matching signature/);
    const pretty = JSON.stringify(JSON.parse(delivery.body), null, 2);
    refused(() => verifyBillingWebhook(pretty, delivery.headers, SECRET), /No matching signature/);
  });

  test('another secret, another id or another timestamp', () => {
    clockAt(delivery.timestamp);
    refused(() => verifyBillingWebhook(delivery.body, delivery.headers, OTHER_SECRET), /No matching signature/);
    const otherId = { ...delivery.headers, 'webhook-id': 'evt_aaaaaaaaaaaaaaaaaaaaaaaa' };
    refused(() => verifyBillingWebhook(delivery.body, otherId, SECRET), /No matching signature/);
    const otherTime = { ...delivery.headers, 'webhook-timestamp': String(delivery.timestamp - 1) };
    refused(() => verifyBillingWebhook(delivery.body, otherTime, SECRET), /No matching signature/);
  });

  test('a timestamp more than 5 minutes from this clock, either way', () => {
    clockAt(delivery.timestamp + 300);
    assert.ok(verifyBillingWebhook(delivery.body, delivery.headers, SECRET));
    clockAt(delivery.timestamp + 301);
    refused(() => verifyBillingWebhook(delivery.body, delivery.headers, SECRET), /too old/);
    clockAt(delivery.timestamp - 301);
    refused(() => verifyBillingWebhook(delivery.body, delivery.headers, SECRET), /too new/);
  });

  test('a missing or empty header', () => {
    clockAt(delivery.timestamp);
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
      const { [name]: _gone, ...rest } = delivery.headers;
      refused(() => verifyBillingWebhook(delivery.body, rest, SECRET), /Missing required headers/);
      refused(() => verifyBillingWebhook(delivery.body, { ...delivery.headers, [name]: '' }, SECRET), /Missing/);
    }
  });

  test('correctly signed but not an event: not JSON, not an object, an id other than webhook-id', () => {
    const now = Math.floor(Date.now() / 1000);
    clockAt(now);
    const signed = (id: string, body: string | Uint8Array) => ({
      'webhook-id': id, 'webhook-timestamp': String(now),
      'webhook-signature': new Webhook(SECRET).sign(id, new Date(now * 1000), body),
    });
    refused(() => verifyBillingWebhook('not json', signed('evt_x', 'not json'), SECRET), /not JSON/);
    refused(() => verifyBillingWebhook('[1]', signed('evt_x', '[1]'), SECRET), /not a billing event/);
    const notUtf8 = new Uint8Array([0x22, 0xff, 0x22]);
    refused(() => verifyBillingWebhook(notUtf8, signed('evt_x', notUtf8), SECRET), /not JSON/);
    const body = delivery.body;
    refused(() => verifyBillingWebhook(body, signed('evt_other', body), SECRET), /not the webhook-id/);
  });
});

describe('secret rotation: the service signs with the new and the old secret for 24 h', () => {
  const { delivery } = rotation;

  test('two signatures, space-separated; the new secret and the old one both verify', () => {
    clockAt(delivery.timestamp);
    assert.equal(delivery.headers['webhook-signature'].split(' ').length, 2);
    for (const secret of [rotation.secret, rotation.previous_secret]) {
      const event = verifyBillingWebhook(delivery.body, delivery.headers, secret);
      assert.equal(event.type, 'hold.expired');
    }
    refused(() => verifyBillingWebhook(delivery.body, delivery.headers, OTHER_SECRET), /No matching signature/);
  });

  test('either signature alone is enough for its own secret, not for the other', () => {
    clockAt(delivery.timestamp);
    const [current, previous] = delivery.headers['webhook-signature'].split(' ');
    const only = (signature: string) => ({ ...delivery.headers, 'webhook-signature': signature });
    assert.ok(verifyBillingWebhook(delivery.body, only(current!), rotation.secret));
    assert.ok(verifyBillingWebhook(delivery.body, only(previous!), rotation.previous_secret));
    refused(() => verifyBillingWebhook(delivery.body, only(previous!), rotation.secret), /No matching signature/);
  });
});

describe('a type this client does not know (the service added one)', () => {
  test('is returned, verified, and told apart by isKnownBillingWebhookEvent', () => {
    const now = 1_800_000_000;
    clockAt(now);
    const sent = { id: 'evt_new', type: 'credit.renamed', created_at: '2027-01-15T08:00:00Z', user_id: 'u1',
      data: { totals: { total_seconds: 1 }, events: [], novelty: true } };
    const body = JSON.stringify(sent);
    const headers = { 'webhook-id': 'evt_new', 'webhook-timestamp': String(now),
      'webhook-signature': new Webhook(SECRET).sign('evt_new', new Date(now * 1000), body) };
    const event: BillingWebhookEvent | UnknownBillingWebhookEvent = verifyBillingWebhook(body, headers, SECRET);
    assert.deepEqual(event, sent);
    assert.equal(isKnownBillingWebhookEvent(event), false);
    assert.equal(isBillingWebhookEventType('credit.renamed'), false);
    refused(() => verifyBillingWebhook(body, headers, OTHER_SECRET), /No matching signature/);
  });

  test('the catalogue has the sixteen types, each known', () => {
    assert.equal(new Set(BILLING_WEBHOOK_EVENT_TYPES).size, 16);
    assert.ok(BILLING_WEBHOOK_EVENT_TYPES.every(isBillingWebhookEventType));
  });
});
