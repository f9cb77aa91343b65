-- provider-retry.lua -- domains hosted at a provider that throttles (4xx
-- when mail comes too fast) are retried less often, and given up on after
-- a number of attempts.
--
-- The retry hook sees the domain, not the MX hosts; so the route hook,
-- which sees the hosts, remembers which domains the provider hosts. (A
-- message is always routed before it is attempted, so the retry hook of
-- that attempt finds its domain here.)
--
-- Configuration:
--   provider      the provider's host domains, e.g. {"mail.example.net"}
--   min_delay     seconds; a retry comes no sooner than this times the
--                 number of attempts so far (default 1800)
--   max_attempts  give up (bounce) after this many attempts (default 10)
local cfg = ...
local util = require("mxroute.util")

local provider = assert(cfg.provider, "provider-retry.lua: provider = {...}")
local min_delay = cfg.min_delay or 1800
local max_attempts = cfg.max_attempts or 10

-- Domains seen at the provider; forgotten all at once when it grows big
-- (a policy's memory is capped: see --policy-max-memory).
local hosted, nhosted = {}, 0

local function remember(domain)
    if hosted[domain] then
        return
    end
    if nhosted >= 10000 then
        hosted, nhosted = {}, 0
    end
    hosted[domain], nhosted = true, nhosted + 1
end

return {
    route = function(plan)
        for _, c in ipairs(plan:candidates()) do
            if util.host_in(c.host, provider) then
                remember(plan.domain)
                return
            end
        end
    end,

    retry = function(ev)
        if not hosted[ev.domain] then
            return nil -- not at the provider: the engine's delay stands
        end
        if ev.attempts >= max_attempts then
            return false -- give up: the recipient bounces
        end
        return math.max(ev.delay, min_delay * ev.attempts)
    end,
}
