-- wrk: POST /v1/billing/consume, random account, a unique idempotency key per request.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
bench.method = "POST"
bench.path = "/v1/billing/consume"
function bench.build(uid, key)
  return '{"user_id":"' .. uid .. '","operation":"build","seconds":1,"idempotency_key":"' .. key .. '"}'
end
