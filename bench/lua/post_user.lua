-- POST /Users: one new user per request. userName = BENCH_PREFIX .. k, and k is unique across threads
-- (the thread number from setup() plus a per-thread counter), so no request collides with another.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local prefix = os.getenv("BENCH_PREFIX") or "bench-user-"

function make(k)
   local name = prefix .. string.format("%06d", k)
   local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. name
      .. '","externalId":"ext-' .. name .. '","name":{"givenName":"Bench","familyName":"User ' .. k .. '"},"displayName":"Bench User ' .. k
      .. '","emails":[{"value":"' .. name .. '@example.com","type":"work","primary":true}],"active":true}'
   return wrk.format("POST", "/scim/v2/Users", headers(true), body)
end
