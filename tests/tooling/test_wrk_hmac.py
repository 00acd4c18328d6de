"""The benchmark's wrk scripts sign requests with a SHA-256/HMAC written in Lua: it must agree
with Python's (the server's) byte for byte. Runs the Lua under LuaJIT, as wrk does (lupa)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

luajit = pytest.importorskip("lupa.luajit21")

HMAC_LUA = Path(__file__).resolve().parents[2] / "bench" / "wrk" / "hmac.lua"


@pytest.fixture(scope="module")
def lua_hmac():
    runtime = luajit.LuaRuntime(encoding=None)
    return runtime.execute(HMAC_LUA.read_bytes())


@pytest.mark.parametrize("length", [0, 1, 55, 56, 63, 64, 65, 119, 120, 200, 1000])
def test_sha256_agrees_with_hashlib_across_block_boundaries(lua_hmac, length):
    message = bytes((i * 7 + 3) % 256 for i in range(length))
    assert lua_hmac.sha256_hex(message).decode() == hashlib.sha256(message).hexdigest()


@pytest.mark.parametrize("secret", [b"bsk_" + b"ab" * 32, b"k", b"x" * 100])
def test_hmac_agrees_with_python(lua_hmac, secret):
    message = b'POST\n/v1/billing/consume\n1764556800\n' + hashlib.sha256(b'{"a":1}').hexdigest().encode()
    assert lua_hmac.hmac_signer(secret)(message).decode() == hmac.new(secret, message, hashlib.sha256).hexdigest()
