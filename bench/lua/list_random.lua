-- GET /Users?startIndex=<random>&count=100: a page anywhere in the collection, as an identity provider's import
-- lands on pages in no particular order (several walkers, retries). BENCH_TOTAL: users in the database.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local PAGE = 100
local total = tonumber(os.getenv("BENCH_TOTAL"))

function make(k)
   local start = math.random(1, math.max(1, total - PAGE + 1))
   return wrk.format("GET", "/scim/v2/Users?startIndex=" .. start .. "&count=" .. PAGE, headers(false))
end
