"""The vocabulary of the fuzz cases (fuzz_cases.py, fuzz_signed_cases.py): the case itself, as
sent on the wire, hostile values, and a valid body per write path for a family to poison."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

from billing.domain.limits import ACCOUNT_ID_LENGTH_MAX

# ---------------------------------------------------------------- the case


@dataclass(frozen=True)
class HttpCase:
    family: str
    method: str
    target: bytes  # path and query exactly as sent on the wire
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    expect: frozenset[int] | None = None  # None: any 4xx
    # How prepare() (test_fuzz.py) signs it: None picks a signing by the case's hash; "none";
    # "replay:<how>" signs `signed_over` (method, target, body) instead of what is sent.
    signing: str | None = None
    signed_over: tuple[str, bytes, bytes] | None = None

    def wire(self, host: bytes = b"fuzz") -> bytes:
        lines = [self.method.encode() + b" " + self.target + b" HTTP/1.1", b"Host: " + host]
        names = {name.lower() for name, _ in self.headers}
        lines += [name + b": " + value for name, value in self.headers]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            if b"content-length" not in names and b"transfer-encoding" not in names:
                lines.append(b"Content-Length: " + str(len(self.body)).encode())
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body


JSON = ((b"Content-Type", b"application/json"),)

# ---------------------------------------------------------------- hostile values

UNICODE = st.text(st.characters(codec="utf-8"), max_size=16)
NASTY_STRINGS = st.sampled_from([
    "", " ", "\u0000", "a\u0000b", "\n", "a b", "../../etc/passwd", "..%2F..%2Fadmin", "%00", "%FF",
    "\u202e", "\ufeff", "\U0001F600", "é", "Ω" * 200, "x" * (ACCOUNT_ID_LENGTH_MAX + 1), "y" * 5000,
    "<script>", "' OR 1=1 --", "${jndi:ldap://x}", "null", "true", "-1", "\\", "\"", "/", "?",
])
INVALID_IDS = st.one_of(
    NASTY_STRINGS.filter(lambda s: s not in ("null", "true", "-1")),
    st.integers(ACCOUNT_ID_LENGTH_MAX + 1, 600).map(lambda n: "a" * n),  # over-long (one draw, not 600)
    UNICODE.filter(lambda s: any(not (c.isascii() and (c.isalnum() or c in "_.:@|-")) for c in s) or not s),
)
NOBODY = st.text(alphabet="abcdef0123456789", min_size=1, max_size=20).map(lambda s: f"fz-{s}")
BAD_BYTES = st.one_of(
    st.binary(min_size=1, max_size=30),
    st.sampled_from([b"\xff", b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\xe2\x82"]),
)
# Percent-escapes that decode to no UTF-8 (bad bytes, overlong forms, surrogates, truncated or
# out-of-range sequences) or to a NUL; and escapes that are not escapes at all.
UNDECODABLE = st.one_of(
    st.sampled_from([b"%ff", b"%FF%FE", b"%c0%af", b"%C0%80", b"%e0%80%af", b"%ed%a0%80", b"%f4%90%80%80",
                     b"%f8%88%80%80%80", b"%e2%82", b"%80", b"%00", b"a%00b", b"%fa-%61"]),
    BAD_BYTES.filter(lambda raw: not _decodes(raw) or b"\x00" in raw).map(lambda raw: pct(raw)),
)
BROKEN_ESCAPES = st.sampled_from([b"%", b"%z", b"%zz", b"%%", b"%4", b"a%", b"%g0", b"%%ff"])
NUMBERS = st.one_of(
    st.sampled_from([0, -1, -(2**31), 2**31, 2**31 - 1, 2**63, -(2**63) - 1, 10**30, 1.5, -0.0, 1e308, 86401, 315360001]),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
)
WRONG_TYPES = st.one_of(
    st.booleans(), st.just([]), st.just({}), st.lists(st.integers(), max_size=3), st.just({"a": {"b": [1]}}),
    st.integers(), st.floats(allow_nan=False),
)
ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, UNICODE, NASTY_STRINGS),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(UNICODE, inner, max_size=4)),
    max_leaves=6,
)


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def pct(raw: bytes) -> bytes:
    return quote_from_bytes(raw, safe=b"").encode()


def segment(value: str | bytes) -> bytes:
    return pct(value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value)


# A valid body per write path: a family changes one field into a poison (fuzz_cases.POISONS).
VALID = {
    "consume": {"user_id": "fz-nobody", "operation": "build", "seconds": 60, "idempotency_key": "fz-key"},
    "admin/grants": {"user_id": "fz-nobody", "source": "gift", "seconds": 60, "reason": "fuzz", "idempotency_key": "fz-key"},
    "accounts": {"user_id": "fz-nobody", "plan_key": ""},
    "check-sufficient-batch": {"userId": "fz-nobody", "operations": [{"operation": "build", "estimate_seconds": 60}]},
    "packages/purchase": {"user_id": "fz-nobody", "package_key": "mini", "currency": "USD", "idempotency_key": "fz-key"},
    "subscriptions/checkout": {"user_id": "fz-nobody", "plan_key": "pro", "currency": "EUR"},
    "subscriptions/cancel": {"user_id": "fz-nobody", "idempotency_key": "fz-key"},
    "subscriptions/change": {"user_id": "fz-nobody", "plan_key": "starter", "idempotency_key": "fz-key"},
}
