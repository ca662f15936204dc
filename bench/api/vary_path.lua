-- wrk script: GET a different path on every request, BENCH_PATH_PREFIX followed by a
-- number cycling from BENCH_VARY_FIRST through BENCH_VARY_FIRST + BENCH_VARY_COUNT - 1.
--
-- Used for the "uncached" cells: nestbox keeps rendered tasks/view and tasks/list bodies
-- in a response cache (512 entries, valid until the next write to the store), so asking
-- for the same path again measures a cache hit. Cycling through more distinct paths than
-- the cache holds makes every request render from the database, as when clients poll
-- many tasks or the store changes between polls.

local prefix = os.getenv("BENCH_PATH_PREFIX") or "/"
-- BENCH_PATH_SUFFIX follows the number (CAPE's routes end in "/").
local suffix = os.getenv("BENCH_PATH_SUFFIX") or ""
-- BENCH_AUTH, when set, is sent as the Authorization header (CAPE's "Token <key>").
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local first = tonumber(os.getenv("BENCH_VARY_FIRST") or "1")
local count = tonumber(os.getenv("BENCH_VARY_COUNT") or "10000")
local i = 0

request = function()
  local path = prefix .. (first + i) .. suffix
  i = (i + 1) % count
  return wrk.format("GET", path)
end
