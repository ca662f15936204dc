-- wrk script: the same GET on every request, with BENCH_AUTH as the Authorization header
-- (the /apiv2/ cells, token auth on: "Token <key>").

local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
