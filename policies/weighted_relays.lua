-- weighted_relays.lua -- split outgoing mail across relays by weight.
--
-- WHAT IT DOES
--   For every message it routes, picks one relay at random, each with a
--   chance proportional to its weight, and puts it first; the other
--   relays follow as failover, also in a weighted random order. Over
--   many messages, a relay with weight 3 takes about three times the mail
--   of a relay with weight 1. A relay with weight 0 is a standby: it is
--   only tried after every weighted relay, in the order listed.
--
--   The domain's own MX hosts are removed (listed in `skipped` with
--   reason "policy"), or kept after the relays with fallback_to_mx = true.
--
-- WHEN TO USE IT
--   Several relays of unequal size (a big and a small outbound cluster),
--   a provider migration (move 10%, then 50%, then all of the traffic to
--   the new relay), or two providers with a contract split. For relays of
--   equal weight in a fixed order, smarthost.lua does it.
--
-- CONFIGURATION (every key, with its default)
--   relays = {}            -- required, at least one with a weight above
--                          -- 0; each a table:
--       { host      = "relay1.example.net", -- required: name or IP address
--         weight    = 1,       -- a number >= 0
--         port      = 25,      -- SMTP port
--         tls       = false,   -- true: TLS required
--         addresses = nil,     -- {"192.0.2.25", ...}: no DNS lookup
--         label     = nil }    -- shown in plans; default "weight N"
--   domains = nil          -- nil: all mail; or only these domains
--                          -- ("example.com", ".example.com")
--   fallback_to_mx = false -- true: keep the MX hosts after the relays
--   keep_permfail = true   -- a domain DNS says takes no mail (null MX,
--                          -- NXDOMAIN) bounces here; false: relay it too
--   seed = nil             -- a number: seed math.random when the policy
--                          -- loads, so that a run is reproducible (tests);
--                          -- nil: a random seed
--
-- EXAMPLE
--   Move a quarter of the mail to a new provider, keep the old relay as
--   the standby of last resort:
--
--     { relays = { { host = "out.old-provider.example", weight = 3 },
--                  { host = "out.new-provider.example", weight = 1, port = 587,
--                    tls = true },
--                  { host = "standby.example.net", weight = 0 } } }
--
--   mxroute route --policy policies/weighted_relays.lua \
--     --policy-config '{relays={{host="r1.example.net",weight=3},{host="r2.example.net"}}}' \
--     example.com
--
-- NOTES
--   * The pick is per route: every message (every retry too) draws again.
--     Recipients of one message share its pick.
--   * math.random is the policy's own generator, seeded by the engine's
--     --seed (MXR_OPT_SEED) when one is given; `seed` here overrides it.
--   * A relay that does not resolve is left out for that route (a
--     warning); with no relay left and no fallback, the plan fails
--     temporarily (reason "policy").
--
-- SPDX-License-Identifier: MIT

local config = require("mxroute.config")

local NAME = "weighted_relays"

---------------------------------------------------------------- settings

local DEFAULTS = {
    relays = {},
    fallback_to_mx = false,
    keep_permfail = true,
}
local OPTIONAL = { domains = true, seed = true } -- settings without a default

local bad = config.reporter(NAME)

local EXTRA_KEYS = { weight = true } -- besides config.check_relay's

-- Checked by config.check_relay after the host, before the port.
local function check_weight(r, where)
    local weight = r.weight == nil and 1 or r.weight
    if type(weight) ~= "number" or weight < 0 or weight ~= weight
        or weight == math.huge then
        bad("%s.weight must be a number >= 0", where)
    end
end

-- One relay of the configuration -> { weight =, spec = (for plan:add) }
local function relay_of(r, where)
    r = config.check_relay(NAME, r, where, EXTRA_KEYS, check_weight)
    local weight = r.weight == nil and 1 or r.weight
    return {
        weight = weight,
        spec = { host = r.host, port = r.port, tls = r.tls == true,
                 addresses = r.addresses,
                 label = r.label or ("weight %g"):format(weight),
                 position = "last" }, -- then plan:reorder them first
    }
end

local cfg = config.merge(NAME, (...), DEFAULTS, OPTIONAL)

if type(cfg.relays) ~= "table" or #cfg.relays == 0 then
    bad("relays must be a list of at least one relay")
end
local relays, total = {}, 0
for i, r in ipairs(cfg.relays) do
    relays[i] = relay_of(r, ("relays[%d]"):format(i))
    total = total + relays[i].weight
end
if total <= 0 then
    bad("relays: at least one relay needs a weight above 0")
end
if cfg.domains ~= nil then
    config.check_domain_list(NAME, cfg.domains, "domains", true)
end
for _, key in ipairs({ "fallback_to_mx", "keep_permfail" }) do
    if type(cfg[key]) ~= "boolean" then
        bad("%s must be true or false", key)
    end
end
if cfg.seed ~= nil then
    if math.type(cfg.seed) ~= "integer" then
        bad("seed must be an integer")
    end
    math.randomseed(cfg.seed)
end

-------------------------------------------------------------------- hooks

-- The relays in a weighted random order: draw one among those left, with
-- a chance proportional to its weight, again and again; the weight-0
-- standbys stay last, in their order.
local function weighted_order()
    local left, order = {}, {}
    for i, r in ipairs(relays) do
        left[i] = r
    end
    while true do
        local sum = 0
        for _, r in ipairs(left) do
            sum = sum + r.weight
        end
        if sum <= 0 then
            break
        end
        local x, pick = math.random() * sum, nil
        for i, r in ipairs(left) do
            if r.weight > 0 then
                pick = i -- the last positive one, should rounding leave x >= 0
                x = x - r.weight
                if x < 0 then
                    break
                end
            end
        end
        order[#order + 1] = table.remove(left, pick)
    end
    for _, r in ipairs(left) do
        order[#order + 1] = r
    end
    return order
end

local function is_any()
    return true
end

local function route(plan)
    if plan.status == "permfail" and cfg.keep_permfail then
        return -- null MX, NXDOMAIN...: bounce here, as a relay would
    end
    if not cfg.fallback_to_mx then
        plan:remove(is_any)
    end
    local added = {}
    for _, relay in ipairs(weighted_order()) do
        local ok, err = plan:add(relay.spec) -- may wait for DNS
        if ok then
            added[#added + 1] = relay.spec.host
        else
            mx.log(("relay %s left out: %s"):format(relay.spec.host, err),
                "warning")
        end
    end
    if #added > 0 then
        plan:reorder(added) -- the relays first, in the order drawn
    elseif not cfg.fallback_to_mx then
        plan:fail("tempfail") -- no relay now: wait
    end
end

return {
    domains = cfg.domains,
    route = route,
}
