-- wrk script for the steady scenarios of benches/load/run.sh.
--
-- Arguments after "--" are NAME VALUE pairs: each becomes a header of every request
-- (e.g. `-- x-api-key KEY`). The request is built once per thread, so wrk stays as
-- cheap as with no script at all.
--
-- done() prints one line the harness parses:
--   WRK requests=N duration_us=N p50_us=N p99_us=N max_us=N non2xx=N sockerr=N

function init(args)
  for i = 1, #args - 1, 2 do
    wrk.headers[args[i]] = args[i + 1]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, summary.duration,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
    math.floor(latency.max), e.status, e.connect + e.read + e.write + e.timeout))
end
