-- Shared wrk hooks for every scenario script. A scenario script loads this file and defines
-- make(k), which returns one request; everything else (threads, stopping, counting, the JSON result
-- file) lives here so every scenario, and the bare ceiling, pays the same client-side cost.
--
-- Settings come from the environment, because wrk hands script arguments to the worker threads only,
-- while done() runs in the main Lua state:
--   BENCH_TOKEN    bearer token sent with every request
--   BENCH_OUT      where done() writes the JSON result
--   BENCH_DATA     optional file of "id<TAB>userName" lines, loaded into `items`
--   BENCH_FROM     first item number k (default 1)
--   BENCH_TO       last item number k; when set the run is request-count limited: each k in
--                  FROM..TO is sent exactly once, spread over the threads, then each thread stops
--                  (needs at least one k per thread)
--   BENCH_PREFIX, BENCH_GROUP, BENCH_QUERY, BENCH_TOTAL  scenario-specific, read by the scripts

local threads = {}
local thread_count = 0

function setup(thread)
   -- Runs in the main state once per thread, before init(): give each thread its number.
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
   table.insert(threads, thread)
end

-- Per-thread state (globals, so done() can read them through thread:get()).
items = {}
statuses = {}
answered = 0  -- answers received

local function env_number(name, default)
   local value = os.getenv(name)
   if value == nil or value == "" then return default end
   return tonumber(value)
end

local function load_items(path)
   local loaded = {}
   for line in io.lines(path) do
      local id, name = line:match("^([^\t]+)\t?(.*)$")
      if id then table.insert(loaded, { id = id, name = name }) end
   end
   return loaded
end

-- Count-limited runs only: wrk asks delay() before each request() on a connection. The first `limit`
-- asks get a slot and go at once; later ones park their connection for an hour, so no request beyond
-- the slice is ever sent, and the thread stops (response below) once its last slot is answered.
local function count_limited_delay()
   if reserved < limit then
      reserved = reserved + 1
      return 0
   end
   return 3600 * 1000
end

function init(args)
   nthreads = env_number("BENCH_THREADS", 1)
   first = env_number("BENCH_FROM", 1)
   last = env_number("BENCH_TO", nil)
   -- This thread takes k = first + (tid-1), first + (tid-1) + nthreads, ...: disjoint across threads.
   next_k = first + (tid - 1)
   verifying = tid == 1
   if last ~= nil then
      limit = 0
      if next_k <= last then limit = math.floor((last - next_k) / nthreads) + 1 end
      reserved = 0
      delay = count_limited_delay  -- wrk checks for a global delay() after init()
   end
   auth = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
   local data = os.getenv("BENCH_DATA")
   if data and data ~= "" then items = load_items(data) end
   math.randomseed(os.time() * 1000 + tid * 7919)
end

-- Headers for a request; wrk.format fills in Host and Content-Length.
function headers(with_body)
   local h = { ["Authorization"] = auth }
   if with_body then h["Content-Type"] = "application/scim+json" end
   return h
end

-- wrk calls request() once on thread 1's state before the run, only to check what it returns
-- (script_verify_request in wrk.c). That call must not use up an item.
function request()
   if verifying then
      verifying = false
      return make(next_k)
   end
   local k = next_k
   next_k = next_k + nthreads
   return make(k)
end

-- wrk's main thread sleeps for the whole -d duration even when every thread has stopped, so a stopped
-- thread leaves a marker file; run.py sends wrk SIGINT once all threads have one, which ends the sleep.
local function stop_thread()
   wrk.thread:stop()
   local marker = assert(io.open(os.getenv("BENCH_OUT") .. ".stopped." .. tid, "w"))
   marker:close()
end

function response(status, hdrs, body)
   answered = answered + 1
   statuses[status] = (statuses[status] or 0) + 1
   if limit ~= nil and answered == limit then stop_thread() end
end

function done(summary, latency, requests)
   local merged, total_answered = {}, 0
   for _, t in ipairs(threads) do
      total_answered = total_answered + t:get("answered")
      for code, n in pairs(t:get("statuses")) do merged[code] = (merged[code] or 0) + n end
   end
   local codes = {}
   for code, n in pairs(merged) do table.insert(codes, string.format('"%d": %d', code, n)) end
   local e = summary.errors
   local out = assert(io.open(assert(os.getenv("BENCH_OUT")), "w"))
   out:write(string.format(
      '{"duration_us": %d, "responses": %d, "answered": %d, "bytes": %d, '
      .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
      .. '"statuses": {%s}, "latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.duration, summary.requests, total_answered, summary.bytes,
      e.connect, e.read, e.write, e.timeout, table.concat(codes, ", "),
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
   out:close()
end

-- Helpers for the scenario scripts.
function pick()
   return items[math.random(#items)]
end

function urlencode(text)
   return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
