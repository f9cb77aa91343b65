-- smarthost.lua -- send mail through one or more relays (smart hosts).
--
-- WHAT IT DOES
--   Puts your relays at the head of the plan, in the order you list them:
--   the first relay that takes the message delivers it, the others are its
--   failover. By default the domain's own MX hosts are removed (they show
--   up in `skipped` with reason "policy"), so mail never goes out directly;
--   with fallback_to_mx = true they stay after the relays and take the mail
--   when every relay is down.
--
--   A domain whose DNS lookup failed temporarily (SERVFAIL, timeout) still
--   goes to the relays: they resolve it themselves. A domain that DNS says
--   takes no mail at all (null MX, NXDOMAIN: a permanent failure) bounces
--   here, as the relay would bounce it, unless keep_permfail = false.
--
-- WHEN TO USE IT
--   Your network only lets mail out through a relay (an ISP or a mail
--   provider's submission host, a hub in front of internal servers, a
--   port-25 block); or only mail for some domains must take that path
--   (`domains`). For one next hop per domain, see transport_map.lua; to
--   spread mail over relays by weight, weighted_relays.lua; for a filtering
--   gateway that mail must never bypass, security_gateway.lua.
--
-- CONFIGURATION (every key, with its default)
--   relays = {}            -- required, at least one: the relays, in the
--                          -- order they are tried. Each is a host name or
--                          -- IP address (string), or a table:
--       { host      = "smtp.example.net",  -- required: name or IP address
--         port      = 25,                  -- SMTP port
--         tls       = false,               -- true: TLS required, never clear
--         addresses = nil,                 -- {"192.0.2.25", ...}: use these,
--                                          -- no DNS lookup of host
--         label     = "smarthost" }        -- shown in plans
--   domains = nil          -- nil: all mail. A list: only mail for these
--                          -- domains ("example.com" exactly, ".example.com"
--                          -- every name below it); the rest goes direct
--   fallback_to_mx = false -- true: keep the MX hosts after the relays
--   keep_permfail = true   -- false: relay even the domains DNS says take
--                          -- no mail (for a resolver that cannot see the
--                          -- outside world and answers NXDOMAIN)
--
-- EXAMPLE
--   Two relays on the submission port, TLS required, direct delivery when
--   both are down:
--
--     { relays = { { host = "smtp1.example.net", port = 587, tls = true },
--                  { host = "smtp2.example.net", port = 587, tls = true } },
--       fallback_to_mx = true }
--
--   mxroute route --policy policies/smarthost.lua \
--     --policy-config '{relays={{host="smtp1.example.net",port=587,tls=true}}}' \
--     example.com
--
-- NOTES
--   * A relay without `addresses` is resolved on every route (through the
--     engine's cache). A relay whose name does not resolve is left out of
--     that plan (logged as a warning); when no relay is left and there is
--     no fallback, the plan fails temporarily (reason "policy"): mail
--     waits rather than going out directly.
--   * Relays are added with source "policy"; the engine trusts their
--     addresses as given (no safety filters), as it does for all of a
--     policy's hosts: a relay on 127.0.0.1 works.
--   * Run the engine with --policy-on-error defer (MXR_OPT_POLICY_ON_ERROR)
--     when mail must never leave without the relay: if this hook failed,
--     the default is to use the plan as DNS gave it.
--
-- SPDX-License-Identifier: MIT

local config = require("mxroute.config")

local NAME = "smarthost"

---------------------------------------------------------------- settings

local DEFAULTS = {
    relays = {},
    fallback_to_mx = false,
    keep_permfail = true,
}
local OPTIONAL = { domains = true } -- settings without a default

-- Configuration mistakes stop the policy from loading, with a message
-- that names the setting.
local bad = config.reporter(NAME)

-- One relay of the configuration -> the table plan:add takes.
local function relay_spec(r, where)
    r = config.check_relay(NAME, r, where)
    return {
        host = r.host,
        port = r.port,            -- nil: the engine's port (25)
        tls = r.tls == true,
        addresses = r.addresses,  -- nil: plan:add resolves the name
        label = r.label or NAME,
        position = "last", -- then plan:reorder puts the relays first
    }
end

local cfg = config.merge(NAME, (...), DEFAULTS, OPTIONAL)

if type(cfg.relays) ~= "table" or #cfg.relays == 0 then
    bad("relays must be a list of at least one relay")
end
local relays = {}
for i, r in ipairs(cfg.relays) do
    relays[i] = relay_spec(r, ("relays[%d]"):format(i))
end

if cfg.domains ~= nil then
    config.check_domain_list(NAME, cfg.domains, "domains", true)
end
for _, key in ipairs({ "fallback_to_mx", "keep_permfail" }) do
    if type(cfg[key]) ~= "boolean" then
        bad("%s must be true or false", key)
    end
end

-------------------------------------------------------------------- hooks

local function is_any()
    return true
end

local function route(plan)
    if plan.status == "permfail" and cfg.keep_permfail then
        return -- null MX, NXDOMAIN...: bounce here, as the relay would
    end
    if cfg.fallback_to_mx then
        for _, r in ipairs(relays) do
            plan:remove(r.host) -- a relay that is also an MX: try it once
        end
    else
        plan:remove(is_any) -- every MX host, noted as skipped ("policy")
    end
    -- plan:add waits for DNS when a relay has no addresses, and returns
    -- nil and a reason when its name does not resolve.
    local added = {}
    for _, relay in ipairs(relays) do
        local ok, why = plan:add(relay)
        if ok then
            added[#added + 1] = relay.host
        else
            -- the engine prefixes the policy's file name
            mx.log(("relay %s left out: %s"):format(relay.host, why),
                "warning")
        end
    end
    if #added > 0 then
        plan:reorder(added) -- the relays first, in the configured order
    elseif not cfg.fallback_to_mx then
        plan:fail("tempfail") -- no relay now: wait, never go direct
    end
end

return {
    domains = cfg.domains, -- the engine runs the hook for these only
    route = route,
}
