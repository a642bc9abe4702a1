-- wrk's script for the HTTP loads of `just bench` (bench/http_loads.py): with
-- BENCH_WRK_BODY naming a file, every request is a POST of that file as JSON; at the end,
-- one line starting "BENCH " gives the run's figures as JSON for bench/http_loads.py to read.

local body = os.getenv("BENCH_WRK_BODY")
if body and body ~= "" then
  local file = assert(io.open(body, "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %.1f, "p99_us": %.1f, '
      .. '"mean_us": %.2f, "max_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(99), latency.mean, latency.max
  ))
end
