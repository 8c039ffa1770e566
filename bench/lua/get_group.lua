-- GET /Groups/{BENCH_GROUP}{BENCH_QUERY}, e.g. with BENCH_QUERY="?excludedAttributes=members".
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local path = "/scim/v2/Groups/" .. os.getenv("BENCH_GROUP") .. (os.getenv("BENCH_QUERY") or "")

function make(k)
   return wrk.format("GET", path, headers(false))
end
