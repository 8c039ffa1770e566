-- GET /auth/forward as a reverse proxy asks it: the person in X-Forwarded-Email (a random seeded member's e-mail,
-- in upper case to exercise the case rule), the original request's method and URI in X-Forwarded-*.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function make(k)
   local h = headers(false)
   h["X-Forwarded-Email"] = string.upper(pick().name) .. "@EXAMPLE.COM"
   h["X-Forwarded-Method"] = "GET"
   h["X-Forwarded-Uri"] = "/app/dashboard"
   return wrk.format("GET", "/auth/forward?min_role=member", h)
end
