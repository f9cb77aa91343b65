-- smarthost.lua -- send everything through a smart host first; when it
-- cannot be reached, fall back to direct delivery to the domain's MX hosts.
--
-- Configuration:
--   relay   the smart host's name (required)
--   port    its SMTP port (default: the engine's, 25)
--   tls     true when the smart host must be reached over TLS
--   direct  domains that never go through the smart host ("example.org",
--           or ".example.org" for the names below it)
local cfg = ...
local util = require("mxroute.util")

if type(cfg.relay) ~= "string" then
    error("smarthost.lua: the configuration needs relay = \"host name\"")
end

return {
    route = function(plan)
        -- A domain that takes no mail (null MX, NXDOMAIN) stays failed.
        if plan.status == "permfail" then
            return
        end
        if util.domain_matches(plan.domain, cfg.direct or {}) then
            return
        end
        -- Without `addresses` the smart host is resolved first: the hook
        -- waits for DNS here, without blocking the engine.
        local ok, err = plan:add{
            host = cfg.relay,
            port = cfg.port,
            tls = cfg.tls,
            label = "smarthost",
            position = "first",
        }
        if not ok then
            mx.log("smart host not usable, delivering directly: " .. err,
                   "warning")
        end
    end,
}
