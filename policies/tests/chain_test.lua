-- chain_test.lua -- bundled policies together: policies chain in the
-- order they are loaded (route hooks one after the other on the same
-- plan; for retry hooks, the last one's delay wins). Run with
-- `mxroute test policies/tests/chain_test.lua`.

local ZONE = [[
$ORIGIN example.test.
@          SOA  ns hostmaster 1 3600 600 86400 300
@          NS   ns
ns         A    192.0.2.53
; hosted at "google" (the zone below stands in for it)
@          MX   1  aspmx.l.google.com.
@          MX   5  alt1.aspmx.l.google.com.
relay      A    192.0.2.25
; self-hosted with a third-party backup
self       MX   10 mail.self
self       MX   20 backup.mxservice.test.
mail.self  A    192.0.2.10
]]

local OTHERS = [[
$ORIGIN test.
@                      SOA  ns hostmaster 1 3600 600 86400 300
@                      NS   ns
ns                     A    192.0.2.53
backup.mxservice       A    198.51.100.1
]]

local GOOGLE = [[
$ORIGIN google.com.
@             SOA  ns hostmaster 1 3600 600 86400 300
@             NS   ns
ns            A    192.0.2.53
aspmx.l       A    203.0.113.1
alt1.aspmx.l  A    203.0.113.2
]]

local RELAY = "relay.example.test"

local function setup(...)
    reset()
    zone(ZONE)
    zone(OTHERS)
    zone(GOOGLE)
    for _, p in ipairs({ ... }) do
        policy(p[1], p[2])
    end
end

test("provider_retry before smarthost: keyed by the MX hosts, sent to the relay", function()
    setup({ "../provider_retry.lua", { jitter = 0 } },
          { "../smarthost.lua", { relays = { RELAY } } })
    eq(hosts(route("a@example.test")), { RELAY })
    local r = deliver{ to = { "a@example.test" }, outcomes = { RELAY .. "=refused" } }
    eq(r.recipients[1].state, "deferred")
    eq(r.recipients[1].retry_in, 600) -- the provider's schedule
end)

test("provider_retry after smarthost only sees the relay", function()
    setup({ "../smarthost.lua", { relays = { RELAY } } },
          { "../provider_retry.lua", { jitter = 0 } })
    local r = deliver{ to = { "a@example.test" }, outcomes = { RELAY .. "=refused" } }
    local d = r.recipients[1].retry_in
    ok(d >= 270 and d <= 330, "engine delay " .. d) -- the engine's schedule
end)

test("greylist_retry after provider_retry: greylisting's short delay wins", function()
    setup({ "../provider_retry.lua", { jitter = 0 } },
          { "../greylist_retry.lua" })
    local r = deliver{ to = { "a@example.test" },
                       outcomes = { "*:rcpt=451/4.7.1/greylisted" } }
    eq(r.recipients[1].retry_in, 360)
    -- other failures keep the provider's schedule
    r = deliver{ to = { "a@example.test" }, outcomes = { "*=refused" } }
    eq(r.recipients[1].retry_in, 600)
end)

test("backup_mx_guard and greylist_retry: greylisted at the primary, never the backup", function()
    setup({ "../backup_mx_guard.lua", { mode = "last" } },
          { "../greylist_retry.lua" })
    local r = deliver{ to = { "a@self.example.test" },
                       outcomes = { "mail.self.example.test:rcpt=450/4.2.0/Greylisted" } }
    eq(r.recipients[1].state, "deferred")
    for _, hop in ipairs(r.hops) do
        eq(hop.host, "mail.self.example.test")
    end
end)

test("transport_map sends one domain to the relay, address_family trims its addresses", function()
    setup({ "../transport_map.lua", { map = { ["self.example.test"] = "[relay.example.test]" } } },
          { "../address_family.lua", { families = { ["self.example.test"] = "ipv6" } } })
    -- the relay has only IPv4: nothing is left, the plan fails
    local plan = route("self.example.test")
    eq(plan.status, "permfail")
    setup({ "../transport_map.lua", { map = { ["self.example.test"] = "[relay.example.test]" } } },
          { "../address_family.lua", { families = { ["self.example.test"] = "prefer-ipv4" } } })
    eq(hosts(route("self.example.test")), { RELAY })
end)
