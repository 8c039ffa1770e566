-- GET /Users?filter=userName eq "<name>" for a random existing userName.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function make(k)
   local filter = 'userName eq "' .. pick().name .. '"'
   return wrk.format("GET", "/scim/v2/Users?filter=" .. urlencode(filter), headers(false))
end
