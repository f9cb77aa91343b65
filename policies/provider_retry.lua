-- provider_retry.lua -- retry schedules per mailbox provider, chosen by
-- the provider's MX host names.
--
-- WHAT IT DOES
--   Gives the domains hosted at a large mailbox provider a retry schedule
--   of their own: after the n-th failed attempt, the next one comes
--   delays[n] seconds later (the last entry repeats), with a little
--   random jitter; and, if set, the message gives up (bounces) after
--   max_attempts attempts or max_age seconds. Other domains keep the
--   engine's schedule.
--
--   Keying: a domain belongs to a provider when its FIRST candidate host
--   (the most preferred MX host) is under one of the provider's
--   `suffixes`: a Google Workspace domain (MX aspmx.l.google.com) is
--   "google" whatever its own name. The retry hook does not see the MX
--   hosts, so the route hook notes each domain's provider when the
--   domain is routed (every attempt routes first), and the retry hook
--   looks the domain up there.
--
-- WHEN TO USE IT
--   The large providers answer bursts with temporary, rate-limiting
--   replies ("421 4.7.0 Try again later", "451 4.7.500 Server busy"); a
--   quick retry only meets the same limit again, while a small
--   self-hosted server that was down deserves the engine's quicker first
--   retry. The default schedules below are a starting point: tune them
--   against your own logs, and add the providers your mail goes to.
--
-- CONFIGURATION (every key, with its default)
--   providers = {      -- a list; the first provider that matches wins;
--                      -- giving it replaces the whole default list
--     { name = "google",    suffixes = { "google.com", "googlemail.com" },
--       delays = { 600, 1200, 2400, 3600 } },
--     { name = "microsoft", suffixes = { "outlook.com" },
--       delays = { 600, 1200, 2400, 3600 } },
--     { name = "yahoo",     suffixes = { "yahoodns.net" },
--       delays = { 600, 1200, 2400, 3600 } },
--   }
--                      -- each provider:
--                      --   name         required, for the log
--                      --   suffixes     required: MX host suffixes
--                      --                ("outlook.com" matches
--                      --                x.mail.protection.outlook.com)
--                      --   delays       required: seconds, 1st, 2nd, ...
--                      --   max_attempts optional: give up after this many
--                      --   max_age      optional: give up once the message
--                      --                is this many seconds old
--   jitter = 0.1       -- each delay is moved by up to this fraction, at
--                      -- random, so queued mail does not return all at once
--
-- EXAMPLE
--   A self-hosted partner that must not wait long, and a provider whose
--   mail must bounce within a day:
--
--     { providers = {
--         { name = "partner", suffixes = { "mail.partner.example" },
--           delays = { 120, 300, 600 } },
--         { name = "bulk", suffixes = { "bulkmail.example" },
--           delays = { 1800, 3600 }, max_age = 86400 } } }
--
--   mxroute simulate --policy policies/provider_retry.lua \
--     --policy-config '{jitter=0}' --follow \
--     --outcome '*:mail=451/4.7.0/Try again later' gmail.com
--
-- NOTES
--   * List this policy before policies that replace the MX hosts with
--     relays (smarthost, security_gateway...): after them, the first
--     candidate is the relay.
--   * With several retry policies, each sees the delay the previous one
--     chose and may change it: the last one wins.
--   * The route hook remembers at most 10000 domains, forgotten all at
--     once beyond; a domain not remembered keeps the engine's schedule.
--
-- SPDX-License-Identifier: MIT

local config = require("mxroute.config")
local util = require("mxroute.util")

local NAME = "provider_retry"

---------------------------------------------------------------- settings

local DEFAULTS = {
    providers = {
        { name = "google", suffixes = { "google.com", "googlemail.com" },
          delays = { 600, 1200, 2400, 3600 } },
        { name = "microsoft", suffixes = { "outlook.com" },
          delays = { 600, 1200, 2400, 3600 } },
        { name = "yahoo", suffixes = { "yahoodns.net" },
          delays = { 600, 1200, 2400, 3600 } },
    },
    jitter = 0.1,
}

local MAX_DELAY = 30 * 86400 -- what a retry hook may return

local bad = config.reporter(NAME)

local PROVIDER_KEYS = { name = true, suffixes = true, delays = true,
                        max_attempts = true, max_age = true }

local function check_provider(p, where)
    if type(p) ~= "table" then
        bad("%s must be a table", where)
    end
    for k in pairs(p) do
        if not PROVIDER_KEYS[k] then
            bad("%s: unknown key '%s'", where, tostring(k))
        end
    end
    if type(p.name) ~= "string" or p.name == "" then
        bad("%s.name must be a string", where)
    end
    if type(p.suffixes) ~= "table" or #p.suffixes == 0 then
        bad("%s.suffixes must be a non-empty list of host suffixes", where)
    end
    for i, s in ipairs(p.suffixes) do
        if not config.is_domain(s) then
            bad("%s.suffixes[%d] must be a domain name", where, i)
        end
    end
    if type(p.delays) ~= "table" or #p.delays == 0 then
        bad("%s.delays must be a non-empty list of seconds", where)
    end
    for i, d in ipairs(p.delays) do
        if type(d) ~= "number" or d < 0 or d > MAX_DELAY then
            bad("%s.delays[%d] must be a number of seconds (0 to %d)", where,
                i, MAX_DELAY)
        end
    end
    if p.max_attempts ~= nil and (math.type(p.max_attempts) ~= "integer"
        or p.max_attempts < 1) then
        bad("%s.max_attempts must be an integer >= 1", where)
    end
    if p.max_age ~= nil and (type(p.max_age) ~= "number" or p.max_age <= 0) then
        bad("%s.max_age must be a number of seconds > 0", where)
    end
end

local cfg = config.merge(NAME, (...), DEFAULTS)

if type(cfg.providers) ~= "table" then
    bad("providers must be a list of providers")
end
for i, p in ipairs(cfg.providers) do
    check_provider(p, ("providers[%d]"):format(i))
end
if type(cfg.jitter) ~= "number" or cfg.jitter < 0 or cfg.jitter > 0.5 then
    bad("jitter must be a number from 0 to 0.5")
end

-------------------------------------------------------------------- state

-- domain -> provider, noted by the route hook for the retry hook
local provider_of, remembered = {}, 0
local MAX_REMEMBERED = 10000

local function remember(domain, provider)
    if provider_of[domain] == provider then
        return
    end
    if provider_of[domain] == nil then
        if remembered >= MAX_REMEMBERED then
            provider_of, remembered = {}, 0 -- bounded: forget all at once
        end
        remembered = remembered + 1
    end
    provider_of[domain] = provider
end

local function forget(domain)
    if provider_of[domain] ~= nil then
        provider_of[domain], remembered = nil, remembered - 1
    end
end

-------------------------------------------------------------------- hooks

local function provider_for(host)
    for _, p in ipairs(cfg.providers) do
        if util.host_in(host, p.suffixes) then
            return p
        end
    end
    return nil
end

local function route(plan)
    local first = plan:candidates()[1]
    if not first then
        return -- DNS failed for now: keep what we knew
    end
    local p = provider_for(first.host)
    if p then
        remember(plan.domain, p)
    else
        forget(plan.domain)
    end
end

local function retry(ev)
    local p = provider_of[ev.domain]
    if not p then
        return nil -- not at a known provider: the engine's schedule
    end
    if (p.max_attempts and ev.attempts >= p.max_attempts)
        or (p.max_age and ev.age >= p.max_age) then
        mx.log(("%s at %s: giving up after %d attempts, %d s"):format(
            ev.recipient, p.name, ev.attempts, math.floor(ev.age)))
        return false -- the recipient bounces with its last error
    end
    local delay = p.delays[math.min(math.max(ev.attempts, 1), #p.delays)]
    if cfg.jitter > 0 then
        delay = delay * (1 + cfg.jitter * (2 * math.random() - 1))
    end
    return math.min(delay, MAX_DELAY)
end

return { route = route, retry = retry }
