-- wrk script: submit a job per request (POST /api/v1/runs, body {"prompt":"bench"}).
-- Run as: wrk -s bench/wrk_post.lua http://HOST:PORT/api/v1/runs (BENCH_DIR set to bench/).
wrk.method = "POST"
wrk.body = '{"prompt":"bench"}'
wrk.headers["Content-Type"] = "application/json"
dofile((os.getenv("BENCH_DIR") or "bench") .. "/wrk_report.lua")
