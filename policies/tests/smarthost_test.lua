-- smarthost_test.lua -- tests of policies/smarthost.lua (run with
-- `mxroute test policies/tests/smarthost_test.lua`).

local ZONE = [[
$ORIGIN example.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
@        MX   10 mx1
@        MX   20 mx2
mx1      A    192.0.2.1
mx2      A    192.0.2.2
relay1   A    192.0.2.25
relay2   A    192.0.2.26
sub      MX   10 mx1
nomx     MX   0 .
]]

local OTHER = [[
$ORIGIN other.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
@        MX   10 mx
mx       A    198.51.100.1
]]

local R1, R2 = "relay1.example.test", "relay2.example.test"

-- A fresh engine with the test zones and smarthost loaded with config.
local function setup(config)
    reset()
    zone(ZONE)
    zone(OTHER)
    policy("../smarthost.lua", config)
end

-- The message a configuration is refused with ("" when it loads).
local function load_error(config)
    setup(config)
    local loaded, err = pcall(route, "example.test")
    return loaded and "" or tostring(err)
end

-- The configuration most tests use. Each test starts from a fresh engine
-- (setup): host health (a refused connection marks a relay down, and the
-- test clock never moves) would otherwise carry over between tests.
local MAIN = { relays = { R1, { host = R2, port = 587, tls = true } } }

local function skipped_reasons(plan)
    local t = {}
    for _, s in ipairs(plan.skipped) do
        t[s.host] = s.reason
    end
    return t
end

test("all mail goes to the relays, in order; the MX hosts are skipped", function()
    setup(MAIN)
    local plan = route("user@example.test")
    eq(plan.status, "ok")
    eq(hosts(plan), { R1, R2 })
    eq(plan.candidates[1].source, "policy")
    eq(plan.candidates[1].label, "smarthost")
    eq(plan.candidates[1].port, 25)
    eq(plan.candidates[1].tls, false)
    eq(plan.candidates[1].addresses, { "192.0.2.25" })
    eq(plan.candidates[2].port, 587)
    eq(plan.candidates[2].tls, true)
    eq(skipped_reasons(plan), { ["mx1.example.test"] = "policy",
                                ["mx2.example.test"] = "policy" })
end)

test("another domain goes to the same relays", function()
    setup(MAIN)
    eq(hosts(route("someone@other.test")), { R1, R2 })
end)

test("the first relay refuses: the second takes the mail", function()
    setup(MAIN)
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { R1 .. "=refused" } }
    eq(r.action, "delivered")
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, R2)
end)

test("every relay down: the mail waits, never goes direct", function()
    setup(MAIN)
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { R1 .. "=refused", R2 .. "=timeout" } }
    eq(r.action, "defer")
    eq(r.recipients[1].state, "deferred")
    ok(r.recipients[1].retry_in > 0)
    for _, hop in ipairs(r.hops) do
        ok(hop.host == R1 or hop.host == R2, "tried " .. hop.host)
    end
end)

test("a relay's 5xx bounces: the relay speaks for the destination", function()
    setup(MAIN)
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { R1 .. ":rcpt=550/5.1.1/no such user" } }
    eq(r.recipients[1].state, "bounced")
    eq(r.recipients[1].code, 550)
end)

test("a domain DNS cannot answer for now still goes to the relays", function()
    setup(MAIN)
    -- outside the loaded zones: REFUSED, a temporary failure
    local plan = route("user@nowhere.invalid")
    eq(plan.status, "ok")
    eq(hosts(plan), { R1, R2 })
end)

test("a domain that takes no mail (null MX) bounces here", function()
    setup(MAIN)
    local plan = route("nomx.example.test")
    eq(plan.status, "permfail")
    eq(plan.reason, "null-mx")
    local r = deliver{ to = { "user@nomx.example.test" } }
    eq(r.recipients[1].state, "bounced")
end)

test("keep_permfail = false: even a null MX domain goes to the relays", function()
    setup({ relays = { R1 }, keep_permfail = false })
    local plan = route("nomx.example.test")
    eq(plan.status, "ok")
    eq(hosts(plan), { R1 })
end)

test("fallback_to_mx keeps the MX hosts after the relays", function()
    setup({ relays = { R1, R2 }, fallback_to_mx = true })
    local plan = route("example.test")
    eq(hosts(plan), { R1, R2, "mx1.example.test", "mx2.example.test" })
    eq(plan.candidates[3].source, "mx")
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { R1 .. "=refused", R2 .. "=refused" } }
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, "mx1.example.test")
end)

test("fallback_to_mx: a relay that is also an MX host is listed once", function()
    setup({ relays = { "mx2.example.test" }, fallback_to_mx = true })
    eq(hosts(route("example.test")), { "mx2.example.test", "mx1.example.test" })
end)

test("domains: only the listed domains use the relays", function()
    setup({ relays = { R1 }, domains = { "other.test", ".example.test" } })
    eq(hosts(route("a@other.test")), { R1 })
    eq(hosts(route("a@sub.example.test")), { R1 })
    -- example.test itself is not below .example.test: it goes direct
    local plan = route("a@example.test")
    eq(hosts(plan), { "mx1.example.test", "mx2.example.test" })
    eq(plan.candidates[1].source, "mx")
end)

test("a relay with fixed addresses needs no DNS", function()
    setup({ relays = { { host = "smtp.provider.invalid",
                         addresses = { "203.0.113.5", "2001:db8::25" },
                         port = 2525, label = "provider" } } })
    local plan = route("example.test")
    eq(hosts(plan), { "smtp.provider.invalid" })
    eq(plan.candidates[1].addresses, { "203.0.113.5", "2001:db8::25" })
    eq(plan.candidates[1].port, 2525)
    eq(plan.candidates[1].label, "provider")
end)

test("a relay given as an IP address", function()
    setup({ relays = { "192.0.2.99" } })
    local plan = route("example.test")
    eq(hosts(plan), { "192.0.2.99" })
    eq(plan.candidates[1].addresses, { "192.0.2.99" })
end)

test("a relay that does not resolve is left out", function()
    setup({ relays = { "nosuch.example.test", R2 } })
    eq(hosts(route("example.test")), { R2 })
end)

test("no relay resolves: tempfail (reason policy), no direct delivery", function()
    setup({ relays = { "nosuch.example.test" } })
    local plan = route("example.test")
    eq(plan.status, "tempfail")
    eq(plan.reason, "policy")
    eq(#plan.candidates, 0)
    local r = deliver{ to = { "user@example.test" } }
    eq(r.recipients[1].state, "deferred")
end)

test("no relay resolves, with fallback_to_mx: direct delivery", function()
    setup({ relays = { "nosuch.example.test" }, fallback_to_mx = true })
    eq(hosts(route("example.test")), { "mx1.example.test", "mx2.example.test" })
end)

test("bad configurations are refused with a message naming the setting", function()
    local cases = {
        { {}, "relays must be a list of at least one relay" },
        { { relays = {} }, "relays must be a list of at least one relay" },
        { { relays = { { host = "bad host" } } }, "relays%[1%]%.host must be a host name" },
        { { relays = { { port = 25 } } }, "relays%[1%]%.host must be a host name" },
        { { relays = { R1, { host = R2, port = 0 } } }, "relays%[2%]%.port must be an integer" },
        { { relays = { { host = R1, tls = "yes" } } }, "relays%[1%]%.tls must be true or false" },
        { { relays = { { host = R1, addresses = { "192.0.2.300" } } } },
          "relays%[1%]%.addresses%[1%] must be an IP address" },
        { { relays = { { host = R1, prot = 25 } } }, "relays%[1%]: unknown key 'prot'" },
        { { relays = { R1 }, domains = { "bad..name" } }, "domains%[1%] must be a domain name" },
        { { relays = { R1 }, domains = {} }, "domains must be a list of domain names" },
        { { relays = { R1 }, fallback_to_mx = "yes" }, "fallback_to_mx must be true or false" },
        { { relays = { R1 }, keep_permfail = 0 }, "keep_permfail must be true or false" },
        { { relay = R1 }, "unknown setting 'relay'" },
    }
    for _, c in ipairs(cases) do
        local err = load_error(c[1])
        ok(err:find("smarthost: " .. c[2]), "want '" .. c[2] .. "', got '" .. err .. "'")
    end
    eq(load_error({ relays = { R1 } }), "")
end)
