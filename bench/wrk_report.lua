-- wrk reporter: one machine-readable line at the end of a run (used by bench/run.sh).
-- Latency figures are in milliseconds; err_status counts answers that were not 2xx/3xx,
-- and rps leaves them out (a 429 is no acknowledged job).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"max_ms":%.3f,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration / 1e6,
    (summary.requests - e.status) / (summary.duration / 1e6),  -- rps: 2xx/3xx answers only
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
