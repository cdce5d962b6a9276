-- wrk script for scripts/bench_webhooks.py: replays a plan of signed Twilio webhooks, each once.
--
--   wrk -t T -c C -d DEADLINE -s scripts/bench_webhooks.lua URL -- PLAN_DIR
--
-- PLAN_DIR holds one file per wrk thread, 1.txt .. T.txt, a request a line:
-- "path<TAB>X-Twilio-Signature<TAB>urlencoded body". Each thread sends its own file in order,
-- each line once (a connection only takes a line that no other connection has taken), and
-- once every one of its requests has an answer writes N.done and stops; the benchmark then
-- interrupts wrk, whose -d is only the deadline. Keep-alive connections only: wrk loses
-- requests on connections the server closes after each answer. done()
-- prints one JSON line: the answers by status code, wrk's socket errors, requests/s and
-- latency percentiles in microseconds.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  plan = {}
  directory = args[1]
  local file = assert(io.open(directory .. "/" .. id .. ".txt", "r"))
  for line in file:lines() do
    local path, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    plan[#plan + 1] = wrk.format("POST", path, {
      ["Host"] = wrk.headers["Host"],
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = signature,
    }, body)
  end
  file:close()
  -- A request the app answers 405 without touching the database: only ever sent when wrk
  -- reconnects a connection (it then skips delay()) after every line has been taken.
  IDLE = wrk.format("GET", "/twilio/status")
  planned = #plan
  reserved = 0 -- requests a connection has claimed (in delay) ...
  sent = 0 -- ... and written (in request)
  answered = 0
  extra = 0
  codes = {}
end

-- Called before every request: claim the next line, or idle until the others have answers.
function delay()
  if reserved < planned then
    reserved = reserved + 1
    return 0
  end
  return 3600000
end

function request()
  if reserved == 0 then
    -- wrk calls request() once on the first thread to check the script; that one is not sent.
    return plan[1] or IDLE
  end
  if sent == reserved and reserved < planned then
    reserved = reserved + 1 -- a reconnected connection skips delay(): claim here
  end
  if sent < reserved then
    sent = sent + 1
    return plan[sent]
  end
  extra = extra + 1
  return IDLE
end

function response(status, headers, body)
  if status == 405 then
    return -- an IDLE request's answer
  end
  answered = answered + 1
  codes[status] = (codes[status] or 0) + 1
  if answered == planned then
    -- wrk's main thread sleeps for all of -d whatever the threads do: tell the benchmark,
    -- which interrupts wrk (SIGINT) once every thread has left this mark.
    assert(io.open(directory .. "/" .. id .. ".done", "w")):close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local answers, planned_in_all, sent_in_all, extra_in_all = {}, 0, 0, 0
  local by_code = {}
  for _, thread in ipairs(threads) do
    planned_in_all = planned_in_all + thread:get("planned")
    sent_in_all = sent_in_all + thread:get("sent")
    extra_in_all = extra_in_all + thread:get("extra")
    for code, count in pairs(thread:get("codes")) do
      by_code[code] = (by_code[code] or 0) + count
    end
  end
  for code, count in pairs(by_code) do
    answers[#answers + 1] = string.format('"%d": %d', code, count)
  end
  local errors = summary.errors
  io.write(string.format(
    '{"planned": %d, "sent": %d, "idle": %d, "codes": {%s}, "seconds": %.6f, "requests": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"p50": %d, "p95": %d, "p99": %d, "max": %d}\n',
    planned_in_all, sent_in_all, extra_in_all, table.concat(answers, ", "), summary.duration / 1e6, summary.requests,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
