-- weighted_relays_test.lua -- tests of policies/weighted_relays.lua (run
-- with `mxroute test policies/tests/weighted_relays_test.lua`).

local ZONE = [[
$ORIGIN example.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
@        MX   10 mx1
mx1      A    192.0.2.1
big      A    192.0.2.25
small    A    192.0.2.26
standby  A    192.0.2.27
nomx     MX   0 .
]]

local BIG, SMALL, STANDBY = "big.example.test", "small.example.test", "standby.example.test"

local function setup(config)
    reset()
    zone(ZONE)
    policy("../weighted_relays.lua", config)
end

local function load_error(config)
    setup(config)
    local loaded, err = pcall(route, "example.test")
    return loaded and "" or tostring(err)
end

-- How often each relay comes first in n routes.
local function firsts(n)
    local count = {}
    for _ = 1, n do
        local h = hosts(route("user@example.test"))[1]
        count[h] = (count[h] or 0) + 1
    end
    return count
end

local THREE_TO_ONE = { relays = { { host = BIG, weight = 3 },
                                  { host = SMALL, weight = 1 },
                                  { host = STANDBY, weight = 0 } } }

test("every relay is in the plan; the MX hosts are not", function()
    setup(THREE_TO_ONE)
    local plan = route("user@example.test")
    eq(plan.status, "ok")
    eq(#plan.candidates, 3)
    eq(plan.candidates[3].host, STANDBY) -- weight 0: always last
    eq(plan.skipped[1].host, "mx1.example.test")
    eq(plan.skipped[1].reason, "policy")
    for _, c in ipairs(plan.candidates) do
        eq(c.source, "policy")
    end
end)

test("traffic splits by weight (3:1 over 800 routes)", function()
    setup(THREE_TO_ONE)
    local count = firsts(800)
    -- expected 600 and 200; the bounds are more than 6 standard deviations
    ok(count[BIG] >= 520 and count[BIG] <= 680, "big first " .. tostring(count[BIG]))
    eq((count[BIG] or 0) + (count[SMALL] or 0), 800)
    eq(count[STANDBY], nil)
end)

test("equal weights share evenly", function()
    setup({ relays = { BIG, SMALL } }) -- weight 1 each
    local count = firsts(400)
    ok(count[BIG] >= 140 and count[BIG] <= 260, "big first " .. tostring(count[BIG]))
end)

test("a weight-0 relay is a standby: used when the others fail", function()
    setup(THREE_TO_ONE)
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { BIG .. "=refused", SMALL .. "=refused" } }
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, STANDBY)
end)

test("a relay fails: the other one takes the mail", function()
    for _ = 1, 8 do -- whichever was picked first
        setup({ relays = { BIG, SMALL } })
        local r = deliver{ to = { "user@example.test" }, outcomes = { BIG .. "=timeout" } }
        eq(r.recipients[1].host, SMALL)
    end
end)

test("every relay down and no fallback: the mail waits", function()
    setup({ relays = { BIG, SMALL } })
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { BIG .. "=refused", SMALL .. "=refused" } }
    eq(r.recipients[1].state, "deferred")
end)

test("fallback_to_mx: the MX hosts come after every relay", function()
    setup({ relays = { BIG, SMALL }, fallback_to_mx = true })
    local h = hosts(route("example.test"))
    eq(#h, 3)
    eq(h[3], "mx1.example.test")
end)

test("seed makes the picks reproducible", function()
    local config = { relays = { BIG, SMALL, { host = STANDBY, weight = 2 } },
                     seed = 42 }
    setup(config)
    local first = {}
    for i = 1, 20 do
        first[i] = hosts(route("example.test"))[1]
    end
    setup(config)
    for i = 1, 20 do
        eq(hosts(route("example.test"))[1], first[i], "route " .. i)
    end
end)

test("relay settings: port, TLS, fixed addresses, label", function()
    setup({ relays = { { host = "out.provider.invalid", port = 587, tls = true,
                         addresses = { "203.0.113.7" } } } })
    local c = route("example.test").candidates[1]
    eq(c.host, "out.provider.invalid")
    eq(c.port, 587)
    eq(c.tls, true)
    eq(c.addresses, { "203.0.113.7" })
    eq(c.label, "weight 1")
end)

test("domains: only the listed domains are split", function()
    setup({ relays = { BIG }, domains = { "other.test" } })
    eq(hosts(route("example.test")), { "mx1.example.test" })
    eq(hosts(route("other.test")), { BIG })
end)

test("a null MX domain bounces here unless keep_permfail = false", function()
    setup({ relays = { BIG } })
    eq(route("nomx.example.test").status, "permfail")
    setup({ relays = { BIG }, keep_permfail = false })
    eq(hosts(route("nomx.example.test")), { BIG })
end)

test("bad configurations are refused with a message naming the setting", function()
    local cases = {
        { {}, "relays must be a list of at least one relay" },
        { { relays = { { host = BIG, weight = -1 } } }, "relays%[1%]%.weight must be a number >= 0" },
        { { relays = { { host = BIG, weight = "3" } } }, "relays%[1%]%.weight must be a number" },
        { { relays = { { host = BIG, weight = 0 } } }, "relays: at least one relay needs a weight above 0" },
        { { relays = { { host = "bad host" } } }, "relays%[1%]%.host must be a host name" },
        { { relays = { { host = BIG, wieght = 2 } } }, "relays%[1%]: unknown key 'wieght'" },
        { { relays = { BIG }, seed = 1.5 }, "seed must be an integer" },
        { { relays = { BIG }, fallback_to_mx = 1 }, "fallback_to_mx must be true or false" },
        { { relays = { BIG }, domain = { "a.test" } }, "unknown setting 'domain'" },
    }
    for _, c in ipairs(cases) do
        local err = load_error(c[1])
        ok(err:find("weighted_relays: " .. c[2]), "want '" .. c[2] .. "', got '" .. err .. "'")
    end
end)
