-- address_family_test.lua -- tests of policies/address_family.lua (run
-- with `mxroute test policies/tests/address_family_test.lua`).

local ZONE = [[
$ORIGIN af.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
; dual-stack, IPv4-only and IPv6-only hosts
@        MX   10 mx1
@        MX   20 mx2
@        MX   30 mx3
mx1      A    192.0.2.1
mx1      A    192.0.2.2
mx1      AAAA 2001:db8::1
mx1      AAAA 2001:db8::2
mx2      A    192.0.2.20
mx3      AAAA 2001:db8::30
; subdomains
a.sub    MX   10 mx1
sub      MX   10 mx1
v6only   MX   10 mx3
; two equal hosts (one dual-stack, one IPv4 only) and a backup
tie      MX   10 t1
tie      MX   10 t2
tie      MX   20 mx2
t1       A    192.0.2.41
t1       AAAA 2001:db8::41
t2       A    192.0.2.42
]]

local MX1, MX2, MX3 = "mx1.af.test", "mx2.af.test", "mx3.af.test"

local function setup(config, engine_options)
    reset()
    zone(ZONE)
    if engine_options then
        options(engine_options)
    end
    if config then
        policy("../address_family.lua", config)
    end
end

local function load_error(config)
    setup(config)
    local loaded, err = pcall(route, "af.test")
    return loaded and "" or tostring(err)
end

-- host -> addresses, for the candidates of a plan
local function addresses(plan)
    local t = {}
    for _, c in ipairs(plan.candidates) do
        t[c.host] = c.addresses
    end
    return t
end

test("ipv4: IPv4 addresses only; an IPv6-only host is dropped", function()
    setup({ families = { ["af.test"] = "ipv4" } })
    local plan = route("user@af.test")
    eq(hosts(plan), { MX1, MX2 })
    eq(addresses(plan), { [MX1] = { "192.0.2.1", "192.0.2.2" },
                          [MX2] = { "192.0.2.20" } })
    -- the changed host keeps its preference; the untouched one its source
    eq(plan.candidates[1].preference, 10)
    eq(plan.candidates[1].source, "policy")
    eq(plan.candidates[1].label, "ipv4")
    eq(plan.candidates[2].source, "mx")
    local mx3_skipped = false
    for _, s in ipairs(plan.skipped) do
        mx3_skipped = mx3_skipped or (s.host == MX3 and s.reason == "policy")
    end
    ok(mx3_skipped, "mx3 listed as skipped by the policy")
end)

test("ipv6: IPv6 addresses only", function()
    setup({ families = { ["af.test"] = "ipv6" } })
    local plan = route("af.test")
    eq(hosts(plan), { MX1, MX3 })
    eq(addresses(plan), { [MX1] = { "2001:db8::1", "2001:db8::2" },
                          [MX3] = { "2001:db8::30" } })
end)

test("prefer-ipv4 and prefer-ipv6 keep both families, in that order", function()
    setup({ families = { ["af.test"] = "prefer-ipv4" } })
    local plan = route("af.test")
    eq(hosts(plan), { MX1, MX2, MX3 })
    eq(plan.candidates[1].addresses, { "192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2" })
    setup({ families = { ["af.test"] = "prefer-ipv6" } })
    eq(route("af.test").candidates[1].addresses,
       { "2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2" })
end)

test("any: interleaved, IPv6 first, when the engine prefers IPv4", function()
    setup({ families = { ["af.test"] = "any" } }, { family = "prefer-ipv4" })
    eq(route("af.test").candidates[1].addresses,
       { "2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2" })
end)

test("hosts that already fit are left alone (no edit at all)", function()
    setup({ families = { ["af.test"] = "any" } })
    local plan = route("af.test")
    for _, c in ipairs(plan.candidates) do
        eq(c.source, "mx")
    end
    eq(#plan.skipped, 0)
end)

test("a delivery connects to the preferred family first", function()
    setup({ families = { ["af.test"] = "prefer-ipv4" } })
    local r = deliver{ to = { "user@af.test" },
                       outcomes = { "192.0.2.1=refused" } }
    eq(r.hops[1].address, "192.0.2.1")
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, MX1) -- on its second IPv4 address
end)

test("hosts keep the engine's order, also the shuffle of equal ones", function()
    -- t1 is added again with its IPv4 address; it keeps its place
    for seed = 1, 4 do
        setup(nil, { seed = seed })
        local before = hosts(route("tie.af.test"))
        setup({ families = { ["tie.af.test"] = "ipv4" } }, { seed = seed })
        local plan = route("tie.af.test")
        eq(hosts(plan), before, "seed " .. seed)
        eq(addresses(plan)["t1.af.test"], { "192.0.2.41" })
    end
end)

test(".domain entries, the most specific first, then default", function()
    setup({ families = { [".af.test"] = "ipv6", ["sub.af.test"] = "ipv4",
                         [".sub.af.test"] = "prefer-ipv4" },
            default = "ipv4" })
    eq(route("v6only.af.test").candidates[1].addresses, { "2001:db8::30" })
    eq(route("sub.af.test").candidates[1].addresses, { "192.0.2.1", "192.0.2.2" })
    eq(#route("a.sub.af.test").candidates[1].addresses, 4)
    eq(hosts(route("af.test")), { MX1, MX2 }) -- not below .af.test: default
end)

test("domains without an entry and no default are left alone", function()
    setup({ families = { ["other.test"] = "ipv6" } })
    local plan = route("af.test")
    eq(hosts(plan), { MX1, MX2, MX3 })
    eq(plan.candidates[1].source, "mx")
end)

test("no host left: the plan fails permanently (reason policy)", function()
    setup({ families = { ["v6only.af.test"] = "ipv4" } })
    local plan = route("v6only.af.test")
    eq(plan.status, "permfail")
    eq(plan.reason, "policy")
    eq(deliver{ to = { "a@v6only.af.test" } }.recipients[1].state, "bounced")
end)

test("bad configurations are refused with a message naming the setting", function()
    local cases = {
        { {}, "families must be a table of at least one entry" },
        { { families = { ["af.test"] = "v4" } }, 'families%["af.test"%] must be ipv4, ipv6' },
        { { families = { ["bad name"] = "ipv4" } }, "the key must be a domain" },
        { { families = { ["af.test"] = "ipv4" }, default = "ipv5" }, "default must be ipv4" },
        { { family = {} }, "unknown setting 'family'" },
    }
    for _, c in ipairs(cases) do
        local err = load_error(c[1])
        ok(err:find("address_family: .*" .. c[2]), "want '" .. c[2] .. "', got '" .. err .. "'")
    end
end)
