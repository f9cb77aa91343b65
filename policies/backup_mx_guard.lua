-- backup_mx_guard.lua -- treat third-party backup MX hosts as the last
-- resort, or skip them.
--
-- WHAT IT DOES
--   Looks at the backup hosts of each plan: every host whose preference is
--   above the most preferred one. A backup run by a third party (not by
--   the domain's own organisation) is moved to the end of the plan
--   (mode = "last"), after every host the organisation runs, or removed
--   from it (mode = "skip"; listed in `skipped` with reason "policy").
--   The most preferred hosts are never touched: they are where the domain
--   wants its mail, whoever runs them.
--
--   A backup host belongs to the domain's organisation when it is
--     * the domain itself or a name below it (mx2.example.com for
--       example.com), or
--     * below one of the `own` suffixes, or
--     * (with infer = true) in the same zone as a most preferred host:
--       the primary mx1.mail.example.net makes mx2.mail.example.net and
--       backup.mail.example.net "own" (the part after the primary's first
--       label must have two labels at least).
--   A backup under one of the `third_party` suffixes is third-party even
--   when the rules above say "own". Everything else is third-party when
--   infer = true; with infer = false, only `third_party` hosts are.
--
-- WHEN TO USE IT
--   Backup MX services often accept mail for any recipient and queue it,
--   so mail that reaches them is delayed and the recipients they cannot
--   verify bounce later, from them (backscatter); their spam filtering is
--   often weaker, which spammers exploit (the seed articles warn about
--   both). A sender gains little by delivering there while the
--   organisation's own hosts may come back: "last" keeps them as the very
--   last resort; "skip" never uses them (the mail waits in your queue
--   instead).
--
-- CONFIGURATION (every key, with its default)
--   mode = "last"       -- "last": third-party backups go to the end;
--                       -- "skip": they are removed
--   own = {}            -- host suffixes that are always "own" (your
--                       -- partners' or a sister company's servers)
--   third_party = {}    -- host suffixes that are always third-party
--                       -- (known backup MX services)
--   infer = true        -- guess the organisation from the domain and its
--                       -- most preferred hosts (above); false: only
--                       -- third_party hosts are third-party
--   domains = nil       -- nil: every domain; or only these ("example.com",
--                       -- ".example.com")
--
-- EXAMPLE
--   Skip two known backup services, never touch a sister company's hosts:
--
--     { mode = "skip", third_party = { "backup-mx.example", "mxqueue.example" },
--       own = { "sister.example" } }
--
--   mxroute route --policy policies/backup_mx_guard.lua \
--     --policy-config '{mode="skip"}' example.com
--
-- NOTES
--   * "skip" leaves a plan with fewer hosts: when the most preferred
--     hosts are down the mail is deferred and retried, it does not go to
--     the backup.
--   * Hosts keep their preferences: in "last" mode the plan's order, not
--     the numbers, says what is tried first (plan:reorder).
--   * Name-based: a backup service that hides under the domain's own
--     names (mx9.example.com pointing at a provider) counts as "own".
--
-- SPDX-License-Identifier: MIT

local config = require("mxroute.config")
local util = require("mxroute.util")

local NAME = "backup_mx_guard"

---------------------------------------------------------------- settings

local DEFAULTS = {
    mode = "last",
    own = {},
    third_party = {},
    infer = true,
}
local OPTIONAL = { domains = true } -- settings without a default

local bad = config.reporter(NAME)

local cfg = config.merge(NAME, (...), DEFAULTS, OPTIONAL)

local function check_names(key)
    local list = cfg[key]
    if type(list) ~= "table" then
        bad("%s must be a list of domain names", key)
    end
    for i, name in ipairs(list) do
        if not config.is_domain(name) then
            bad("%s[%d] must be a domain name", key, i)
        end
    end
end

if cfg.mode ~= "last" and cfg.mode ~= "skip" then
    bad("mode must be \"last\" or \"skip\"")
end
check_names("own")
check_names("third_party")
if type(cfg.infer) ~= "boolean" then
    bad("infer must be true or false")
end
if cfg.domains ~= nil then
    check_names("domains")
    if #cfg.domains == 0 then
        bad("domains must list a domain at least (leave it out for all)")
    end
end

-------------------------------------------------------------------- hooks

-- The zones of the most preferred hosts: "mx1.mail.example.net" gives
-- "mail.example.net". A zone of one label ("com") says nothing.
local function primary_zones(candidates, top)
    local zones = {}
    for _, c in ipairs(candidates) do
        if c.preference == top then
            local zone = c.host:match("^[^.]+%.(.+%..+)$")
            if zone then
                zones[#zones + 1] = zone
            end
        end
    end
    return zones
end

local function is_third_party(host, domain, zones)
    if util.host_in(host, cfg.third_party) then
        return true
    end
    if util.host_in(host, domain) or util.host_in(host, cfg.own) then
        return false
    end
    if not cfg.infer then
        return false
    end
    return not util.host_in(host, zones)
end

-- Are the third-party hosts already the last ones of the plan?
local function already_last(candidates, third, count)
    for i = #candidates - count + 1, #candidates do
        if not third[candidates[i].host] then
            return false
        end
    end
    return true
end

local function route(plan)
    local candidates = plan:candidates()
    if #candidates < 2 then
        return -- nothing to choose between
    end
    local top = candidates[1].preference
    for _, c in ipairs(candidates) do
        top = math.min(top, c.preference)
    end
    local zones = primary_zones(candidates, top)
    local own, third, names = {}, {}, {}
    for _, c in ipairs(candidates) do
        if c.preference > top and is_third_party(c.host, plan.domain, zones) then
            third[c.host] = true
            names[#names + 1] = c.host
        else
            own[#own + 1] = c.host
        end
    end
    if #names == 0 then
        return
    end
    if cfg.mode == "skip" then
        plan:remove(function(c) return third[c.host] end)
        mx.log(("%s: third-party backup skipped: %s"):format(plan.domain,
            table.concat(names, ", ")))
    elseif not already_last(candidates, third, #names) then
        plan:reorder(own) -- the organisation's hosts first, in their order
        mx.log(("%s: third-party backup moved last: %s"):format(plan.domain,
            table.concat(names, ", ")))
    end
end

return {
    domains = cfg.domains, -- the engine runs the hook for these only
    route = route,
}
