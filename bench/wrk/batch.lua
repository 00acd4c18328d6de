-- wrk: POST /v1/billing/check-sufficient-batch with 50 operations (build/plan/export/
-- metadata_generation cycling, estimate_seconds 1), random account.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
bench.method = "POST"
bench.path = "/v1/billing/check-sufficient-batch"
local names = {"build", "plan", "export", "metadata_generation"}
local ops = {}
for i = 0, 49 do
  ops[#ops + 1] = '{"operation":"' .. names[i % 4 + 1] .. '","estimate_seconds":1}'
end
local tail = '","operations":[' .. table.concat(ops, ",") .. ']}'
function bench.build(uid, key)
  return '{"userId":"' .. uid .. tail
end
