-- GET /Users?startIndex=BENCH_START&count=100, the same page every time: the first page against the last.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local path = "/scim/v2/Users?startIndex=" .. os.getenv("BENCH_START") .. "&count=100"

function make(k)
   return wrk.format("GET", path, headers(false))
end
