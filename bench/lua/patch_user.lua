-- PATCH /Users/{id} on a random user: replace active and name.givenName, active alternating false/true.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local TEMPLATE = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":['
   .. '{"op":"replace","path":"active","value":%s},{"op":"replace","path":"name.givenName","value":"X"}]}'

function make(k)
   local body = string.format(TEMPLATE, k % 2 == 1 and "false" or "true")
   return wrk.format("PATCH", "/scim/v2/Users/" .. pick().id, headers(true), body)
end
