-- prefer-relay.lua -- route some domains through labelled relays, and try
-- the relay with the preferred label first. The domain's own MX hosts stay
-- in the plan, after the relays, as the last resort.
--
-- Configuration:
--   domains  the domains this applies to ("example.com", ".example.com")
--   relays   a list of {host=, label=, port=, tls=}
--   prefer   the label of the relay to try first
local cfg = ...

local relays = assert(cfg.relays, "prefer-relay.lua: relays = {...} needed")

return {
    domains = cfg.domains, -- nil: every domain

    route = function(plan)
        -- Add the relays in front of the MX hosts, in the configured order
        -- (each one goes first, so add them from the last to the first).
        for i = #relays, 1, -1 do
            local r = relays[i]
            local ok, err = plan:add{host = r.host, label = r.label,
                                     port = r.port, tls = r.tls,
                                     position = "first"}
            if not ok then
                mx.log(err, "warning")
            end
        end
        -- Then move the relay(s) with the preferred label ahead of the rest.
        local first = {}
        for _, c in ipairs(plan:candidates()) do
            if c.source == "policy" and c.label == cfg.prefer then
                first[#first + 1] = c.host
            end
        end
        plan:reorder(first)
    end,
}
