-- POST /Bulk with BENCH_OPS user creations each (RFC 7644 §3.7); request k creates <BENCH_PREFIX>k-1 .. -BENCH_OPS,
-- each shaped like post_user.lua's.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local prefix = os.getenv("BENCH_PREFIX") or "bulk-user-"
local ops = tonumber(os.getenv("BENCH_OPS") or "100")

function make(k)
   local parts = {}
   for i = 1, ops do
      local name = prefix .. k .. "-" .. i
      parts[i] = '{"method":"POST","path":"/Users","bulkId":"b' .. i .. '","data":'
         .. '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. name
         .. '","externalId":"ext-' .. name .. '","name":{"givenName":"Bulk","familyName":"User ' .. i
         .. '"},"displayName":"Bulk User ' .. i .. '","emails":[{"value":"' .. name
         .. '@example.com","type":"work","primary":true}],"active":true}}'
   end
   local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":['
      .. table.concat(parts, ",") .. ']}'
   return wrk.format("POST", "/scim/v2/Bulk", headers(true), body)
end
