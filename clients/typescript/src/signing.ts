/**
 * Request signing as the service defines it (README "Signing requests"), with WebCrypto:
 *
 *   X-HMAC-Key-Id:    the key id
 *   X-HMAC-Timestamp: unix seconds
 *   X-HMAC-Signature: lowercase hex HMAC-SHA256(secret,
 *                       METHOD + "\n" + PATH_AND_QUERY + "\n" + TIMESTAMP + "\n" + hex(SHA256(body bytes)))
 *
 * PATH_AND_QUERY is exactly what goes on the request line; the client signs the URL object it
 * then hands to fetch, so the two cannot differ.
 */

export interface SigningKey {
  key_id: string;
  secret: string;
}

const encoder = new TextEncoder();

function subtle(): SubtleCrypto {
  const crypto = globalThis.crypto;
  if (!crypto?.subtle) {
    throw new Error('WebCrypto (crypto.subtle) is required: a secure context (https or localhost) in a browser, Node 20+');
  }
  return crypto.subtle;
}

function toHex(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

export function toBytes(body: string | Uint8Array | undefined): Uint8Array<ArrayBuffer> {
  if (body === undefined) return new Uint8Array(0);
  if (typeof body === 'string') return encoder.encode(body);
  const copy = new Uint8Array(body.byteLength);
  copy.set(body);
  return copy;
}

/** hex(SHA-256(body)); the empty body gives e3b0c442...b855. */
export async function bodyDigest(body: string | Uint8Array | undefined): Promise<string> {
  return toHex(await subtle().digest('SHA-256', toBytes(body)));
}

export function canonicalRequest(method: string, pathAndQuery: string, timestamp: string, bodySha256: string): string {
  return `${method.toUpperCase()}\n${pathAndQuery}\n${timestamp}\n${bodySha256}`;
}

const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = subtle().importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    if (keyCache.size > 8) keyCache.clear(); // a session key now and then: keep only a few
    keyCache.set(secret, key);
  }
  return key;
}

/** Lowercase hex HMAC-SHA256(secret as UTF-8, message as UTF-8). */
export async function hmacSha256Hex(secret: string, message: string): Promise<string> {
  return toHex(await subtle().sign('HMAC', await hmacKey(secret), encoder.encode(message)));
}

/** The three headers of one signed request. */
export async function signatureHeaders(
  key: SigningKey,
  method: string,
  pathAndQuery: string,
  body: string | Uint8Array | undefined,
  unixSeconds: number,
): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(unixSeconds));
  const canonical = canonicalRequest(method, pathAndQuery, timestamp, await bodyDigest(body));
  return {
    'X-HMAC-Key-Id': key.key_id,
    'X-HMAC-Timestamp': timestamp,
    'X-HMAC-Signature': await hmacSha256Hex(key.secret, canonical),
  };
}
