-- wrk script for bench/capacity.py: awaiting widgets polling at a fixed arrival rate.
--
--   wrk -t T -c C -d 20s -s bench/capacity.lua http://127.0.0.1:PORT -- <paths file> <requests/s> <T> <P ms> <W ms>
--
-- Each wrk thread sends its share of the rate on a fixed schedule (slot k at
-- start + k / rate), whichever of its connections is free takes the next slot,
-- and a reply that comes late does not push later slots back: the arrival rate
-- stays fixed while the server keeps up (wrk2's idea, with stock wrk's delay()).
-- Requests rotate over the pre-created poll URLs, one per widget.
--
-- Each poll sends back `PASSID-Checked` as widget.js does: a poll that asked PASSID is answered with the
-- mark of its check window ("<end>-<checksum>": the window's end in epoch ms, the request's expiry less k
-- check intervals, and a checksum of the request id; app/widget/polling.py, window_mark), and the widget's
-- next polls in that window carry it, so another worker does not ask again. wrk does not say which request
-- an answer belongs to, so the marks answered are kept in one set, and a poll carries its own window's mark
-- when the set holds it (each line of the paths file: the poll path, its request's expiry in ms and
-- checksum; P and W: the check interval and window).
-- done() prints one JSON line that capacity.py reads.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1
local clock = ffi.new("bench_timespec")

local function now_ms(which)
  ffi.C.clock_gettime(which or CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local requests = {}
local cursor = 1
local check_ms, window_ms = 0, 0
local checked = {} -- window marks our polls were answered with
reported = 0 -- polls that carried a mark (read by done())
local interval_ms = 0
local next_slot = nil
late = 0 -- sends more than 50 ms behind their slot (read by done())
s204, s200, s502, sother = 0, 0, 0, 0 -- answers by status (read by done())

function init(args)
  local index = wrk.thread:get("index")
  local total_threads = tonumber(args[3])
  local all = {}
  for line in io.lines(args[1]) do
    local path, expires, checksum = line:match("^(%S+)%s+(%d+)%s+(%x+)$")
    if path then table.insert(all, { path = path, expires = tonumber(expires), checksum = checksum }) end
  end
  -- Thread i takes every T-th URL from i, so the threads share the widgets without overlap.
  for i = index + 1, #all, total_threads do
    local widget = all[i]
    widget.plain = wrk.format("GET", widget.path, { ["HX-Request"] = "true" })
    table.insert(requests, widget)
  end
  if #requests == 0 then requests = { all[1] } end
  interval_ms = 1000 * total_threads / tonumber(args[2])
  check_ms, window_ms = tonumber(args[4]), tonumber(args[5])
end

-- The mark of the check window a poll of this widget's request falls in now, or nil.
local function window_mark(widget)
  local left = widget.expires - now_ms(CLOCK_REALTIME)
  if check_ms <= window_ms or left <= 0 then return nil end
  local k = math.ceil(left / check_ms) - 1
  if k >= 1 and left - k * check_ms <= window_ms then
    return string.format("%d-%s", widget.expires - k * check_ms, widget.checksum)
  end
  return nil
end

function delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  local slot = next_slot
  next_slot = next_slot + interval_ms
  local wait = slot - now
  if wait < 0 then
    if wait < -50 then late = late + 1 end
    return 0
  end
  return math.floor(wait)
end

function request()
  local widget = requests[cursor]
  cursor = cursor % #requests + 1
  local mark = window_mark(widget)
  if mark and checked[mark] then
    reported = reported + 1
    return wrk.format("GET", widget.path, { ["HX-Request"] = "true", ["PASSID-Checked"] = mark })
  end
  return widget.plain
end

function response(status, headers, body)
  local mark = headers["PASSID-Checked"] or headers["passid-checked"]
  if mark then checked[mark] = true end
  if status == 204 then s204 = s204 + 1
  elseif status == 200 then s200 = s200 + 1
  elseif status == 502 then s502 = s502 + 1
  else sother = sother + 1 end
end

function done(summary, latency, requests_stats)
  local late_total = 0
  local counts = { s204 = 0, s200 = 0, s502 = 0, sother = 0, reported = 0 }
  for _, thread in ipairs(threads) do
    late_total = late_total + (thread:get("late") or 0)
    for name, _ in pairs(counts) do counts[name] = counts[name] + (thread:get(name) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "late": %d, '
      .. '"s204": %d, "s200": %d, "s502": %d, "sother": %d, "reported": %d}\n',
    summary.requests, summary.duration, math.floor(latency:percentile(50)), math.floor(latency:percentile(90)),
    math.floor(latency:percentile(99)), latency.max, e.connect, e.read, e.write, e.status, e.timeout, late_total,
    counts.s204, counts.s200, counts.s502, counts.sother, counts.reported))
end
