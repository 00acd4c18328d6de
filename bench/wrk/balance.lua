-- wrk: GET /v1/billing/balance/{user_id}, random account.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
bench.method = "GET"
bench.path = "/v1/billing/balance/"
