-- usage: wrk -s sync.lua URL -- TOKEN BODYFILE
local token, bodyfile
function init(args)
  token, bodyfile = args[1], args[2]
  local f = assert(io.open(bodyfile, "rb")); local body = f:read("*a"); f:close()
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
end
local non2xx = 0
function response(status, headers, body)
  if status ~= 200 then non2xx = non2xx + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT req=%d errors(status)=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
