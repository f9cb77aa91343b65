-- address_family.lua -- IPv4 only, IPv6 only, or a preferred family, per
-- domain.
--
-- WHAT IT DOES
--   Rearranges the addresses of every candidate host of the domains you
--   list:
--     "ipv4"         IPv4 addresses only
--     "ipv6"         IPv6 addresses only
--     "prefer-ipv4"  IPv4 first, then IPv6
--     "prefer-ipv6"  IPv6 first, then IPv4
--     "any"          both, interleaved, IPv6 first (the engine's default)
--   Within a family, addresses keep the order the engine gave them; hosts
--   keep their order. A host left without an address is removed (listed
--   in `skipped` with reason "policy"); a plan left without a host fails
--   permanently (reason "policy"), as the engine does for --family ipv4 and
--   a domain reachable over IPv6 only.
--
--   Lookup order for a domain: the domain itself, then each parent with a
--   leading dot (".example.com" matches every name below example.com, not
--   example.com itself), then `default`.
--
-- WHEN TO USE IT
--   The engine's --family (MXR_OPT_FAMILY) applies to every domain. Use
--   this policy when one destination needs another choice: a provider
--   that rejects mail over IPv6 from hosts without matching reverse DNS
--   ("ipv4"), a partner reached over an IPv6-only link ("ipv6"), or a
--   broken IPv6 path to some networks ("prefer-ipv4").
--
-- CONFIGURATION (every key, with its default)
--   families = {}   -- required, at least one entry: domain -> family,
--                   -- "example.com" or ".example.com" -> one of the words
--                   -- above
--   default = nil   -- the family of every other domain; nil: leave them
--                   -- alone
--
-- EXAMPLE
--     { families = { ["bigmail.example"] = "ipv4",
--                    [".bigmail.example"] = "ipv4",
--                    ["v6partner.example"] = "prefer-ipv6" } }
--
--   mxroute route --policy policies/address_family.lua \
--     --policy-config '{families={["example.com"]="ipv4"}}' example.com
--
-- NOTES
--   * Run the engine with --family any (the default): a family the engine
--     did not look up (no AAAA query under --family ipv4) cannot be
--     preferred here.
--   * The plan object has no way to change a candidate's addresses in
--     place. A host whose addresses change is removed and added again
--     with the new list, keeping its preference, port, TLS requirement,
--     label and place in the plan; but it then has source "policy" (label
--     the family word when it had none), loses its notes (cname-target,
--     ...), and is also listed in `skipped` with reason "policy". Hosts
--     whose addresses already fit are not touched.
--
-- SPDX-License-Identifier: MIT

local config = require("mxroute.config")

local NAME = "address_family"

---------------------------------------------------------------- settings

local DEFAULTS = { families = {} }
local OPTIONAL = { default = true } -- settings without a default

local FAMILIES = { ["ipv4"] = true, ["ipv6"] = true, ["prefer-ipv4"] = true,
                   ["prefer-ipv6"] = true, ["any"] = true }

local bad = config.reporter(NAME)

local cfg = config.merge(NAME, (...), DEFAULTS, OPTIONAL)

if type(cfg.families) ~= "table" or next(cfg.families) == nil then
    bad("families must be a table of at least one entry: domain = family")
end
local families = {} -- keys lower case, without a trailing dot
for key, family in pairs(cfg.families) do
    local where = ("families[%q]"):format(tostring(key))
    if not config.is_domain(key) then
        bad("%s: the key must be a domain or .domain", where)
    end
    if not FAMILIES[family] then
        bad("%s must be ipv4, ipv6, prefer-ipv4, prefer-ipv6 or any", where)
    end
    families[(key:lower():gsub("(.)%.$", "%1"))] = family
end
if cfg.default ~= nil and not FAMILIES[cfg.default] then
    bad("default must be ipv4, ipv6, prefer-ipv4, prefer-ipv6 or any")
end

-------------------------------------------------------------------- hooks

-- The family for a domain: exact, then .parent entries, then default.
local function family_for(domain)
    if families[domain] then
        return families[domain]
    end
    local rest = domain
    while true do
        local dot = rest:find(".", 1, true)
        if not dot then
            return cfg.default
        end
        rest = rest:sub(dot + 1)
        if families["." .. rest] then
            return families["." .. rest]
        end
    end
end

local function append(list, more)
    for _, a in ipairs(more) do
        list[#list + 1] = a
    end
    return list
end

-- The addresses of a host as the family wants them.
local function arrange(addresses, family)
    local v4, v6 = {}, {}
    for _, a in ipairs(addresses) do
        if a:find(":", 1, true) then
            v6[#v6 + 1] = a
        else
            v4[#v4 + 1] = a
        end
    end
    if family == "ipv4" then
        return v4
    elseif family == "ipv6" then
        return v6
    elseif family == "prefer-ipv4" then
        return append(v4, v6)
    elseif family == "prefer-ipv6" then
        return append(v6, v4)
    end
    local out = {} -- "any": v6, v4, v6, v4, ... then the rest
    for i = 1, math.max(#v4, #v6) do
        out[#out + 1] = v6[i]
        out[#out + 1] = v4[i]
    end
    return out
end

local function same(a, b)
    if #a ~= #b then
        return false
    end
    for i = 1, #a do
        if a[i] ~= b[i] then
            return false
        end
    end
    return true
end

local function route(plan)
    local family = family_for(plan.domain)
    if not family then
        return
    end
    local candidates = plan:candidates()
    local redo, order, changed = {}, {}, false
    for _, c in ipairs(candidates) do
        local addresses = arrange(c.addresses, family)
        if not same(addresses, c.addresses) then
            redo[c.host] = addresses
            changed = true
        end
        if #addresses > 0 then
            order[#order + 1] = c.host
        end
    end
    if not changed then
        return -- nothing to do: the plan stays as the engine made it
    end
    -- No in-place edit of addresses: take the changed hosts out and put
    -- them back with their new addresses, then restore the order.
    plan:remove(function(c) return redo[c.host] ~= nil end)
    for _, c in ipairs(candidates) do
        local addresses = redo[c.host]
        if addresses and #addresses > 0 then
            plan:add{ host = c.host, addresses = addresses,
                      preference = c.preference, port = c.port, tls = c.tls,
                      label = c.label or family, position = "last" }
        end
    end
    plan:reorder(order)
    if #order == 0 then
        mx.log(("%s: no host has an address of family %s"):format(
            plan.domain, family), "warning")
        plan:fail("permfail")
    end
end

-- Without a default, the hook only matters for the listed domains: tell
-- the engine, which then does not call it for the others (its `domains`
-- rule is the one of the `families` keys).
local listed = nil
if cfg.default == nil then
    listed = {}
    for key in pairs(families) do
        listed[#listed + 1] = key
    end
    table.sort(listed)
end

return {
    domains = listed, -- nil: every domain
    route = route,
}
