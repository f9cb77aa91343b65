-- util-demo.lua -- what the mxroute.util helpers answer.
local util = require("mxroute.util")

local function show(what, ...)
    local out = table.pack(...)
    for i = 1, out.n do
        out[i] = tostring(out[i])
    end
    mx.log(what .. " -> " .. table.concat(out, ", "))
end

show('domain_matches("Example.COM.", {"example.com"})',
     util.domain_matches("Example.COM.", { "example.com" }))
show('domain_matches("a.example.com", {"example.com"})',
     util.domain_matches("a.example.com", { "example.com" }))
show('domain_matches("a.example.com", ".example.com")',
     util.domain_matches("a.example.com", ".example.com"))
show('host_in("MX1.mail.protection.outlook.com", {"outlook.com"})',
     util.host_in("MX1.mail.protection.outlook.com", { "outlook.com" }))
show('host_in("notoutlook.com", {"outlook.com"})',
     util.host_in("notoutlook.com", { "outlook.com" }))
show('split_address("John.Doe@Example.COM")',
     util.split_address("John.Doe@Example.COM"))
show('split_address("<\\"a@b\\"@example.org>")',
     util.split_address('<"a@b"@example.org>'))
show('split_address("postmaster")', util.split_address("postmaster"))

return { route = function(plan) end }
