-- PUT /Users/{id} on a random user: a full replacement that keeps the user's userName.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function make(k)
   local user = pick()
   local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. user.name
      .. '","externalId":"ext-' .. user.name .. '","name":{"givenName":"Put","familyName":"User ' .. k .. '"},"displayName":"Put User ' .. k
      .. '","emails":[{"value":"' .. user.name .. '@example.com","type":"work","primary":true}],"active":true}'
   return wrk.format("PUT", "/scim/v2/Users/" .. user.id, headers(true), body)
end
