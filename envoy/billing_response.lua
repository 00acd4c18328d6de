-- Response side of the REST <-> gRPC conventions (see envoy/README.md).
--
-- The filter sits before grpc_json_transcoder, so on the way back it sees the
-- transcoder's JSON (or its text/plain error), with the gRPC server's initial
-- metadata -- or, for a trailers-only error reply, its trailing metadata -- as
-- response headers:
--   x-error-json + x-http-status  error reply: that status, that exact body
--   x-http-status: 304            not modified: empty body, etag kept
--   x-rest-unwrap: <field>        the body becomes the value of <field> (bare array)
-- Any other status >= 400 (transcoder text/plain errors, gRPC errors without
-- x-error-json, router 503s) is rewritten to
--   {"error":"<CODE>","http_status":<status>,"message":"<text>"[,"field":"<f>"]}
--
-- Envoy Lua gotcha: a headers() handle taken before handle:body() is invalid
-- afterwards, so every header change happens before the body is touched.

local ERROR_CODES = {
  [400] = "INVALID_ARGUMENT",
  [404] = "NOT_FOUND",
  [405] = "METHOD_NOT_ALLOWED",
  [408] = "REQUEST_TIMEOUT",
  [413] = "PAYLOAD_TOO_LARGE",
  [415] = "UNSUPPORTED_MEDIA_TYPE",
  [429] = "RATE_LIMITED",
  [431] = "REQUEST_HEADERS_TOO_LARGE",
  [502] = "UNAVAILABLE",
  [503] = "UNAVAILABLE",
  [504] = "UNAVAILABLE",
}

-- Control headers of the conventions plus gRPC leftovers; never sent to browsers.
local STRIPPED_HEADERS = {
  "x-http-status", "x-error-json", "x-rest-unwrap",
  "grpc-status", "grpc-message", "grpc-status-details-bin",
  "grpc-accept-encoding", "grpc-encoding",
}

local MAX_MESSAGE_BYTES = 2048
local REPLACEMENT_CHAR = "\239\191\189" -- U+FFFD

-- Returns s with every invalid UTF-8 sequence replaced by U+FFFD.
local function sanitize_utf8(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then len = 3
    elseif c >= 0xF0 and c <= 0xF4 then len = 4
    else len = 0 end
    local ok = len > 0 and i + len - 1 <= n
    if ok and len > 1 then
      for j = i + 1, i + len - 1 do
        local b = s:byte(j)
        if b < 0x80 or b > 0xBF then ok = false; break end
      end
      if ok then
        local b2 = s:byte(i + 1)
        if (c == 0xE0 and b2 < 0xA0) or (c == 0xF0 and b2 < 0x90) -- overlong
          or (c == 0xED and b2 > 0x9F)                            -- surrogates
          or (c == 0xF4 and b2 > 0x8F) then                       -- above U+10FFFF
          ok = false
        end
      end
    end
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = REPLACEMENT_CHAR
      i = i + 1
    end
  end
  return table.concat(out)
end

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

-- Text -> the inside of a JSON string literal (no surrounding quotes).
local function json_escape(s)
  s = sanitize_utf8(s)
  return (s:gsub('[%z\1-\31\127"\\]', function(ch)
    return ESCAPES[ch] or string.format("\\u%04x", ch:byte())
  end))
end

-- Plain text -> escaped message: trailing whitespace dropped, capped on a UTF-8 boundary.
local function escape_text(text)
  text = text:gsub("%s+$", "")
  if #text > MAX_MESSAGE_BYTES then
    local cut = MAX_MESSAGE_BYTES
    while cut > 0 do
      local b = text:byte(cut + 1)
      if b == nil or b < 0x80 or b > 0xBF then break end
      cut = cut - 1
    end
    text = text:sub(1, cut) .. "..."
  end
  return json_escape(text)
end

-- The raw (still escaped) contents of the string value of "name" in a compact JSON
-- object, e.g. the transcoder's {"code":5,"message":"..","details":[]}; nil if absent.
local function raw_json_string_field(json, name)
  local key = '"' .. name .. '":"'
  local start = json:find(key, 1, true)
  if start == nil then return nil end
  local i = start + #key
  local first = i
  while i <= #json do
    local ch = json:sub(i, i)
    if ch == "\\" then
      i = i + 2
    elseif ch == '"' then
      return json:sub(first, i - 1)
    else
      i = i + 1
    end
  end
  return nil
end

-- Our error body; message must already be JSON-escaped.
local function error_body(status, message)
  local body = string.format('{"error":"%s","http_status":%d,"message":"%s"',
    ERROR_CODES[status] or "ERROR", status, message)
  local field = message:match("^([%a_][%w_%.%[%]]*): ")
  if field ~= nil then
    body = body .. string.format(',"field":"%s"', field)
  end
  return body .. "}"
end

local function escape_lua_pattern(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- The gRPC status the server answered with, for the access log (%DYNAMIC_METADATA(billing:grpc_status)%).
-- Envoy's own %GRPC_STATUS% reads the reply as sent, from which this filter removes grpc-status,
-- and then guesses from the HTTP status (2, UNKNOWN, for every 200). A unary reply's status
-- reaches this filter as a header (the transcoder holds the reply until the server's trailers);
-- local replies (Envoy's 404, 415, 429, ...) never reached the server and log none.
local function record_grpc_status(handle, headers)
  local grpc_status = headers:get("grpc-status")
  if grpc_status ~= nil and grpc_status:match("^%d+$") then
    handle:streamInfo():dynamicMetadata():set("billing", "grpc_status", tonumber(grpc_status))
  end
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local status = tonumber(headers:get(":status")) or 0
  record_grpc_status(handle, headers)
  local http_status = tonumber(headers:get("x-http-status") or "")
  local error_json = headers:get("x-error-json")
  local unwrap = headers:get("x-rest-unwrap")
  local content_type = headers:get("content-type") or ""
  -- Only the per-IP rate limit's 429 carries retry-after (its response_headers_to_add).
  local rate_limited = status == 429 and headers:get("retry-after") ~= nil
  for _, name in ipairs(STRIPPED_HEADERS) do
    headers:remove(name)
  end
  if http_status ~= nil then
    status = http_status
    headers:replace(":status", tostring(status))
  end

  -- a) The server's own error reply.
  if error_json ~= nil then
    headers:replace("content-type", "application/json")
    handle:body(true):setBytes(error_json)
    return
  end

  -- b) Not modified.
  if status == 304 then
    headers:remove("content-type")
    headers:remove("content-length")
    local body = handle:body()
    if body ~= nil and body:length() > 0 then
      body:setBytes("")
      -- setBytes sets content-length: 0, which a 304 must not carry.
      handle:headers():remove("content-length")
    end
    return
  end

  -- d) Every other error becomes the JSON error shape.
  if status >= 400 then
    headers:replace("content-type", "application/json")
    local body = handle:body(true)
    local text = body:getBytes(0, body:length())
    local message
    if rate_limited then
      message = "too many requests from this address; retry after Retry-After seconds"
    elseif content_type:find("application/json", 1, true) == 1 then
      -- The transcoder's rendering of a gRPC status: keep its (escaped) message.
      message = raw_json_string_field(text, "message") or ""
    else
      message = escape_text(text)
    end
    -- The other 429: the gRPC server refused the request's metadata as too large
    -- (RESOURCE_EXHAUSTED, which the transcoder maps to 429, a status clients retry). It is
    -- the request headers being too large, as Envoy's own limit says: 431.
    if status == 429 and not rate_limited and message:find("metadata size exceeds", 1, true) then
      status = 431
      message = "request headers too large"
      handle:headers():replace(":status", "431")
    end
    body:setBytes(error_body(status, message))
    return
  end

  -- c) Bare value of the response's only field.
  if unwrap ~= nil and status == 200 then
    local body = handle:body()
    if body == nil then return end
    local text = body:getBytes(0, body:length())
    local value = text:match('^%s*{%s*"' .. escape_lua_pattern(unwrap) .. '"%s*:%s*(.-)%s*}%s*$')
    if value ~= nil then
      body:setBytes(value)
    else
      handle:logWarn("x-rest-unwrap: field '" .. unwrap .. "' not found; body left as is")
    end
  end
end

-- Request side: the request as the client sent it, for its signature (src/billing/adapters/hmac_auth.py
-- checks it; the transcoder hands the server a parsed message, not these bytes). Whatever a client
-- sent under these names is replaced; the route adds x-billing-edge-token, which tells the server
-- that these headers come from here. Only write methods carry a body worth buffering (the buffer
-- filter and the transcoder would buffer it anyway).
local MAX_SIGNED_BODY_BYTES = 65536
local WRITE_METHODS = {POST = true, PUT = true, PATCH = true, DELETE = true}

-- Paths whose requests carry no HMAC signature: Stripe signs its webhook deliveries itself
-- (over the raw bytes, which reach the server whole as a google.api.HttpBody), and their
-- bodies may be larger than a signed call's.
local UNSIGNED_WRITE_PATHS = {["/v1/billing/webhooks/stripe"] = true}

function envoy_on_request(handle)
  local method = handle:headers():get(":method") or ""
  local encoded = ""
  local path = handle:headers():get(":path") or ""
  if UNSIGNED_WRITE_PATHS[path:gsub("%?.*", "")] then
    local headers = handle:headers()
    headers:remove("x-billing-signed-method")
    headers:remove("x-billing-signed-path")
    headers:remove("x-billing-signed-body")
    return
  end
  if WRITE_METHODS[method] then
    local body = handle:body()
    if body ~= nil then
      local size = body:length()
      if size > MAX_SIGNED_BODY_BYTES then
        handle:respond(
          {[":status"] = "413", ["content-type"] = "application/json"},
          error_body(413, "request bodies may be at most " .. MAX_SIGNED_BODY_BYTES .. " bytes"))
        return
      end
      if size > 0 then
        encoded = handle:base64Escape(body:getBytes(0, size))
      end
    end
  end
  -- Taken after handle:body(): a headers() handle from before it is no longer valid.
  local headers = handle:headers()
  headers:replace("x-billing-signed-method", method)
  headers:replace("x-billing-signed-path", headers:get(":path") or "")
  headers:replace("x-billing-signed-body", encoded)
end
