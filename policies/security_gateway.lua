-- security_gateway.lua -- send outgoing mail through a filtering gateway
-- (Mimecast, Proofpoint, Barracuda and the like), with a bypass list.
--
-- WHAT IT DOES
--   Hands every message to the gateway's hosts, tried in the order given,
--   instead of the recipient domain's MX hosts: the gateway scans it (and
--   archives it, applies data-loss rules, signs it...) and delivers it.
--   The MX hosts are removed from the plan (listed in `skipped` with
--   reason "policy"): when every gateway host is down, mail waits. It does
--   not go out unfiltered, unless you set fail_open = true.
--
--   Mail for the domains in `bypass`, and for domains whose MX hosts are
--   all in `bypass_mx`, is left alone: it goes straight to the domain's
--   MX hosts, as DNS gave them.
--
-- WHEN TO USE IT
--   Your organisation uses a filtering service for outbound mail: the
--   service gives you its outbound relay names, and every message must go
--   through them. The same services usually receive your inbound mail too
--   (your domain's MX points to them, as the seed articles describe);
--   mail between your own domains, or to a partner reached over a private
--   link, often must not make that round trip: list those in `bypass` or
--   their mail servers in `bypass_mx`. For a plain relay without these
--   rules, see smarthost.lua.
--
-- CONFIGURATION (every key, with its default)
--   gateways = {}      -- required, at least one: the gateway's outbound
--                      -- hosts, tried in order. Each is a host name or IP
--                      -- address (string), or a table:
--       { host      = "outbound1.gateway.example", -- required
--         port      = 25,        -- SMTP port
--         tls       = true,      -- TLS required (gateways expect it);
--                                -- false: plain SMTP allowed
--         addresses = nil,       -- {"192.0.2.25", ...}: no DNS lookup
--         label     = "gateway" }
--   bypass = {}        -- recipient domains that go direct:
--                      -- "example.com" exactly, ".example.com" below it
--   bypass_mx = {}     -- MX host suffixes: a domain whose MX hosts are all
--                      -- under these goes direct ("corp.example" matches
--                      -- mx1.corp.example); for your own mail servers
--   fail_open = false  -- true: keep the MX hosts after the gateways, so
--                      -- mail goes out unfiltered when the gateway is down
--   keep_permfail = true -- a domain DNS says takes no mail (null MX,
--                      -- NXDOMAIN) bounces here; false: the gateway decides
--
-- EXAMPLE
--   Two regional gateway hosts; internal domains and a partner with its
--   own link skip the gateway:
--
--     { gateways = { "outbound1.gateway.example", "outbound2.gateway.example" },
--       bypass = { "corp.example", ".corp.example" },
--       bypass_mx = { "mail.partner.example" } }
--
--   mxroute route --policy policies/security_gateway.lua \
--     --policy-config '{gateways={"outbound1.gateway.example"},bypass={"corp.example"}}' \
--     example.com
--
-- NOTES
--   * Gateway hosts without `addresses` are resolved on every route (from
--     the engine's cache). One that does not resolve is left out, with a
--     warning; when none resolves the plan fails temporarily (reason
--     "policy") and mail waits.
--   * bypass_mx needs the domain's MX hosts, so it only works on a plan
--     whose DNS lookup succeeded; a domain whose lookup failed goes to the
--     gateway.
--   * Run the engine with --policy-on-error defer (MXR_OPT_POLICY_ON_ERROR):
--     if this hook ever failed, the default is to use the plan as DNS gave
--     it, which is direct, unfiltered delivery.
--
-- SPDX-License-Identifier: MIT

local config = require("mxroute.config")
local util = require("mxroute.util")

local NAME = "security_gateway"

---------------------------------------------------------------- settings

local DEFAULTS = {
    gateways = {},
    bypass = {},
    bypass_mx = {},
    fail_open = false,
    keep_permfail = true,
}

local bad = config.reporter(NAME)

-- One gateway of the configuration -> the table plan:add takes.
local function gateway_spec(g, where)
    g = config.check_relay(NAME, g, where)
    return {
        host = g.host,
        port = g.port,
        tls = g.tls ~= false, -- required unless switched off
        addresses = g.addresses,
        label = g.label or "gateway",
        position = "last", -- then plan:reorder puts the gateways first
    }
end

local cfg = config.merge(NAME, (...), DEFAULTS)

if type(cfg.gateways) ~= "table" or #cfg.gateways == 0 then
    bad("gateways must be a list of at least one gateway host")
end
local gateways = {}
for i, g in ipairs(cfg.gateways) do
    gateways[i] = gateway_spec(g, ("gateways[%d]"):format(i))
end
config.check_domain_list(NAME, cfg.bypass, "bypass")
config.check_domain_list(NAME, cfg.bypass_mx, "bypass_mx")
for _, key in ipairs({ "fail_open", "keep_permfail" }) do
    if type(cfg[key]) ~= "boolean" then
        bad("%s must be true or false", key)
    end
end

-------------------------------------------------------------------- hooks

-- Does this plan skip the gateway? Returns why, for the log.
local function bypassed(plan)
    if util.domain_matches(plan.domain, cfg.bypass) then
        return "domain in bypass"
    end
    local candidates = plan:candidates()
    if #cfg.bypass_mx == 0 or #candidates == 0 then
        return nil
    end
    for _, c in ipairs(candidates) do
        if not util.host_in(c.host, cfg.bypass_mx) then
            return nil -- one MX host elsewhere: filter it all
        end
    end
    return "every MX host in bypass_mx"
end

local function is_any()
    return true
end

local function route(plan)
    if plan.status == "permfail" and cfg.keep_permfail then
        return -- null MX, NXDOMAIN...: bounce here
    end
    local why = bypassed(plan)
    if why then
        mx.log(("%s goes direct: %s"):format(plan.domain, why))
        return
    end
    if not cfg.fail_open then
        plan:remove(is_any) -- the MX hosts: never unfiltered
    end
    local added = {}
    for _, gateway in ipairs(gateways) do
        local ok, err = plan:add(gateway) -- may wait for DNS
        if ok then
            added[#added + 1] = gateway.host
        else
            mx.log(("gateway %s left out: %s"):format(gateway.host, err),
                "warning")
        end
    end
    if #added > 0 then
        plan:reorder(added) -- the gateways first, in the configured order
    elseif not cfg.fail_open then
        plan:fail("tempfail") -- the gateway is unknown now: wait
    end
end

return { route = route }
