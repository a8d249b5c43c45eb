-- wrk script: submit jobs that the echo agent holds (sleep_seconds), so after the first
-- --max-concurrent claims the workers write nothing: the submit path alone (diagnostic).
wrk.method = "POST"
wrk.body = '{"prompt":"bench","config":{"sleep_seconds":3600}}'
wrk.headers["Content-Type"] = "application/json"
dofile((os.getenv("BENCH_DIR") or "bench") .. "/wrk_report.lua")
