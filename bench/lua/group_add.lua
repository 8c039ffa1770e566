-- PATCH /Groups/{BENCH_GROUP}: add one member, items[k], per request. Run count-limited over a slice
-- (BENCH_FROM..BENCH_TO) so each user is added exactly once.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local path = "/scim/v2/Groups/" .. os.getenv("BENCH_GROUP")
local TEMPLATE = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
   .. '"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}'

function make(k)
   return wrk.format("PATCH", path, headers(true), string.format(TEMPLATE, items[k].id))
end
