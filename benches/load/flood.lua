-- wrk script for the flood of wrong passwords in benches/load/run.sh.
--
-- Argument after "--": the Basic username to use (a real one, so that every request
-- costs the gateway a real argon2id verification). Each request carries a new random
-- password, so no two are alike and nothing can be served from a cache.
--
-- done() prints the same WRK line as report.lua plus the flood's answers by status:
--   FLOOD s404=N s429=N s503=N other=N

local username = "user"
local counter = 0
-- Global, so that done() can read each thread's copy with thread:get.
answers = { [404] = 0, [429] = 0, [503] = 0, other = 0 }
local threads = {}

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard base64 with padding; bit arithmetic by division keeps it plain Lua 5.1.
local function base64(text)
  local out = {}
  for i = 1, #text, 3 do
    local a, b, c = text:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local s1 = math.floor(n / 262144) % 64
    local s2 = math.floor(n / 4096) % 64
    local s3 = math.floor(n / 64) % 64
    local s4 = n % 64
    out[#out + 1] = alphabet:sub(s1 + 1, s1 + 1) .. alphabet:sub(s2 + 1, s2 + 1)
      .. (b and alphabet:sub(s3 + 1, s3 + 1) or "=")
      .. (c and alphabet:sub(s4 + 1, s4 + 1) or "=")
  end
  return table.concat(out)
end

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  username = args[1] or username
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  counter = counter + 1
  local password = string.format("wrong-%08x-%d", math.random(0, 2147483646), counter)
  local credential = "Basic " .. base64(username .. ":" .. password)
  return wrk.format(nil, nil, { ["Authorization"] = credential })
end

function response(status, headers, body)
  if answers[status] then
    answers[status] = answers[status] + 1
  else
    answers.other = answers.other + 1
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, summary.duration,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
    math.floor(latency.max), e.status, e.connect + e.read + e.write + e.timeout))
  local total = { [404] = 0, [429] = 0, [503] = 0, other = 0 }
  for _, thread in ipairs(threads) do
    local counted = thread:get("answers")
    for key, value in pairs(counted) do
      total[key] = total[key] + value
    end
  end
  io.write(string.format("FLOOD s404=%d s429=%d s503=%d other=%d\n",
    total[404], total[429], total[503], total.other))
end
