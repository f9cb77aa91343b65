-- transport_map.lua -- a per-domain table of next hops, like Postfix's
-- transport(5): send some domains to a fixed relay, some to another
-- domain's MX hosts, deliver some directly, refuse others.
--
-- WHAT IT DOES
--   Looks the recipient domain up in `map` and does what the entry says.
--   Lookup order, most specific first (as Postfix does with
--   parent_domain_matches_subdomains off):
--     "sub.example.com"   the domain itself,
--     ".example.com"      then each parent with a leading dot, which
--     ".com"              matches every name below it (not example.com
--                         itself: give both entries for both),
--     "*"                 then the catch-all entry, if any.
--   A domain no entry matches is left alone (direct delivery).
--
--   Entries (a string or a table):
--     "direct"                    deliver directly: the domain's own MX
--                                 hosts, as DNS gave them
--     "[hub.example.net]"         that host, no MX lookup (its A/AAAA)
--     "[hub.example.net]:2525"    ... on that port
--     "[192.0.2.25]", "[2001:db8::25]:25", "192.0.2.25"   an address
--     "relay.example.net"         the MX hosts of relay.example.net, or
--     "relay.example.net:2525"    its own address when it has no MX (as
--                                 Postfix does for a name without brackets)
--     "smtp:[hub.example.net]"    the same with Postfix's transport name:
--     "relay:..."                 "smtp:" and "relay:" are accepted and
--                                 ignored, so a Postfix table pastes in
--     "reject", "error:TEXT"      bounce the mail (plan:fail("permfail"))
--     "defer", "retry:TEXT"       keep it queued (plan:fail("tempfail"))
--     { relay = "hub.example.net" or { "hub1.example.net", "hub2..." },
--       port = 25, tls = false, label = "transport" }
--                                 fixed hosts, tried in order, no MX
--                                 lookup. A list item may be a table
--                                 { host =, port =, tls =, addresses =,
--                                 label = } (addresses: no DNS lookup)
--     { mx = "other.example", port = 25, tls = false, label = "transport" }
--                                 the MX hosts of another domain
--     { reject = "TEXT" }, { defer = "TEXT" }
--                                 as "reject" and "defer", with a text
--
-- WHEN TO USE IT
--   Internal domains that are not in public DNS (send them to the
--   internal hub), a partner reached over a private link, a migration
--   (a domain's mail goes to the new servers before its MX changes),
--   domains you must refuse or hold, and one catch-all ("*") for the
--   rest. For one relay for everything, smarthost.lua is simpler.
--
-- CONFIGURATION (every key, with its default)
--   map = {}   -- required, at least one entry: domain pattern -> entry
--
-- EXAMPLE
--     { map = {
--         ["corp.example"]      = "[hub.corp.example]",
--         [".corp.example"]     = "[hub.corp.example]",
--         ["partner.example"]   = { relay = "gw.partner.example", port = 2525,
--                                   tls = true },
--         ["migrating.example"] = { mx = "new-provider.example" },
--         ["old.example"]       = "error:domain closed, write to new.example",
--         ["*"]                 = "direct" } }
--
--   mxroute route --policy policies/transport_map.lua \
--     --policy-config '{map={["corp.example"]="[hub.corp.example]"}}' corp.example
--
-- NOTES
--   * A next hop replaces the domain's own MX hosts whatever DNS said
--     about the domain: an internal domain that public DNS does not know
--     (NXDOMAIN) still goes to its hub. The MX hosts are listed in
--     `skipped` with reason "policy"; the next hops have source "policy".
--   * A next hop that does not resolve now is left out (a warning); when
--     none is left, the plan fails temporarily (reason "policy"): the
--     mail waits for its next hop, it never goes somewhere else instead.
--   * MX hosts of an { mx = } entry are tried by preference, equal
--     preferences in random order (math.random), and are not re-checked
--     by the engine's safety filters: they are your configuration.
--   * Keys are ASCII: write international names in their A-label form
--     ("xn--bcher-kva.example"), as the engine gives them.
--   * The TEXT of reject/defer entries goes to the log. The recipient's
--     bounce or deferral says "routing: permfail (policy)" (or
--     "tempfail"): the plan object cannot carry a reply text yet.
--
-- SPDX-License-Identifier: MIT

local config = require("mxroute.config")

local NAME = "transport_map"

---------------------------------------------------------------- settings

local DEFAULTS = { map = {} }

local bad = config.reporter(NAME)

local function check_port(port, where)
    if port ~= nil and not config.is_port(port) then
        bad("%s: port must be an integer from 1 to 65535", where)
    end
    return port
end

-- "[host]:port", "host:port", "[2001:db8::1]", "192.0.2.1" ->
-- host, port (or nil), bracketed (no MX lookup wanted)
local function parse_hop(s, where)
    local host, port = s:match("^%[(.+)%]:(%d+)$")
    local bracketed = host ~= nil
    if not host then
        host = s:match("^%[(.+)%]$")
        bracketed = host ~= nil
    end
    if not host then
        host, port = s:match("^([^:]+):(%d+)$") -- not for bare IPv6
    end
    host = host or s
    port = check_port(port and math.tointeger(tonumber(port)), where)
    if config.is_address(host) then
        return host, port, true -- an address is never an MX lookup
    end
    if not config.is_hostname(host) then
        bad("%s: '%s' is not a host name or [address]", where, s)
    end
    return host, port, bracketed
end

local ITEM_KEYS = { host = true, port = true, tls = true, addresses = true,
                    label = true }

-- One fixed relay host -> the table plan:add takes (position "last": the
-- hook adds hops in order after removing the MX hosts).
local function relay_item(item, defaults, where)
    if type(item) == "string" then
        local host, port = parse_hop(item, where)
        item = { host = host, port = port }
    end
    if type(item) ~= "table" then
        bad("%s must be a host name or a table", where)
    end
    for k in pairs(item) do
        if not ITEM_KEYS[k] then
            bad("%s: unknown key '%s'", where, tostring(k))
        end
    end
    if not (config.is_hostname(item.host) or config.is_address(item.host)) then
        bad("%s: host must be a host name", where)
    end
    check_port(item.port, where)
    if item.addresses ~= nil then
        if type(item.addresses) ~= "table" or #item.addresses == 0 then
            bad("%s: addresses must be a non-empty list", where)
        end
        for i, a in ipairs(item.addresses) do
            if not config.is_address(a) then
                bad("%s: addresses[%d] must be an IP address", where, i)
            end
        end
    end
    local tls = item.tls
    if tls == nil then
        tls = defaults.tls
    end
    return {
        host = item.host,
        port = item.port or defaults.port,
        tls = tls,
        addresses = item.addresses,
        label = item.label or defaults.label,
        position = "last",
    }
end

local ENTRY_KEYS = { relay = true, mx = true, reject = true, defer = true,
                     port = true, tls = true, label = true }

-- A table entry -> { kind =, ... }
local function table_entry(e, where)
    for k in pairs(e) do
        if not ENTRY_KEYS[k] then
            bad("%s: unknown key '%s'", where, tostring(k))
        end
    end
    local kinds = (e.relay and 1 or 0) + (e.mx and 1 or 0)
        + (e.reject and 1 or 0) + (e.defer and 1 or 0)
    if kinds ~= 1 then
        bad("%s needs exactly one of relay, mx, reject, defer", where)
    end
    if e.tls ~= nil and type(e.tls) ~= "boolean" then
        bad("%s: tls must be true or false", where)
    end
    local defaults = { port = check_port(e.port, where), tls = e.tls == true,
                       label = e.label or "transport" }
    if e.reject or e.defer then
        local text = e.reject or e.defer
        if type(text) ~= "string" then
            bad("%s: the reply text must be a string", where)
        end
        return { kind = e.reject and "reject" or "defer", text = text }
    end
    if e.mx then
        if not config.is_hostname(e.mx) then
            bad("%s: mx must be a domain name", where)
        end
        return { kind = "mx", domain = e.mx, port = defaults.port,
                 tls = defaults.tls, label = defaults.label }
    end
    local list = type(e.relay) == "table" and e.relay or { e.relay }
    if #list == 0 then
        bad("%s: relay must name at least one host", where)
    end
    local hops = {}
    for i, item in ipairs(list) do
        hops[i] = relay_item(item, defaults, ("%s: relay[%d]"):format(where, i))
    end
    return { kind = "relay", hops = hops }
end

-- A string entry -> { kind =, ... }
local function string_entry(s, where)
    local word, text = s:match("^(%a+):(.*)$")
    if s == "direct" or s == "" or s == "smtp:" or s == "relay:" then
        return { kind = "direct" }
    elseif s == "reject" or s == "defer" then
        return { kind = s, text = s == "reject" and "rejected" or "deferred" }
    elseif word == "error" or word == "reject" then
        return { kind = "reject", text = text }
    elseif word == "retry" or word == "defer" then
        return { kind = "defer", text = text }
    end
    s = s:gsub("^smtp:", ""):gsub("^relay:", "")
    local host, port, bracketed = parse_hop(s, where)
    if bracketed then
        return { kind = "relay", hops = { { host = host, port = port,
                 label = "transport", position = "last" } } }
    end
    return { kind = "mx", domain = host, port = port, label = "transport" }
end

-- The map, with keys normalised (lower case, no trailing dot).
local function build_map(map)
    if type(map) ~= "table" or next(map) == nil then
        bad("map must be a table of at least one entry: domain = next hop")
    end
    local out = {}
    for key, e in pairs(map) do
        local where = ("map[%q]"):format(tostring(key))
        if type(key) ~= "string" or (key ~= "*"
            and not config.is_hostname((key:gsub("^%.", "")))) then
            bad("%s: the key must be a domain, .domain or *", where)
        end
        local k = key:lower():gsub("(.)%.$", "%1")
        if type(e) == "string" then
            out[k] = string_entry(e, where)
        elseif type(e) == "table" then
            out[k] = table_entry(e, where)
        else
            bad("%s must be a string or a table", where)
        end
        out[k].key = key
    end
    return out
end

local cfg = config.merge(NAME, (...), DEFAULTS)
local map = build_map(cfg.map)

-------------------------------------------------------------------- hooks

-- The entry for a domain: exact, then .parent entries, then "*".
local function lookup(domain)
    if map[domain] then
        return map[domain]
    end
    if domain:sub(1, 1) ~= "[" then -- an address literal has no parents
        local rest = domain
        while true do
            local dot = rest:find(".", 1, true)
            if not dot then
                break
            end
            rest = rest:sub(dot + 1)
            if map["." .. rest] then
                return map["." .. rest]
            end
        end
    end
    return map["*"]
end

-- The MX records of a next-hop domain, by preference, ties shuffled; an
-- MX target written as an address, a "." entry and repeats are dropped.
local function next_hop_mx(e)
    local records, err = mx.resolve_mx(e.domain)
    if not records then
        if err ~= "nodata" then
            return nil, err
        end
        records = { { preference = 0, host = e.domain } } -- no MX: itself
    end
    local list, seen = {}, {}
    for _, r in ipairs(records) do
        if r.host ~= "" and not config.is_address(r.host) and not seen[r.host] then
            seen[r.host] = true
            list[#list + 1] = { host = r.host, preference = r.preference,
                                tie = math.random() }
        end
    end
    if #list == 0 then
        return nil, "null MX"
    end
    table.sort(list, function(a, b)
        if a.preference ~= b.preference then
            return a.preference < b.preference
        end
        return a.tie < b.tie
    end)
    return list
end

-- Add each hop after the others; returns how many could be added.
local function add_hops(plan, hops)
    local added = 0
    for _, hop in ipairs(hops) do
        local ok, err = plan:add(hop)
        if ok then
            added = added + 1
        else
            mx.log(("%s: next hop left out: %s"):format(plan.domain, err),
                "warning")
        end
    end
    return added
end

local function is_any()
    return true
end

local function route(plan)
    local e = lookup(plan.domain)
    if not e or e.kind == "direct" then
        return -- the domain's own MX hosts
    end
    if e.kind == "reject" or e.kind == "defer" then
        mx.log(("%s: %s by map[%q]: %s"):format(plan.domain, e.kind, e.key,
            e.text))
        plan:fail(e.kind == "reject" and "permfail" or "tempfail")
        return
    end
    local hops = e.hops
    if e.kind == "mx" then
        local records, err = next_hop_mx(e)
        if not records then
            mx.log(("%s: next hop %s: %s"):format(plan.domain, e.domain, err),
                "warning")
            plan:fail("tempfail") -- wait until the next hop is back
            return
        end
        hops = {}
        for i, r in ipairs(records) do
            hops[i] = { host = r.host, preference = r.preference,
                        port = e.port, tls = e.tls, label = e.label,
                        position = "last" }
        end
    end
    plan:remove(is_any)
    if add_hops(plan, hops) == 0 then
        plan:fail("tempfail")
    end
end

-- Without a "*" entry, only the domains in the map concern the hook:
-- tell the engine, which then skips the call for every other domain (its
-- `domains` rule is the map's: exact names and .parent entries).
local listed = nil
if not map["*"] then
    listed = {}
    for key in pairs(map) do
        listed[#listed + 1] = key
    end
    table.sort(listed)
end

return {
    domains = listed, -- nil: every domain
    route = route,
}
