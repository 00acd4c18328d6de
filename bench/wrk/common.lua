-- Shared by the wrk scenario scripts (consume/balance/batch/single_check.lua), which
-- dofile() it from $BENCH_WRK_DIR (default bench/wrk: run wrk from the repo root) and
-- define bench.build(user_id, key) -> the request body, plus bench.method / bench.path.
--
-- Environment: BENCH_ACCOUNTS (N, default 200), BENCH_ACCOUNT_OFFSET (default 0):
-- each request picks an account at random in [offset+1, offset+N]; BENCH_RUN_ID
-- prefixes the idempotency keys (default: random), which are run-thread-counter.
-- BENCH_KEY_ID and BENCH_KEY_SECRET, when set, sign every request (hmac.lua) as a client must.
--
-- wrk runs setup() and done() in its main Lua state and init()/request() in one state
-- per thread; setup() numbers the threads (thread:set copies into the thread's state).
-- done() prints ONE line "WRK_JSON {...}" (latencies in wrk are microseconds).

bench = bench or {}

local accounts = tonumber(os.getenv("BENCH_ACCOUNTS") or "200")
local offset = tonumber(os.getenv("BENCH_ACCOUNT_OFFSET") or "0")
local threads_started = 0
local main_run_id = nil

function setup(thread)
  if main_run_id == nil then
    main_run_id = os.getenv("BENCH_RUN_ID")
    if main_run_id == nil or main_run_id == "" then
      math.randomseed(os.time() + math.floor(os.clock() * 1e6))
      main_run_id = string.format("wrk%x%06x", os.time(), math.random(0, 0xffffff))
    end
  end
  threads_started = threads_started + 1
  thread:set("thread_id", threads_started)
  thread:set("run_id", main_run_id)
end

local counter = 0
local key_prefix = ""
local host = ""
local signer = nil
local sha256_hex = nil
local key_id = os.getenv("BENCH_KEY_ID") or ""

-- The X-HMAC-* header lines for one request ("" when the run does not sign).
local function signature(method, path, body)
  if signer == nil then return "" end
  local stamp = tostring(os.time())
  local mac = signer(method .. "\n" .. path .. "\n" .. stamp .. "\n" .. sha256_hex(body))
  return "X-HMAC-Key-Id: " .. key_id .. "\r\nX-HMAC-Timestamp: " .. stamp .. "\r\nX-HMAC-Signature: " .. mac .. "\r\n"
end

function init(args)
  -- thread_id and run_id are globals set by setup() before init() runs.
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919 + math.floor(os.clock() * 1e6))
  key_prefix = (run_id or "wrk") .. "-" .. tostring(thread_id or 0) .. "-"
  host = wrk.headers["Host"] or wrk.host
  local secret = os.getenv("BENCH_KEY_SECRET") or ""
  if key_id ~= "" and secret ~= "" then
    local hmac = dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/hmac.lua")
    signer, sha256_hex = hmac.hmac_signer(secret), hmac.sha256_hex
  end
end

function request()
  local uid = tostring(offset + math.random(accounts))
  if bench.method == "GET" then
    local path = bench.path .. uid
    return "GET " .. path .. " HTTP/1.1\r\nHost: " .. host .. "\r\n" .. signature("GET", path, "") .. "\r\n"
  end
  counter = counter + 1
  local body = bench.build(uid, key_prefix .. counter)
  return bench.method .. " " .. bench.path .. " HTTP/1.1\r\nHost: " .. host
    .. "\r\nContent-Type: application/json\r\n" .. signature(bench.method, bench.path, body)
    .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.status + e.connect + e.read + e.write + e.timeout
  local duration_s = summary.duration / 1e6
  io.write(string.format(
    'WRK_JSON {"requests":%d,"errors":%d,"errors_status":%d,"errors_connect":%d,"errors_read":%d,'
      .. '"errors_write":%d,"errors_timeout":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,'
      .. '"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,"bytes":%d}\n',
    summary.requests, errors, e.status, e.connect, e.read, e.write, e.timeout, duration_s,
    duration_s > 0 and summary.requests / duration_s or 0,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, latency.mean / 1000, summary.bytes))
end
