-- transport_map_test.lua -- tests of policies/transport_map.lua (run with
-- `mxroute test policies/tests/transport_map_test.lua`).

local ZONE = [[
$ORIGIN example.test.
@         SOA  ns hostmaster 1 3600 600 86400 300
@         NS   ns
ns        A    192.0.2.53
@         MX   10 mx1
@         MX   20 mx2
mx1       A    192.0.2.1
mx2       A    192.0.2.2
hub       A    192.0.2.100
hub2      A    192.0.2.101
sub       MX   10 mx1
deep.sub  MX   10 mx1
old       MX   10 mx1
; another domain's MX hosts, used as a next hop
newprov   MX   5  in1.newprov
newprov   MX   5  in2.newprov
newprov   MX   9  in3.newprov
in1.newprov A  198.51.100.1
in2.newprov A  198.51.100.2
in3.newprov A  198.51.100.3
nullhop   MX   0 .
]]

local HUB = "hub.example.test"

-- The map most tests use; each test starts from a fresh engine.
local MAIN = {
    ["example.test"] = "[hub.example.test]",
    [".sub.example.test"] = "[hub2.example.test]:2525",
    ["old.example.test"] = "error:domain closed, write to new.example",
    ["hold.example.test"] = { defer = "on hold during the migration" },
    ["newmx.example.test"] = { mx = "newprov.example.test" },
    ["internal.corp"] = { relay = { HUB, "hub2.example.test" }, tls = true, label = "corp" },
    ["*"] = "direct",
}

local function setup(map)
    reset()
    zone(ZONE)
    policy("../transport_map.lua", { map = map })
end

local function load_error(map)
    setup(map)
    local loaded, err = pcall(route, "example.test")
    return loaded and "" or tostring(err)
end

test("exact entry: the bracketed host replaces the MX hosts", function()
    setup(MAIN)
    local plan = route("user@example.test")
    eq(plan.status, "ok")
    eq(hosts(plan), { HUB })
    eq(plan.candidates[1].source, "policy")
    eq(plan.candidates[1].label, "transport")
    eq(plan.candidates[1].addresses, { "192.0.2.100" })
    eq(#plan.skipped, 2)
end)

test(".domain entry matches the names below, with its port", function()
    setup(MAIN)
    local plan = route("deep.sub.example.test")
    eq(hosts(plan), { "hub2.example.test" })
    eq(plan.candidates[1].port, 2525)
    -- sub.example.test itself is not below .sub.example.test: "*" (direct)
    local direct = route("sub.example.test")
    eq(hosts(direct), { "mx1.example.test" })
    eq(direct.candidates[1].source, "mx")
end)

test("error: entry bounces the mail (reason policy)", function()
    setup(MAIN)
    local plan = route("old.example.test")
    eq(plan.status, "permfail")
    eq(plan.reason, "policy")
    local r = deliver{ to = { "someone@old.example.test" } }
    eq(r.action, "bounce")
    eq(r.recipients[1].state, "bounced")
end)

test("defer entry keeps the mail queued", function()
    setup(MAIN)
    local plan = route("hold.example.test")
    eq(plan.status, "tempfail")
    eq(plan.reason, "policy")
    eq(deliver{ to = { "a@hold.example.test" } }.recipients[1].state, "deferred")
end)

test("mx entry: another domain's MX hosts, by preference", function()
    setup(MAIN)
    local plan = route("newmx.example.test")
    local h = hosts(plan)
    eq(#h, 3)
    -- in1 and in2 share preference 5, in any order; in3 (9) comes last
    ok((h[1] == "in1.newprov.example.test" and h[2] == "in2.newprov.example.test")
        or (h[1] == "in2.newprov.example.test" and h[2] == "in1.newprov.example.test"),
        "first tier: " .. h[1] .. ", " .. h[2])
    eq(h[3], "in3.newprov.example.test")
    eq(plan.candidates[1].preference, 5)
    eq(plan.candidates[3].preference, 9)
end)

test("mx entry: equal preferences are shared (both orders occur)", function()
    setup(MAIN)
    local firsts = {}
    for _ = 1, 64 do
        firsts[hosts(route("newmx.example.test"))[1]] = true
    end
    ok(firsts["in1.newprov.example.test"] and firsts["in2.newprov.example.test"])
    ok(not firsts["in3.newprov.example.test"])
end)

test("relay list: fixed hosts in order, with TLS; failover between them", function()
    setup(MAIN)
    -- internal.corp is in no zone: DNS fails, the transport still applies
    local plan = route("user@internal.corp")
    eq(plan.status, "ok")
    eq(hosts(plan), { HUB, "hub2.example.test" })
    eq(plan.candidates[2].tls, true)
    eq(plan.candidates[2].label, "corp")
    local r = deliver{ to = { "user@internal.corp" }, outcomes = { HUB .. "=refused" } }
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, "hub2.example.test")
end)

test("the most specific entry wins", function()
    setup({ [".example.test"] = "[hub.example.test]",
            [".sub.example.test"] = "[hub2.example.test]",
            ["sub.example.test"] = "direct" })
    eq(hosts(route("deep.sub.example.test")), { "hub2.example.test" })
    eq(hosts(route("old.example.test")), { HUB })
    eq(hosts(route("sub.example.test")), { "mx1.example.test" })
    -- no entry, no "*": left alone
    eq(hosts(route("example.test")), { "mx1.example.test", "mx2.example.test" })
end)

test("catch-all \"*\" applies to every other domain", function()
    setup({ ["*"] = { relay = { { host = "smart.invalid", addresses = { "203.0.113.9" } } } },
            ["example.test"] = "direct" })
    eq(hosts(route("other.example.test")), { "smart.invalid" })
    eq(route("other.example.test").candidates[1].addresses, { "203.0.113.9" })
    eq(hosts(route("[192.0.2.7]")), { "smart.invalid" }) -- a literal too
    eq(hosts(route("example.test")), { "mx1.example.test", "mx2.example.test" })
end)

test("a name without brackets: its MX hosts, or its address when it has none", function()
    setup({ ["a.test"] = "newprov.example.test",
            ["b.test"] = "hub.example.test:587",
            ["c.test"] = "smtp:[hub2.example.test]:25",
            ["d.test"] = "[192.0.2.77]:2525",
            ["e.test"] = "relay:[2001:db8::25]" })
    eq(#hosts(route("a.test")), 3)
    local b = route("b.test")
    eq(hosts(b), { HUB }) -- hub has no MX: its own address, as Postfix does
    eq(b.candidates[1].port, 587)
    eq(hosts(route("c.test")), { "hub2.example.test" })
    local d = route("d.test")
    eq(hosts(d), { "192.0.2.77" })
    eq(d.candidates[1].port, 2525)
    eq(route("e.test").candidates[1].addresses, { "2001:db8::25" })
end)

test("a next hop that does not resolve: the mail waits", function()
    setup({ ["example.test"] = "[nosuch.example.test]",
            ["a.test"] = { mx = "nullhop.example.test" },
            ["b.test"] = { mx = "nosuch.example.test" } })
    for _, d in ipairs({ "example.test", "a.test", "b.test" }) do
        local plan = route(d)
        eq(plan.status, "tempfail", d)
        eq(plan.reason, "policy", d)
        eq(#plan.candidates, 0, d)
    end
end)

test("keys are compared without case or trailing dot", function()
    setup({ ["Example.TEST."] = "[hub.example.test]" })
    eq(hosts(route("example.test")), { HUB })
end)

test("bad maps are refused with a message naming the entry", function()
    local cases = {
        { {}, "map must be a table of at least one entry" },
        { { ["bad domain"] = "direct" }, 'map%["bad domain"%]: the key must be a domain' },
        { { ["a.test"] = "[bad host]" }, "is not a host name" },
        { { ["a.test"] = "[hub.example.test]:99999" }, "port must be an integer" },
        { { ["a.test"] = 42 }, 'map%["a.test"%] must be a string or a table' },
        { { ["a.test"] = { relay = HUB, mx = "x.test" } }, "needs exactly one of relay, mx, reject, defer" },
        { { ["a.test"] = { relay = {} } }, "relay must name at least one host" },
        { { ["a.test"] = { relay = HUB, tls = "yes" } }, "tls must be true or false" },
        { { ["a.test"] = { relay = { { host = HUB, addresses = { "1.2.3" } } } } }, "addresses%[1%] must be an IP address" },
        { { ["a.test"] = { mx = "bad..name" } }, "mx must be a domain name" },
        { { ["a.test"] = { reject = 550 } }, "the reply text must be a string" },
        { { ["a.test"] = { relay = HUB, prot = 25 } }, "unknown key 'prot'" },
    }
    for _, c in ipairs(cases) do
        local err = load_error(c[1])
        ok(err:find("transport_map: .*" .. c[2]), "want '" .. c[2] .. "', got '" .. err .. "'")
    end
    reset()
    zone(ZONE)
    policy("../transport_map.lua", { maps = {} })
    local loaded, err = pcall(route, "example.test")
    ok(not loaded and tostring(err):find("unknown setting 'maps'"), tostring(err))
end)
