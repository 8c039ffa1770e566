-- GET /Users?startIndex=..&count=100: every page in turn, cycling. BENCH_TOTAL is the number of users.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local PAGE = 100
local pages = math.ceil(tonumber(os.getenv("BENCH_TOTAL")) / PAGE)

function make(k)
   local start = ((k - 1) % pages) * PAGE + 1
   return wrk.format("GET", "/scim/v2/Users?startIndex=" .. start .. "&count=" .. PAGE, headers(false))
end
