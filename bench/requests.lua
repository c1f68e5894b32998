-- wrk script: send the requests listed in a file (one per line:
-- METHOD<TAB>PATH[<TAB>JSON BODY]) and print a JSON summary line at the end.
-- Usage: wrk -s bench/requests.lua URL -- FILE [once THREADS] [grid]
--
-- By default each thread cycles through the whole list from its own offset. With "once" (and
-- wrk's -t count), no line is sent twice: thread k (from 0) of THREADS takes lines k+1,
-- k+1+THREADS, k+1+2*THREADS, ..., a stride no other thread touches, and a thread's
-- connections share its position. A thread that has used up its stride starts it again rather
-- than stop (wrk cannot end a run early); the summary's "repeated" counts the requests it took
-- that way, so the caller can say so. wrk calls request() once on the first thread to check the
-- script before the run: that line is skipped (but counted as taken), never repeated.
--
-- With "grid", the summary also holds the latency at the 1,000 quantiles 0.05 %, 0.15 %, ...,
-- 99.95 % (each standing for a thousandth of the requests), so the runs of one server taken in
-- rounds can be merged into one distribution (bench/compare.py, side_by_side).
local requests = {}
local threads = {}
local created = 0
local once = false
local stride = 1
local share = 0

setup = function(thread)
  thread:set("index", created)
  created = created + 1
  table.insert(threads, thread)
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
  once = args[2] == "once"
  grid = args[#args] == "grid"
  taken = 0
  repeated = 0
  if once then
    stride = assert(tonumber(args[3]), "once needs the thread count")
    assert(index < #requests, "fewer lines than threads")
    share = math.floor((#requests - 1 - index) / stride) + 1
  else
    -- each thread starts elsewhere in the list, so distinct requests stay distinct
    counter = ((index + 1) * 7919) % #requests
  end
end

request = function()
  if once then
    local position = index + (taken % share) * stride
    taken = taken + 1
    if taken > share then
      repeated = repeated + 1
    end
    return requests[position + 1]
  end
  counter = counter % #requests + 1
  return requests[counter]
end

done = function(summary, latency, requests)
  local e = summary.errors
  local again = 0
  for _, thread in ipairs(threads) do
    again = again + (thread:get("repeated") or 0)
  end
  local quantiles = {}
  if threads[1]:get("grid") and summary.requests > 0 then
    for k = 0, 999 do
      quantiles[#quantiles + 1] = string.format("%d", latency:percentile((k + 0.5) / 10))
    end
  end
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "status_errors": %d, "repeated": %d, "grid_us": [%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, again, table.concat(quantiles, ",")))
end
