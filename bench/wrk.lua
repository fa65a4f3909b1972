-- The wrk fallback of `go run ./bench`, used only when vegeta cannot
-- be installed. wrk is a closed-loop generator (each connection sends its next
-- request when the previous one is answered), so it measures throughput at
-- a fixed concurrency, not latency at an offered rate.
--
-- BENCH_POOL is a Lua file defining payments, replays and refund_ids;
-- BENCH_OP is create, replay, get, list or provider.
local pool = dofile(os.getenv("BENCH_POOL"))
local op = os.getenv("BENCH_OP")
local api_key = os.getenv("BENCH_API_KEY")
local provider_key = os.getenv("BENCH_PROVIDER_KEY")
local run_id = os.getenv("BENCH_RUN_ID")

local threads = {}
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
  table.insert(threads, thread)
end

counts = {}
n = 0

function init(args)
  math.randomseed(os.time() + (tid or 0))
end

local function pick(t)
  return t[math.random(#t)]
end

function request()
  n = n + 1
  if op == "create" then
    local body = string.format('{"payment_id":"%s","amount":1,"currency":"EUR","reference":"bench"}', pick(pool.payments))
    return wrk.format("POST", "/v1/refunds", {
      ["Authorization"] = "Bearer " .. api_key, ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = string.format("wrk-%d-%d-%s", tid, n, run_id) }, body)
  elseif op == "replay" then
    local r = pick(pool.replays)
    return wrk.format("POST", "/v1/refunds", {
      ["Authorization"] = "Bearer " .. api_key, ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = r.key }, r.body)
  elseif op == "get" then
    return wrk.format("GET", "/v1/refunds/" .. pick(pool.refund_ids), { ["Authorization"] = "Bearer " .. api_key })
  elseif op == "list" then
    return wrk.format("GET", "/v1/refunds?limit=20", { ["Authorization"] = "Bearer " .. api_key })
  else
    local body = string.format('{"value":1,"trackId":"w%s%d-%d"}', string.sub(run_id, -6), tid, n)
    return wrk.format("POST", "/checkoutcom/v2/charges/" .. pick(pool.payments) .. "/refund", {
      ["Authorization"] = provider_key, ["Content-Type"] = "application/json" }, body)
  end
end

function response(status, headers, body)
  local good
  if op == "create" then
    good = status == 201
  elseif op == "replay" then
    good = status == 201 and headers["Idempotent-Replayed"] == "true"
  elseif op == "provider" then
    good = status == 200 or status == 201
  else
    good = status == 200
  end
  local k = good and "ok" or tostring(status)
  counts[k] = (counts[k] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do
      merged[k] = (merged[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(merged) do
    table.insert(parts, string.format('"%s":%d', k, v))
  end
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%f,' ..
    '"socket_errors":%d,"counts":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
