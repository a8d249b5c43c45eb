-- wrk script: plain keep-alive GET of the URL given on the command line.
dofile((os.getenv("BENCH_DIR") or "bench") .. "/wrk_report.lua")
