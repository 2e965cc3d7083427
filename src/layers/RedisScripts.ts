/**
 * The keys and Lua scripts of the Redis-backed `NodeRegistry` and `IndexService`. Every
 * change is one script, so it is atomic whichever process runs it. `P` is the cluster's key
 * prefix (the first argument of every script):
 *
 * - `P nodes`: SET of registered Node ids;
 * - `P node:<id>`: HASH `info` (JSON: address, announcedIp, cpus, registeredAt), `state`,
 *   `workers` (JSON array of Worker loads, as the Node reported it), `reportedAt`;
 * - `P resv:<id>`: HASH of reservations since the Node's last report (Worker id, or
 *   `+<settings>#<k>` for a Worker it is expected to start, to CPU %);
 * - `P lease:<id>`: the Node's lease (`SET PX`);
 * - `P producer:<id>`: JSON of the producer's location (Index);
 * - `P producers:node:<id>` and `P producers:mr:<id>`: SETs of producer ids per Node and
 *   per Mafalda Router;
 * - channel `P gone`: JSON `{ node, reason, at }` for each Node evicted or gone.
 *
 * @module
 */
import { luaScript } from "./RedisConnection.js"

export const keys = {
  nodes: (p: string) => `${p}nodes`,
  node: (p: string, id: string) => `${p}node:${id}`,
  lease: (p: string, id: string) => `${p}lease:${id}`,
  producer: (p: string, id: string) => `${p}producer:${id}`,
  producersOfNode: (p: string, id: string) => `${p}producers:node:${id}`,
  producersOfMafaldaRouter: (p: string, id: string) => `${p}producers:mr:${id}`,
  gone: (p: string) => `${p}gone`
}

// Shared by every script: key names, the time, and dropping a Node with its Index entries.
const prelude = `
local P = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function dropIndexOf(id)
  local owned = P .. 'producers:node:' .. id
  for _, producer in ipairs(redis.call('SMEMBERS', owned)) do
    local key = P .. 'producer:' .. producer
    local location = redis.call('GET', key)
    if location then
      local ok, decoded = pcall(cjson.decode, location)
      if ok and decoded.node == id then
        redis.call('SREM', P .. 'producers:mr:' .. tostring(decoded.mafaldaRouter), producer)
        redis.call('DEL', key)
      end
    end
  end
  redis.call('DEL', owned)
end
local function drop(id, reason)
  redis.call('DEL', P .. 'node:' .. id, P .. 'resv:' .. id, P .. 'lease:' .. id)
  redis.call('SREM', P .. 'nodes', id)
  dropIndexOf(id)
  redis.call('PUBLISH', P .. 'gone', cjson.encode({ node = id, reason = reason, at = now() }))
end
local function alive(id)
  return redis.call('EXISTS', P .. 'lease:' .. id) == 1
end
`

const script = (name: string, body: string) => luaScript(name, prelude + body)

/** ARGV: P, id, info JSON, lease ms. Clean slate: the Node's previous record and Index entries go. */
export const registerScript = script(
  "register",
  `
local id = ARGV[2]
if redis.call('SISMEMBER', P .. 'nodes', id) == 1 then
  redis.call('DEL', P .. 'node:' .. id, P .. 'resv:' .. id)
  dropIndexOf(id)
end
local t = now()
redis.call('HSET', P .. 'node:' .. id, 'info', ARGV[3], 'state', 'up', 'workers', '[]',
  'registeredAt', t, 'reportedAt', t)
redis.call('SADD', P .. 'nodes', id)
redis.call('SET', P .. 'lease:' .. id, t, 'PX', ARGV[4])
return 1
`
)

/** ARGV: P, id, workers JSON, lease ms. 0 when the Node is not registered (or its lease ran out). */
export const reportScript = script(
  "report",
  `
local id = ARGV[2]
if redis.call('SISMEMBER', P .. 'nodes', id) == 0 or not alive(id) then return 0 end
local t = now()
redis.call('HSET', P .. 'node:' .. id, 'workers', ARGV[3], 'reportedAt', t)
redis.call('DEL', P .. 'resv:' .. id)
redis.call('SET', P .. 'lease:' .. id, t, 'PX', ARGV[4])
return 1
`
)

/** ARGV: P, id, state. */
export const setStateScript = script(
  "setState",
  `
local id = ARGV[2]
if redis.call('SISMEMBER', P .. 'nodes', id) == 0 or not alive(id) then return 0 end
redis.call('HSET', P .. 'node:' .. id, 'state', ARGV[3])
return 1
`
)

/** ARGV: P, id. */
export const deregisterScript = script(
  "deregister",
  `
local id = ARGV[2]
if redis.call('SISMEMBER', P .. 'nodes', id) == 0 then return 0 end
drop(id, 'left')
return 1
`
)

/** ARGV: P. Evicts every Node whose lease ran out; returns their ids. */
export const reapScript = script(
  "reap",
  `
local evicted = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if not alive(id) then
    drop(id, 'expired')
    table.insert(evicted, id)
  end
end
return evicted
`
)

/** ARGV: P, then Node ids (none: every registered Node). Returns { id, HGETALL... } per live Node. */
export const nodesScript = script(
  "nodes",
  `
local ids = {}
if #ARGV > 1 then
  for i = 2, #ARGV do table.insert(ids, ARGV[i]) end
else
  ids = redis.call('SMEMBERS', P .. 'nodes')
end
local out = {}
for _, id in ipairs(ids) do
  if redis.call('SISMEMBER', P .. 'nodes', id) == 1 and alive(id) then
    local fields = redis.call('HGETALL', P .. 'node:' .. id)
    if #fields > 0 then table.insert(out, { id, fields }) end
  end
end
return out
`
)

/**
 * ARGV: P, settings, cost, watermark, max Workers per Node ('' for none), excluded ids...
 * The rule of \`pickNode\` (src/cluster/pickNode.ts), step for step. Returns
 * { node, address, announcedIp, worker ('' for a Worker to start) } or nil.
 */
export const pickScript = script(
  "pick",
  `
local settings = ARGV[2]
local cost = tonumber(ARGV[3])
local watermark = tonumber(ARGV[4])
local maxWorkers = tonumber(ARGV[5])
local excluded = {}
for i = 6, #ARGV do excluded[ARGV[i]] = true end

local candidates = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if not excluded[id] and alive(id) then
    local h = redis.call('HMGET', P .. 'node:' .. id, 'info', 'state', 'workers')
    if h[1] and h[2] == 'up' then
      local info = cjson.decode(h[1])
      local workers = cjson.decode(h[3] or '[]')
      local resv = {}
      local flat = redis.call('HGETALL', P .. 'resv:' .. id)
      for i = 1, #flat, 2 do resv[flat[i]] = tonumber(flat[i + 1]) end
      table.insert(candidates, { id = id, info = info, workers = workers, resv = resv })
    end
  end
end

local function pendingSettings(field)
  if string.sub(field, 1, 1) ~= '+' then return nil end
  local hash = nil
  local i = 0
  while true do
    i = string.find(field, '#', i + 1, true)
    if i == nil then break end
    hash = i
  end
  if hash == nil then return nil end
  return string.sub(field, 2, hash - 1)
end

local best = nil
for _, c in ipairs(candidates) do
  local function consider(wid, load, real)
    if load + cost >= watermark then return end
    if best == nil or load > best.load or (load == best.load and
      (wid < best.wid or (wid == best.wid and c.id < best.c.id))) then
      best = { c = c, wid = wid, load = load, real = real }
    end
  end
  for _, w in ipairs(c.workers) do
    if w.settings == settings then consider(w.worker, w.load + (c.resv[w.worker] or 0), true) end
  end
  for field, reserved in pairs(c.resv) do
    if pendingSettings(field) == settings then consider(field, reserved, false) end
  end
end
if best ~= nil then
  redis.call('HINCRBYFLOAT', P .. 'resv:' .. best.c.id, best.wid, cost)
  local worker = ''
  if best.real then worker = best.wid end
  return { best.c.id, best.c.info.address, best.c.info.announcedIp, worker }
end

local start = nil
for _, c in ipairs(candidates) do
  local cpus = tonumber(c.info.cpus)
  local cap = tonumber(c.info.maxWorkerProcesses)
  local same = 0
  local total = #c.workers
  local pending = 0
  for _, w in ipairs(c.workers) do
    if w.settings == settings then same = same + 1 end
  end
  for field, _ in pairs(c.resv) do
    local s = pendingSettings(field)
    if s ~= nil then
      total = total + 1
      if s == settings then
        same = same + 1
        pending = pending + 1
      end
    end
  end
  local limit = cpus
  if maxWorkers ~= nil and maxWorkers < limit then limit = maxWorkers end
  if same < limit and (cap == nil or total < cap) then
    local idle = total < cpus
    local ratio = total / cpus
    if start == nil or (idle and not start.idle) or
      (idle == start.idle and (ratio > start.ratio or (ratio == start.ratio and c.id < start.c.id))) then
      start = { c = c, idle = idle, ratio = ratio, pending = pending }
    end
  end
end
if start == nil then return nil end
redis.call('HINCRBYFLOAT', P .. 'resv:' .. start.c.id, '+' .. settings .. '#' .. (start.pending + 1), cost)
return { start.c.id, start.c.info.address, start.c.info.announcedIp, '' }
`
)

/** ARGV: P, producer, node, mafaldaRouter, location JSON. 0 when the Node is not registered. */
export const indexAddScript = script(
  "indexAdd",
  `
local producer, node, mr = ARGV[2], ARGV[3], ARGV[4]
if redis.call('SISMEMBER', P .. 'nodes', node) == 0 then return 0 end
local key = P .. 'producer:' .. producer
local previous = redis.call('GET', key)
if previous then
  local ok, decoded = pcall(cjson.decode, previous)
  if ok then
    redis.call('SREM', P .. 'producers:node:' .. tostring(decoded.node), producer)
    redis.call('SREM', P .. 'producers:mr:' .. tostring(decoded.mafaldaRouter), producer)
  end
end
redis.call('SET', key, ARGV[5])
redis.call('SADD', P .. 'producers:node:' .. node, producer)
redis.call('SADD', P .. 'producers:mr:' .. mr, producer)
return 1
`
)

/** ARGV: P, producer. */
export const indexRemoveScript = script(
  "indexRemove",
  `
local producer = ARGV[2]
local key = P .. 'producer:' .. producer
local location = redis.call('GET', key)
if not location then return 0 end
local ok, decoded = pcall(cjson.decode, location)
if ok then
  redis.call('SREM', P .. 'producers:node:' .. tostring(decoded.node), producer)
  redis.call('SREM', P .. 'producers:mr:' .. tostring(decoded.mafaldaRouter), producer)
end
redis.call('DEL', key)
return 1
`
)

/** ARGV: P, set key suffix ('node:<id>' or 'mr:<id>'). The locations (JSON) of the set's producers. */
export const indexListScript = script(
  "indexList",
  `
local out = {}
for _, producer in ipairs(redis.call('SMEMBERS', P .. 'producers:' .. ARGV[2])) do
  local location = redis.call('GET', P .. 'producer:' .. producer)
  if location then table.insert(out, location) end
end
return out
`
)
