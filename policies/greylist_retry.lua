-- greylist_retry.lua -- on a greylisting reply, stay with the same host and
-- come back after a short delay, instead of failing over.
--
-- WHAT IT DOES
--   A greylisting server answers a first attempt with a temporary error
--   (typically "451 4.7.1 Greylisted, try again later") and accepts the
--   same message from the same client a few minutes later. The engine's
--   default for a 4xx at MAIL, RCPT, DATA or end-of-data is to try the
--   next MX host, which gets the mail greylisted there too, or lands it
--   on a backup MX that only queues it. This policy:
--     * outcome hook: a greylisting reply defers the recipients concerned
--       at once (action "defer"): no other host is tried;
--     * retry hook: the recipient comes back after delays[n] seconds (n:
--       the failed attempts so far; the last entry repeats), not after
--       the engine's backoff;
--     * route hook: for stick_for seconds, the host that greylisted a
--       domain is tried first again among the hosts of its preference, so
--       the retry reaches the server that knows the message. It never
--       moves ahead of a more preferred host.
--
--   A reply is greylisting when its code is in `codes` and either its
--   enhanced status code starts with one of `enhanced`, or its text
--   contains one of `texts` (without regard to case), at one of `stages`.
--   Other 4xx replies keep the engine's decision.
--
-- WHEN TO USE IT
--   You send to many small and self-hosted domains (Postgrey, sqlgrey,
--   milter-greylist, OpenBSD spamd, some filtering services) and see mail
--   land on backup MX hosts, or retried hours later, because of
--   greylisting. For "stay on 4xx" for every 4xx of a domain, the engine
--   has a per-domain rule instead (mxr_rules_stay_on_4xx).
--
-- CONFIGURATION (every key, with its default)
--   codes    = { 450, 451 }           -- reply codes that may be greylisting
--   enhanced = { "4.7." }             -- enhanced code prefixes that say so
--   texts    = { "greylist", "graylist", "try again later", "try later",
--                "come back later", "please retry",
--                "internal resource temporarily unavailable" }
--                                     -- phrases that say so (any case)
--   stages   = { "mail", "rcpt", "data", "dot" } -- where to look
--   delays   = { 360, 900, 1800 }     -- seconds before the 1st, 2nd, ...
--                                     -- retry; the last repeats. Retries
--                                     -- come 6, 21, 51 minutes after the
--                                     -- first try, then every 30: past
--                                     -- the usual greylisting delays, 5
--                                     -- minutes (Postgrey's default) to
--                                     -- 25-30 (spamd, milter-greylist)
--   stick_for = 3600                  -- seconds the greylisting host stays
--                                     -- first for its domain; 0: off
--
-- EXAMPLE
--   Faster first retry, and a filtering service's own wording:
--
--     { delays = { 300, 600, 1200, 3600 },
--       texts = { "greylist", "try again later", "deferred by policy" } }
--
--   mxroute simulate --policy policies/greylist_retry.lua \
--     --policy-config '{delays={300,600}}' \
--     --outcome '*:rcpt=451/4.7.1/Greylisted, try again later' example.com
--
-- NOTES
--   * The retry event has no enhanced status code and no host, so the
--     outcome hook notes the greylisting verdict for the retry hook that
--     the engine calls right after it for the same attempt (see `last`
--     below).
--   * The route hook keeps one entry per domain greylisted in the last
--     stick_for seconds (at most 10000; forgotten all at once beyond).
--   * The message still bounces at the engine's maximum age.
--
-- SPDX-License-Identifier: MIT

local config = require("mxroute.config")

local NAME = "greylist_retry"

---------------------------------------------------------------- settings

local DEFAULTS = {
    codes = { 450, 451 },
    enhanced = { "4.7." },
    texts = { "greylist", "graylist", "try again later", "try later",
              "come back later", "please retry",
              "internal resource temporarily unavailable" },
    stages = { "mail", "rcpt", "data", "dot" },
    delays = { 360, 900, 1800 },
    stick_for = 3600,
}

local bad = config.reporter(NAME)

local STAGES = { connect = true, tls = true, greeting = true, ehlo = true,
                 mail = true, rcpt = true, data = true, dot = true }

local cfg = config.merge(NAME, (...), DEFAULTS)

-- Each list setting: non-empty, every item checked; kept as a set where
-- the hooks look items up.
local function check_list(key, what, check)
    local list = cfg[key]
    if type(list) ~= "table" or #list == 0 then
        bad("%s must be a non-empty list of %s", key, what)
    end
    local set = {}
    for i, v in ipairs(list) do
        if not check(v) then
            bad("%s[%d] is not one of the %s", key, i, what)
        end
        set[v] = true
    end
    return set
end

local codes = check_list("codes", "reply codes 400 to 499", function(v)
    return math.type(v) == "integer" and v >= 400 and v <= 499
end)
check_list("enhanced", "enhanced code prefixes (\"4.7.\")", function(v)
    return type(v) == "string" and v:find("^4%.[%d.]*$") ~= nil
end)
check_list("texts", "phrases (strings)", function(v)
    return type(v) == "string" and v ~= ""
end)
local stages = check_list("stages", "stages (mail, rcpt, data, dot...)",
    function(v) return STAGES[v] == true end)
check_list("delays", "delays in seconds (0 to 86400)", function(v)
    return type(v) == "number" and v >= 0 and v <= 86400
end)
if type(cfg.stick_for) ~= "number" or cfg.stick_for < 0 then
    bad("stick_for must be a number of seconds (0: off)")
end

local texts = {}
for i, t in ipairs(cfg.texts) do
    texts[i] = t:lower()
end

-------------------------------------------------------------------- state

-- The verdict of the latest outcome hook call, for the retry hook: the
-- engine calls the retry hook right after a "defer", within the same
-- attempt, and every later failure calls the outcome hook again first.
local last = nil

-- domain -> { host =, expires = } for the route hook
local sticky, nsticky = {}, 0
local MAX_STICKY = 10000

local function stick(domain, host)
    if cfg.stick_for == 0 then
        return
    end
    if not sticky[domain] then
        if nsticky >= MAX_STICKY then
            sticky, nsticky = {}, 0 -- bounded memory: forget all at once
        end
        nsticky = nsticky + 1
    end
    sticky[domain] = { host = host, expires = mx.now() + cfg.stick_for }
end

-------------------------------------------------------------------- hooks

local function starts_with(s, prefix)
    return s:sub(1, #prefix) == prefix
end

local function is_greylisting(ev)
    if not codes[ev.code] or not stages[ev.stage] then
        return false
    end
    for _, prefix in ipairs(cfg.enhanced) do
        if ev.enhanced and starts_with(ev.enhanced, prefix) then
            return true
        end
    end
    local text = (ev.text or ""):lower()
    for _, phrase in ipairs(texts) do
        if text:find(phrase, 1, true) then -- plain find, no pattern
            return true
        end
    end
    return false
end

local function outcome(ev)
    last = nil
    if not is_greylisting(ev) then
        return nil -- the engine's decision stands
    end
    last = { domain = ev.domain, code = ev.code }
    stick(ev.domain, ev.host)
    mx.log(("%s greylisted by %s at %s (%d %s): deferring"):format(
        ev.recipient or ev.domain, ev.host, ev.stage, ev.code,
        ev.enhanced or ""))
    return "defer"
end

local function retry(ev)
    if not (last and last.domain == ev.domain and last.code == ev.code) then
        return nil -- not greylisting: the engine's schedule
    end
    local n = math.min(math.max(ev.attempts, 1), #cfg.delays)
    return cfg.delays[n]
end

-- The greylisting host goes first again among the hosts of its
-- preference; hosts of other preferences ahead of it stay ahead.
local function route(plan)
    local s = sticky[plan.domain]
    if not s then
        return
    end
    if mx.now() >= s.expires then
        sticky[plan.domain], nsticky = nil, nsticky - 1
        return
    end
    local candidates = plan:candidates()
    local at
    for i, c in ipairs(candidates) do
        if c.host == s.host then
            at = i
            break
        end
    end
    if not at then
        return -- no longer an MX host of the domain
    end
    local order = {}
    for i = 1, at - 1 do
        if candidates[i].preference ~= candidates[at].preference then
            order[#order + 1] = candidates[i].host
        end
    end
    order[#order + 1] = s.host
    plan:reorder(order)
end

return {
    outcome = outcome,
    retry = retry,
    route = cfg.stick_for > 0 and route or nil, -- no route hook: no cost
}
