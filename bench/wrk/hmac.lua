-- SHA-256 and HMAC-SHA256 in LuaJIT (wrk's Lua), so the REST benchmark signs its requests as a
-- client must (README, "Signing requests"). Checked against Python's hashlib/hmac by
-- tests/unit/test_wrk_hmac.py. Returns a table: sha256_hex(s), hmac_signer(secret) -> fn(msg) -> hex.

local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, ror, tobit, tohex = bit.rshift, bit.ror, bit.tobit, bit.tohex
local byte, char, rep, format = string.byte, string.char, string.rep, string.format

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local W = {}

local function digest_words(message)
  local length = #message
  -- Padding: 0x80, zeros, then the bit length as 64 bits big-endian (messages here are small).
  local padded = message .. "\128" .. rep("\0", (55 - length) % 64)
    .. char(0, 0, 0, 0) .. char(band(rshift(length * 8, 24), 255), band(rshift(length * 8, 16), 255),
      band(rshift(length * 8, 8), 255), band(length * 8, 255))
  local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
  local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  for block = 1, #padded, 64 do
    for i = 0, 15 do
      local a, b, c, d = byte(padded, block + i * 4, block + i * 4 + 3)
      W[i] = tobit(a * 16777216 + b * 65536 + c * 256 + d)
    end
    for i = 16, 63 do
      local w15, w2 = W[i - 15], W[i - 2]
      local s0 = bxor(ror(w15, 7), ror(w15, 18), rshift(w15, 3))
      local s1 = bxor(ror(w2, 17), ror(w2, 19), rshift(w2, 10))
      W[i] = tobit(W[i - 16] + s0 + W[i - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 0, 63 do
      local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = tobit(h + S1 + ch + K[i + 1] + W[i])
      local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local maj = bxor(band(a, b), band(a, c), band(b, c))
      local t2 = tobit(S0 + maj)
      h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
    end
    h0, h1, h2, h3 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d)
    h4, h5, h6, h7 = tobit(h4 + e), tobit(h5 + f), tobit(h6 + g), tobit(h7 + h)
  end
  return h0, h1, h2, h3, h4, h5, h6, h7
end

local function to_binary(...)
  local out = {}
  for i, word in ipairs({...}) do
    out[i] = char(band(rshift(word, 24), 255), band(rshift(word, 16), 255), band(rshift(word, 8), 255), band(word, 255))
  end
  return table.concat(out)
end

local function sha256_hex(message)
  local h0, h1, h2, h3, h4, h5, h6, h7 = digest_words(message)
  return tohex(h0) .. tohex(h1) .. tohex(h2) .. tohex(h3) .. tohex(h4) .. tohex(h5) .. tohex(h6) .. tohex(h7)
end

local function xor_pad(key, value)
  return (key:gsub(".", function(c) return char(bxor(byte(c), value)) end))
end

-- The pads are computed once per secret: each signature then costs two digests.
local function hmac_signer(secret)
  local key = secret
  if #key > 64 then key = to_binary(digest_words(key)) end
  key = key .. rep("\0", 64 - #key)
  local inner_pad, outer_pad = xor_pad(key, 0x36), xor_pad(key, 0x5c)
  return function(message)
    return sha256_hex(outer_pad .. to_binary(digest_words(inner_pad .. message)))
  end
end

return {sha256_hex = sha256_hex, hmac_signer = hmac_signer, format = format}
