-- security_gateway_test.lua -- tests of policies/security_gateway.lua (run
-- with `mxroute test policies/tests/security_gateway_test.lua`).

local ZONE = [[
$ORIGIN example.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
@        MX   10 mx1
@        MX   20 mx2
mx1      A    192.0.2.1
mx2      A    192.0.2.2
fallback A    192.0.2.9
nomx     MX   0 .
]]

-- the gateway service, with its outbound hosts
local GATEWAY = [[
$ORIGIN gateway.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
out1     A    203.0.113.1
out2     A    203.0.113.2
]]

-- our own organisation: its domains, and a partner on a private link
local CORP = [[
$ORIGIN corp.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
@        MX   10 mail
mail     A    10.0.0.25
sales    MX   10 mail
partner  MX   10 mx.link
partner  MX   20 fallback.example.test.
mx.link  A    10.9.0.25
]]

local G1, G2 = "out1.gateway.test", "out2.gateway.test"

-- The configuration most tests use; each test starts from a fresh engine.
local MAIN = { gateways = { G1, G2 }, bypass = { "corp.test", ".corp.test" } }

local function setup(config)
    reset()
    zone(ZONE)
    zone(GATEWAY)
    zone(CORP)
    policy("../security_gateway.lua", config)
end

local function load_error(config)
    setup(config)
    local loaded, err = pcall(route, "example.test")
    return loaded and "" or tostring(err)
end

test("mail goes to the gateway hosts, in order, with TLS required", function()
    setup(MAIN)
    local plan = route("user@example.test")
    eq(plan.status, "ok")
    eq(hosts(plan), { G1, G2 })
    for _, c in ipairs(plan.candidates) do
        eq(c.source, "policy")
        eq(c.tls, true)
        eq(c.label, "gateway")
        eq(c.port, 25)
    end
    eq(#plan.skipped, 2) -- mx1 and mx2, reason "policy"
    eq(plan.skipped[1].reason, "policy")
end)

test("bypass: our own domains go direct", function()
    setup(MAIN)
    local plan = route("colleague@corp.test")
    eq(hosts(plan), { "mail.corp.test" })
    eq(plan.candidates[1].source, "mx")
    eq(hosts(route("sales.corp.test")), { "mail.corp.test" })
end)

test("the first gateway host is down: the second takes the mail", function()
    setup(MAIN)
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { G1 .. "=refused" } }
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, G2)
end)

test("the gateway is down: mail waits, never goes out unfiltered", function()
    setup(MAIN)
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { G1 .. "=timeout", G2 .. "=refused" } }
    eq(r.action, "defer")
    eq(r.recipients[1].state, "deferred")
    for _, hop in ipairs(r.hops) do
        ok(hop.host == G1 or hop.host == G2, "tried " .. hop.host)
    end
end)

test("the gateway refuses a message (data-loss rule): it bounces", function()
    setup(MAIN)
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { G1 .. ":dot=550/5.7.1/Message blocked by policy" } }
    eq(r.recipients[1].state, "bounced")
    eq(r.recipients[1].host, G1)
end)

test("a domain that takes no mail bounces here", function()
    setup(MAIN)
    eq(route("nomx.example.test").status, "permfail")
end)

test("fail_open: the MX hosts stay after the gateway", function()
    setup({ gateways = { G1 }, fail_open = true })
    eq(hosts(route("example.test")), { G1, "mx1.example.test", "mx2.example.test" })
    local r = deliver{ to = { "user@example.test" }, outcomes = { G1 .. "=refused" } }
    eq(r.recipients[1].host, "mx1.example.test")
end)

test("bypass_mx: a domain whose MX hosts are all ours goes direct", function()
    setup({ gateways = { G1 }, bypass_mx = { "corp.test" } })
    eq(hosts(route("corp.test")), { "mail.corp.test" })
    eq(hosts(route("sales.corp.test")), { "mail.corp.test" })
    -- one MX host outside: the gateway takes it all
    eq(hosts(route("partner.corp.test")), { G1 })
    eq(hosts(route("example.test")), { G1 })
end)

test("bypass entries: exact names, and .names for the names below", function()
    setup({ gateways = { G1 }, bypass = { ".corp.test" } })
    eq(hosts(route("sales.corp.test")), { "mail.corp.test" })
    eq(hosts(route("corp.test")), { G1 }) -- not below itself
end)

test("gateway hosts with fixed addresses, port and no TLS", function()
    setup({ gateways = { { host = "relay.vendor.invalid", port = 2525, tls = false,
                           addresses = { "198.51.100.7" }, label = "vendor" } } })
    local c = route("example.test").candidates[1]
    eq(c.host, "relay.vendor.invalid")
    eq(c.addresses, { "198.51.100.7" })
    eq(c.port, 2525)
    eq(c.tls, false)
    eq(c.label, "vendor")
end)

test("no gateway host resolves: tempfail (reason policy)", function()
    setup({ gateways = { "nosuch.gateway.test" } })
    local plan = route("example.test")
    eq(plan.status, "tempfail")
    eq(plan.reason, "policy")
    eq(deliver{ to = { "a@example.test" } }.recipients[1].state, "deferred")
end)

test("one gateway host does not resolve: the others are used", function()
    setup({ gateways = { "nosuch.gateway.test", G2 } })
    eq(hosts(route("example.test")), { G2 })
end)

test("bad configurations are refused with a message naming the setting", function()
    local cases = {
        { {}, "gateways must be a list of at least one gateway host" },
        { { gateways = "out1.gateway.test" }, "gateways must be a list" },
        { { gateways = { { host = "out 1" } } }, "gateways%[1%]%.host must be a host name" },
        { { gateways = { { host = G1, port = 99999 } } }, "gateways%[1%]%.port must be an integer" },
        { { gateways = { { host = G1, tls = 1 } } }, "gateways%[1%]%.tls must be true or false" },
        { { gateways = { { host = G1, addresses = {} } } }, "gateways%[1%]%.addresses must be a non%-empty list" },
        { { gateways = { G1 }, bypass = "corp.test" }, "bypass must be a list of domain names" },
        { { gateways = { G1 }, bypass_mx = { "bad name" } }, "bypass_mx%[1%] must be a domain name" },
        { { gateways = { G1 }, fail_open = "no" }, "fail_open must be true or false" },
        { { gateways = { G1 }, bypas = {} }, "unknown setting 'bypas'" },
    }
    for _, c in ipairs(cases) do
        local err = load_error(c[1])
        ok(err:find("security_gateway: " .. c[2]), "want '" .. c[2] .. "', got '" .. err .. "'")
    end
    eq(load_error({ gateways = { G1 } }), "")
end)
