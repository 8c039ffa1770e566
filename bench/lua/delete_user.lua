-- DELETE /Users/{id}: items[k], run count-limited so each id is deleted exactly once.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function make(k)
   return wrk.format("DELETE", "/scim/v2/Users/" .. items[k].id, headers(false))
end
