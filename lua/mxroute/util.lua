-- mxroute.util -- small helpers for routing policies.
--
--   local util = require("mxroute.util")
--
--   util.domain_matches("Example.COM", {"example.com", ".example.net"})  --> true
--   util.host_in("mx1.mail.protection.outlook.com", {"outlook.com"})       --> true
--   util.split_address("John.Doe@Example.com")  --> "John.Doe", "example.com"
--
-- Pure Lua 5.4 that needs only the policy sandbox (string, type, ipairs,
-- error); it sets no global. The engine loads it once per policy state:
-- every policy that requires it gets the same table back.
--
-- Names are compared the way DNS compares them: case-insensitively
-- (ASCII), with one trailing dot ignored. Write international names in
-- their A-label form ("xn--bcher-kva.example"), as the engine gives them.
--
-- SPDX-License-Identifier: MIT

local M = {}

local lower, sub, find = string.lower, string.sub, string.find

-- "Mail.Example.COM." -> "mail.example.com"
local function canon(name)
    name = lower(name)
    if sub(name, -1) == "." and #name > 1 then
        name = sub(name, 1, -2)
    end
    return name
end

-- Is name below suffix (suffix starts with "."), on a label boundary?
-- below("a.example.com", ".example.com") is true; below("example.com",
-- ".example.com") and below("badexample.com", ".example.com") are false.
local function below(name, suffix)
    return #name > #suffix and sub(name, -#suffix) == suffix
end

-- A list argument: a string stands for a list of one.
local function as_list(list, fname)
    if type(list) == "string" then
        return { list }
    end
    if type(list) ~= "table" then
        error(("bad argument #2 to '%s' (list of names expected, got %s)")
            :format(fname, type(list)), 3)
    end
    return list
end

local function check_name(name, fname, what)
    if type(name) ~= "string" then
        error(("bad argument #1 to '%s' (%s expected, got %s)")
            :format(fname, what, type(name)), 3)
    end
end

--- domain_matches(domain, list) -> boolean
-- True when domain is in list, where each entry is either
--   "example.com"   that domain exactly, or
--   ".example.com"  any domain below example.com (not example.com itself),
-- the same rule as a policy's `domains` list. Case and one trailing dot
-- do not matter. list may also be a single string. Entries that are not
-- strings are ignored.
function M.domain_matches(domain, list)
    check_name(domain, "domain_matches", "domain name")
    local d = canon(domain)
    for _, entry in ipairs(as_list(list, "domain_matches")) do
        if type(entry) == "string" and entry ~= "" then
            local e = canon(entry)
            if sub(e, 1, 1) == "." then
                if below(d, e) then
                    return true
                end
            elseif d == e then
                return true
            end
        end
    end
    return false
end

--- host_in(host, suffixes) -> boolean
-- True when host is one of the domains in suffixes or a name below one of
-- them, on a label boundary: "outlook.com" matches "outlook.com" and
-- "mx1.mail.protection.outlook.com", never "notoutlook.com". An entry with
-- a leading dot (".outlook.com") matches only names below it. Meant for
-- MX host names: "is this candidate run by that provider?". Case and one
-- trailing dot do not matter; suffixes may also be a single string.
function M.host_in(host, suffixes)
    check_name(host, "host_in", "host name")
    local h = canon(host)
    for _, entry in ipairs(as_list(suffixes, "host_in")) do
        if type(entry) == "string" and entry ~= "" then
            local e = canon(entry)
            if sub(e, 1, 1) == "." then
                if below(h, e) then
                    return true
                end
            elseif h == e or below(h, "." .. e) then
                return true
            end
        end
    end
    return false
end

--- split_address(addr) -> local_part, domain | nil, message
-- Splits a mail address at its last "@" (a quoted local part may hold
-- "@" itself: "\"a@b\"@example.com" gives "\"a@b\"" and "example.com").
-- One pair of surrounding angle brackets is dropped ("<user@example.com>").
-- The local part is returned as written (it may be case-sensitive); the
-- domain is lower-cased, without a trailing dot. An address literal domain
-- ("user@[192.0.2.1]") is returned as written, brackets included.
-- Returns nil and a message when addr has no "@", or an empty local part
-- or domain.
function M.split_address(addr)
    check_name(addr, "split_address", "address")
    local a = addr
    if sub(a, 1, 1) == "<" and sub(a, -1) == ">" then
        a = sub(a, 2, -2)
    end
    local at
    local from = 1
    while true do
        local i = find(a, "@", from, true)
        if not i then
            break
        end
        at, from = i, i + 1
    end
    if not at then
        return nil, "no '@' in address"
    end
    local loc, dom = sub(a, 1, at - 1), sub(a, at + 1)
    if loc == "" then
        return nil, "empty local part"
    end
    if dom == "" or dom == "." then
        return nil, "empty domain"
    end
    if sub(dom, 1, 1) == "[" then
        return loc, dom
    end
    return loc, canon(dom)
end

return M
