-- GET /Users?filter=externalId eq "ext-<userName>" of random seeded users (post_user.lua sets that externalId).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function make(k)
   local filter = 'externalId eq "ext-' .. pick().name .. '"'
   return wrk.format("GET", "/scim/v2/Users?filter=" .. urlencode(filter), headers(false))
end
