-- mxroute.config -- helpers to check a policy's configuration.
--
--   local config = require("mxroute.config")
--
--   local NAME = "my_policy"
--   local bad = config.reporter(NAME)
--   local cfg = config.merge(NAME, (...), { relays = {} }, { domains = true })
--   if not config.is_host(cfg.relays[1]) then
--       bad("relays[1] must be a host name")
--   end
--
-- The bundled policies (policies/*.lua) share these helpers. A
-- configuration mistake stops the policy from loading, with a message
-- "NAME: what is wrong" that names the setting: every check here raises
-- such an error with error(message, 0), so no file position is added.
--
-- Pure Lua 5.4 that needs only the policy sandbox (string, math, type,
-- pairs, ipairs, tostring, tonumber, error); it sets no global. It is
-- installed with the engine, under $prefix/share/mxroute/lua/, so a copy
-- of a bundled policy keeps working wherever it is put.
--
-- SPDX-License-Identifier: MIT

local M = {}

local mtype = math.type

--- fail(name, fmt, ...) -> never returns
-- Raises the error "NAME: " .. fmt:format(...), at level 0 (no position).
function M.fail(name, fmt, ...)
    error(name .. ": " .. fmt:format(...), 0)
end

local fail = M.fail

--- reporter(name) -> function bad(fmt, ...)
-- A function that raises fail(name, fmt, ...): a policy's `bad` helper.
function M.reporter(name)
    return function(fmt, ...)
        fail(name, fmt, ...)
    end
end

--- merge(name, given, defaults [, optional]) -> cfg
-- The configuration a policy works with: a new table with every key of
-- `defaults`, then every key of `given` over it (values are not copied).
-- `given` is the policy's configuration (the chunk's first argument): nil
-- (none given: the defaults) or a table, else "the configuration must be
-- a table". A key of `given` that is neither in `defaults` nor true in
-- `optional` (settings without a default) raises "unknown setting 'KEY'":
-- a typo must not silently do nothing.
function M.merge(name, given, defaults, optional)
    if given ~= nil and type(given) ~= "table" then
        fail(name, "the configuration must be a table")
    end
    optional = optional or {}
    local cfg = {}
    for k, v in pairs(defaults) do
        cfg[k] = v
    end
    for k, v in pairs(given or {}) do
        if defaults[k] == nil and not optional[k] then
            fail(name, "unknown setting '%s'", tostring(k))
        end
        cfg[k] = v
    end
    return cfg
end

-- Are all dot-separated labels of s (s without a trailing dot) 1 to 63
-- letters, digits and hyphens, not starting or ending with a hyphen?
local function labels_ok(s)
    for label in (s .. "."):gmatch("([^.]*)%.") do
        if #label == 0 or #label > 63 or label:find("[^%w-]")
            or label:find("^-") or label:find("-$") then
            return false
        end
    end
    return true
end

--- is_domain(s) -> boolean
-- True for a domain name or a ".domain" entry: a string of labels (letters,
-- digits, hyphens; see labels_ok), at most 253 characters without one
-- leading and one trailing dot. No IP addresses.
function M.is_domain(s)
    if type(s) ~= "string" then
        return false
    end
    s = s:gsub("^%.", ""):gsub("%.$", "")
    if s == "" or #s > 253 then
        return false
    end
    return labels_ok(s)
end

--- is_hostname(s) -> boolean
-- True for a host name: a non-empty string of at most 254 characters,
-- dot-separated labels of letters, digits and hyphens, one trailing dot
-- allowed. No IP addresses (an IPv4 address passes, being digits and
-- dots).
function M.is_hostname(s)
    if type(s) ~= "string" or s == "" or #s > 254 then
        return false
    end
    return labels_ok((s:gsub("%.$", "")))
end

--- is_host(s) -> boolean
-- is_hostname(s), or an IPv6 address: a string of at most 254 characters
-- with a ":" and only hex digits, ":" and "." (a loose check).
function M.is_host(s)
    if type(s) ~= "string" or s == "" or #s > 254 then
        return false
    end
    if s:find(":", 1, true) then
        return s:find("^[%x:.]+$") ~= nil -- IPv6 address
    end
    return labels_ok((s:gsub("%.$", "")))
end

--- is_address(s) -> boolean
-- True for an IP address: IPv4 as four decimal octets 0 to 255, or IPv6 as
-- at most 45 hex digits, ":" and "." with a ":" in it (a loose check).
function M.is_address(s)
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

--- is_domain_entry(s) -> boolean
-- True for an entry of a `domains`-style list: "example.com" or
-- ".example.com", a string that passes is_host without its leading dot.
function M.is_domain_entry(s)
    return type(s) == "string" and M.is_host((s:gsub("^%.", "")))
end

--- is_port(v) -> boolean
-- True for a TCP port: an integer (math.type) from 1 to 65535.
function M.is_port(v)
    return mtype(v) == "integer" and v >= 1 and v <= 65535
end

--- check_domain_list(name, list, key [, optional]) -> nothing
-- Checks the setting `key` whose value is `list`: a table whose items
-- (ipairs) are all is_domain_entry. Errors: "KEY must be a list of domain
-- names" when list is not a table; with `optional` true (a setting left
-- out to mean "all mail") also when it is empty, with the message "KEY
-- must be a list of domain names (leave it out for all mail)"; and
-- "KEY[I] must be a domain name or .domain" for a bad item.
function M.check_domain_list(name, list, key, optional)
    if optional then
        if type(list) ~= "table" or #list == 0 then
            fail(name, "%s must be a list of domain names (leave it out for all mail)", key)
        end
    elseif type(list) ~= "table" then
        fail(name, "%s must be a list of domain names", key)
    end
    for i, d in ipairs(list) do
        if not M.is_domain_entry(d) then
            fail(name, "%s[%d] must be a domain name or .domain", key, i)
        end
    end
end

local RELAY_KEYS = { host = true, port = true, tls = true, addresses = true,
                     label = true }

--- check_relay(name, r, where [, extra_keys, check_extra]) -> table
-- Checks one relay (gateway, smart host) of a configuration, `where`
-- naming it in messages ("relays[2]"), and returns it as a table: a
-- string r stands for { host = r }. A relay table has the keys
--   host       required, is_host
--   port       nil or is_port
--   tls        nil or a boolean
--   addresses  nil or a non-empty list of is_address
--   label      nil or a string
-- and those true in `extra_keys`. The checks run in this order, each
-- raising fail(name, ...) with the message shown:
--   "WHERE must be a host name or a table", "WHERE: unknown key 'K'",
--   "WHERE.host must be a host name", then check_extra(r, where) when
--   given (it checks the extra keys), "WHERE.port must be an integer from
--   1 to 65535", "WHERE.tls must be true or false", "WHERE.addresses must
--   be a non-empty list of IP addresses", "WHERE.addresses[I] must be an
--   IP address", "WHERE.label must be a string".
-- The caller builds its plan:add spec from the returned table.
function M.check_relay(name, r, where, extra_keys, check_extra)
    if type(r) == "string" then
        r = { host = r }
    end
    if type(r) ~= "table" then
        fail(name, "%s must be a host name or a table", where)
    end
    for k in pairs(r) do
        if not RELAY_KEYS[k] and not (extra_keys and extra_keys[k]) then
            fail(name, "%s: unknown key '%s'", where, tostring(k))
        end
    end
    if not M.is_host(r.host) then
        fail(name, "%s.host must be a host name", where)
    end
    if check_extra then
        check_extra(r, where)
    end
    if r.port ~= nil and not M.is_port(r.port) then
        fail(name, "%s.port must be an integer from 1 to 65535", where)
    end
    if r.tls ~= nil and type(r.tls) ~= "boolean" then
        fail(name, "%s.tls must be true or false", where)
    end
    if r.addresses ~= nil then
        if type(r.addresses) ~= "table" or #r.addresses == 0 then
            fail(name, "%s.addresses must be a non-empty list of IP addresses", where)
        end
        for i, a in ipairs(r.addresses) do
            if not M.is_address(a) then
                fail(name, "%s.addresses[%d] must be an IP address", where, i)
            end
        end
    end
    if r.label ~= nil and type(r.label) ~= "string" then
        fail(name, "%s.label must be a string", where)
    end
    return r
end

return M
