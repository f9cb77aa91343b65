-- via_relay.lua -- send the mail of some domains through a relay; every
-- other domain is left alone. The tutorial policy of docs/policies.md.
--
-- Configuration:
--   domains  the domains whose mail goes through the relay (required):
--            "example.com" exactly, ".example.com" every name below it
--   relay    the relay's host name (required)
--   port     its SMTP port (default: the engine's, 25)
local cfg = ...

if type(cfg.domains) ~= "table" or type(cfg.relay) ~= "string" then
    error("the configuration needs domains = {...} and relay = \"host name\"")
end

return {
    domains = cfg.domains, -- the engine runs the hook for these domains only

    route = function(plan)
        if plan.status == "permfail" then
            return -- the domain takes no mail: it bounces here
        end
        -- Take the MX hosts out (they are listed as skipped, reason
        -- "policy") and put the relay in; plan:replace resolves the
        -- relay's name, waiting for DNS without blocking the engine.
        local ok, err = plan:replace{
            { host = cfg.relay, port = cfg.port, label = "via_relay" },
        }
        if not ok then
            -- The plan has no candidate left: after the hook it becomes
            -- a temporary failure, and the mail waits for the relay.
            mx.log(plan.domain .. ": " .. err, "warning")
        end
    end,
}
