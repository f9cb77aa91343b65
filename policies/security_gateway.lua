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

local function bad(fmt, ...)
    error(NAME .. ": " .. fmt:format(...), 0)
end

local function merge(given)
    if given ~= nil and type(given) ~= "table" then
        bad("the configuration must be a table")
    end
    local cfg = {}
    for k, v in pairs(DEFAULTS) do
        cfg[k] = v
    end
    for k, v in pairs(given or {}) do
        if DEFAULTS[k] == nil then
            bad("unknown setting '%s'", tostring(k)) -- a typo does nothing
        end
        cfg[k] = v
    end
    return cfg
end

-- A host name (dot-separated labels of letters, digits and hyphens) or an
-- IP address.
local function is_host(s)
    if type(s) ~= "string" or s == "" or #s > 254 then
        return false
    end
    if s:find(":", 1, true) then
        return s:find("^[%x:.]+$") ~= nil -- IPv6 address
    end
    for label in (s:gsub("%.$", "") .. "."):gmatch("([^.]*)%.") do
        if #label == 0 or #label > 63 or label:find("[^%w-]")
            or label:find("^-") or label:find("-$") then
            return false
        end
    end
    return true
end

local function is_address(s)
    if type(s) ~= "string" then
        return false
    end
    if s:find(":", 1, true) then
        return #s <= 45 and s:find("^[%x:.]+$") ~= nil
    end
    local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    for _, octet in ipairs({ a, b, c, d }) do
        if tonumber(octet) > 255 then
            return false
        end
    end
    return a ~= nil
end

-- A list of "example.com" / ".example.com" entries.
local function check_names(list, key)
    if type(list) ~= "table" then
        bad("%s must be a list of domain names", key)
    end
    for i, d in ipairs(list) do
        if type(d) ~= "string" or not is_host((d:gsub("^%.", ""))) then
            bad("%s[%d] must be a domain name or .domain", key, i)
        end
    end
end

local GATEWAY_KEYS = { host = true, port = true, tls = true, addresses = true,
                       label = true }

-- One gateway of the configuration -> the table plan:add takes.
local function gateway_spec(g, where)
    if type(g) == "string" then
        g = { host = g }
    end
    if type(g) ~= "table" then
        bad("%s must be a host name or a table", where)
    end
    for k in pairs(g) do
        if not GATEWAY_KEYS[k] then
            bad("%s: unknown key '%s'", where, tostring(k))
        end
    end
    if not is_host(g.host) then
        bad("%s.host must be a host name", where)
    end
    if g.port ~= nil and (math.type(g.port) ~= "integer" or g.port < 1
        or g.port > 65535) then
        bad("%s.port must be an integer from 1 to 65535", where)
    end
    if g.tls ~= nil and type(g.tls) ~= "boolean" then
        bad("%s.tls must be true or false", where)
    end
    if g.addresses ~= nil then
        if type(g.addresses) ~= "table" or #g.addresses == 0 then
            bad("%s.addresses must be a non-empty list of IP addresses", where)
        end
        for i, a in ipairs(g.addresses) do
            if not is_address(a) then
                bad("%s.addresses[%d] must be an IP address", where, i)
            end
        end
    end
    if g.label ~= nil and type(g.label) ~= "string" then
        bad("%s.label must be a string", where)
    end
    return {
        host = g.host,
        port = g.port,
        tls = g.tls ~= false, -- required unless switched off
        addresses = g.addresses,
        label = g.label or "gateway",
        position = "last", -- then plan:reorder puts the gateways first
    }
end

local cfg = merge(...)

if type(cfg.gateways) ~= "table" or #cfg.gateways == 0 then
    bad("gateways must be a list of at least one gateway host")
end
local gateways = {}
for i, g in ipairs(cfg.gateways) do
    gateways[i] = gateway_spec(g, ("gateways[%d]"):format(i))
end
check_names(cfg.bypass, "bypass")
check_names(cfg.bypass_mx, "bypass_mx")
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
