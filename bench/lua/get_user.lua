-- GET /Users/{id} for a random seeded id.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function make(k)
   return wrk.format("GET", "/scim/v2/Users/" .. pick().id, headers(false))
end
