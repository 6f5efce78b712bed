-- wrk script of scripts/load: a mixed workload against a running basinlab server.
--
-- Every LOAD_POST_EVERY-th request of a thread submits a small experiment (POST
-- /v1/experiments, by dataset and architecture id, with a unique Idempotency-Key); the others
-- read: the experiment list, the training experiment, its runs ordered by risk, the dataset, the
-- limits and the health check. Each thread counts answers by class and keeps the id of every
-- 202 it saw; done() writes them to LOAD_REPORT so that scripts/load can check that every
-- acknowledged submission is in the database, and adds the latency percentiles.
--
-- Environment: LOAD_DATASET_ID, LOAD_ARCH_ID, LOAD_EXPERIMENT_ID (the experiment the workers
-- train during the load), LOAD_POST_EVERY (default 10), LOAD_REPORT (output file).

local dataset_id = os.getenv("LOAD_DATASET_ID")
local arch_id = os.getenv("LOAD_ARCH_ID")
local experiment_id = os.getenv("LOAD_EXPERIMENT_ID")
local post_every = tonumber(os.getenv("LOAD_POST_EVERY") or "10")
local report_path = os.getenv("LOAD_REPORT")

local threads = {}
local next_tid = 1

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

function init(args)
   n = 0
   acked = {}
   n_acked = 0
   c2, c3, c4, c5, other = 0, 0, 0, 0, 0
   s429, s503 = 0, 0
   reads = {
      "/v1/experiments?limit=20",
      "/v1/experiments/" .. experiment_id,
      "/v1/experiments/" .. experiment_id .. "/runs?limit=50&order=final_risk",
      "/v1/datasets/" .. dataset_id,
      "/v1/limits",
      "/healthz",
   }
end

function request()
   n = n + 1
   if n % post_every == 0 then
      local body = string.format(
         '{"dataset_id": "%s", "architecture_id": "%s", "restarts": 1, "seed": %d, ' ..
         '"max_steps": 200, "trajectory_every": 50}', dataset_id, arch_id, tid * 100000000 + n)
      local headers = {
         ["Content-Type"] = "application/json",
         ["Idempotency-Key"] = string.format("load-%d-%d", tid, n),
      }
      return wrk.format("POST", "/v1/experiments", headers, body)
   end
   return wrk.format("GET", reads[(n % #reads) + 1])
end

function response(status, headers, body)
   local class = math.floor(status / 100)
   if class == 2 then
      c2 = c2 + 1
   elseif class == 3 then
      c3 = c3 + 1
   elseif class == 4 then
      c4 = c4 + 1
      if status == 429 then s429 = s429 + 1 end
   elseif class == 5 then
      c5 = c5 + 1
      if status == 503 then s503 = s503 + 1 end
   else
      other = other + 1
   end
   if status == 202 then
      local id = string.match(body, '"id":%s*"(ex_%x+)"')
      if id then
         n_acked = n_acked + 1
         acked[n_acked] = id
      end
   end
end

function done(summary, latency, requests)
   local f = assert(io.open(report_path, "w"))
   local t = {c2 = 0, c3 = 0, c4 = 0, c5 = 0, other = 0, s429 = 0, s503 = 0, acked = 0}
   for _, thread in ipairs(threads) do
      for _, k in ipairs({"c2", "c3", "c4", "c5", "other", "s429", "s503"}) do
         t[k] = t[k] + thread:get(k)
      end
      local ids = thread:get("acked")
      local count = thread:get("n_acked")
      for i = 1, count do
         f:write("ack ", ids[i], "\n")
      end
      t.acked = t.acked + count
   end
   local e = summary.errors
   f:write(string.format("requests %d\n", summary.requests))
   f:write(string.format("duration_us %d\n", summary.duration))
   f:write(string.format("status_2xx %d\nstatus_3xx %d\nstatus_4xx %d\nstatus_5xx %d\n",
                         t.c2, t.c3, t.c4, t.c5))
   f:write(string.format("status_other %d\nstatus_429 %d\nstatus_503 %d\nacked %d\n",
                         t.other, t.s429, t.s503, t.acked))
   f:write(string.format("socket_errors %d\n", e.connect + e.read + e.write + e.timeout))
   f:write(string.format("timeouts %d\n", e.timeout))
   for _, p in ipairs({50, 90, 99, 99.9}) do
      f:write(string.format("latency_p%s_us %d\n", tostring(p), latency:percentile(p)))
   end
   f:write(string.format("latency_max_us %d\n", latency.max))
   f:close()
end
