-- wrk script: the same GET on every request, with BENCH_AUTH as the Authorization header
-- (the /apiv2/ cells, token auth on: "Token <key>").

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
