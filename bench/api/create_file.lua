-- wrk script for `POST /tasks/create/file`: one multipart/form-data body holding a
-- 10 KB file in the field `file`, built once at start-up and sent on every request.
--
-- The file is deterministic pseudo-random bytes: binary like most samples (packed or
-- encrypted payloads), so libmagic types it "data" after its binary tests.
-- BENCH_FILE_KIND=text makes it printable ASCII instead, which sends libmagic through its
-- much slower text tests (see README.md). BENCH_FILE_SIZE changes the size (bytes).
-- Every request sends the same bytes, so the server keeps one sample and adds one task
-- per request.

local size = tonumber(os.getenv("BENCH_FILE_SIZE") or "10240")
local text = os.getenv("BENCH_FILE_KIND") == "text"
local boundary = "nestboxbench0b7f3c9a1e5d"
-- BENCH_FILE_FIELD: the form field of the file (`file`; Assemblyline's submit/ takes `bin`).
local field = os.getenv("BENCH_FILE_FIELD") or "file"

-- Park-Miller generator: exact in doubles, so LuaJIT and Lua 5.x give the same bytes.
local chunks, x = {}, 12345
for i = 1, size do
  x = (x * 16807) % 2147483647
  local r = math.floor(x / 65536)
  chunks[i] = string.char(text and 33 + r % 94 or r % 256)
end
local file = table.concat(chunks)
assert(not file:find("--" .. boundary, 1, true), "boundary occurs in the file")

-- BENCH_AUTH, when set, is sent as the Authorization header (CAPE's "Token <key>").
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

-- BENCH_HEADERS: more request headers, one "Name: value" per line (the Assemblyline
-- cells' X-USER and X-APIKEY).
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then
    wrk.headers[name] = value
  end
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = table.concat({
  "--" .. boundary,
  'Content-Disposition: form-data; name="' .. field .. '"; filename="sample.bin"',
  "Content-Type: application/octet-stream",
  "",
  file,
  "--" .. boundary .. "--",
  "",
}, "\r\n")
