-- wrk script: cycle through the requests listed in a file (one per line:
-- METHOD<TAB>PATH[<TAB>JSON BODY]) and print a JSON summary line at the end.
-- Usage: wrk -s bench/requests.lua URL -- FILE
local requests = {}
local counter = 0
local started = 0

setup = function(thread)
  started = started + 1
  thread:set("offset", started * 7919)
end

init = function(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local method, path, body = line:match("^(%S+)\t([^\t]+)\t?(.*)$")
    local headers = {}
    if body == "" then
      body = nil
    else
      headers["Content-Type"] = "application/json"
    end
    table.insert(requests, wrk.format(method, path, headers, body))
  end
  file:close()
  -- each thread starts elsewhere in the list, so distinct requests stay distinct
  counter = (offset or 0) % #requests
end

request = function()
  counter = counter % #requests + 1
  return requests[counter]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "status_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
