-- wrk: POST /v1/billing/check-sufficient-batch with 1 operation (build, 1 s), random account.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
bench.method = "POST"
bench.path = "/v1/billing/check-sufficient-batch"
local tail = '","operations":[{"operation":"build","estimate_seconds":1}]}'
function bench.build(uid, key)
  return '{"userId":"' .. uid .. tail
end
