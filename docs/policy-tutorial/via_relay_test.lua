-- via_relay_test.lua -- tests of via_relay.lua (run with
-- `mxroute test docs/policy-tutorial/via_relay_test.lua`).

-- The zone data, inline: the same names as tutorial.zone.
local ZONE = [[
$ORIGIN example.
@            SOA  ns hostmaster 1 3600 600 86400 300
@            NS   ns
ns           A    192.0.2.53
partner      MX   10 mx1.partner
partner      MX   20 mx2.partner
mx1.partner  A    192.0.2.10
mx2.partner  A    192.0.2.20
shop         MX   10 mail.shop
mail.shop    A    192.0.2.30
closed       MX   0 .
relay.corp   A    192.0.2.25
relay.corp   AAAA 2001:db8::25
]]

local CONFIG = { domains = { "partner.example" },
                 relay = "relay.corp.example", port = 587 }

-- A fresh set-up: the zone, and the policy with a configuration. (The
-- path of the policy is relative to this file's directory.)
local function setup(config)
    reset()
    zone(ZONE)
    policy("via_relay.lua", config)
end

setup(CONFIG) -- for the tests that do not call setup themselves

test("the partner's mail goes to the relay", function()
    local plan = route("someone@partner.example")
    eq(plan.status, "ok")
    eq(hosts(plan), { "relay.corp.example" })
    eq(plan.candidates[1].source, "policy")
    eq(plan.candidates[1].label, "via_relay")
    eq(plan.candidates[1].port, 587)
    eq(plan.candidates[1].addresses, { "2001:db8::25", "192.0.2.25" })
    eq(plan.skipped, {
        { host = "mx1.partner.example", preference = 10, reason = "policy" },
        { host = "mx2.partner.example", preference = 20, reason = "policy" },
    })
end)

test("other domains go direct", function()
    local plan = route("shop.example")
    eq(hosts(plan), { "mail.shop.example" })
    eq(plan.candidates[1].source, "mx")
end)

test("the relay's IPv6 address refuses: its IPv4 address delivers", function()
    local r = deliver{ to = { "someone@partner.example" },
                       outcomes = { "[2001:db8::25]=refused" } }
    eq(r.action, "delivered")
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, "relay.corp.example")
    eq(r.hops[1].address, "2001:db8::25")
    eq(r.hops[1].class, "refused")
end)

test("the relay is down: the mail waits, it never goes direct", function()
    local r = deliver{ to = { "someone@partner.example" },
                       outcomes = { "relay.corp.example=timeout" } }
    eq(r.action, "defer")
    eq(r.recipients[1].state, "deferred")
    ok(r.recipients[1].retry_in > 0, "a retry is scheduled")
    for _, hop in ipairs(r.hops) do
        eq(hop.host, "relay.corp.example")
    end
end)

test("the relay refuses one recipient: that one bounces", function()
    local r = deliver{ to = { "a@partner.example", "b@partner.example" },
                       outcomes = { "relay.corp.example:rcpt:b@partner.example=550/5.1.1/no such user" } }
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[2].state, "bounced")
    eq(r.recipients[2].code, 550)
end)

test("a listed domain that takes no mail still bounces", function()
    setup({ domains = { "closed.example" }, relay = "relay.corp.example" })
    local plan = route("closed.example")
    eq(plan.status, "permfail")
    eq(plan.reason, "null-mx")
end)

test("a relay that does not resolve: the mail waits", function()
    setup({ domains = { "partner.example" }, relay = "nosuch.corp.example" })
    local plan = route("partner.example")
    eq(plan.status, "tempfail")
    eq(plan.reason, "policy")
    eq(hosts(plan), {})
end)
