-- backup_mx_guard_test.lua -- tests of policies/backup_mx_guard.lua (run
-- with `mxroute test policies/tests/backup_mx_guard_test.lua`).

local ZONE = [[
$ORIGIN guard.test.
@                SOA  ns hostmaster 1 3600 600 86400 300
@                NS   ns
ns               A    192.0.2.53
; self-hosted, with a backup MX service (as in the seed articles)
selfhosted       MX   10 mail.selfhosted
selfhosted       MX   20 backup.mxservice.test.
mail.selfhosted  A    192.0.2.10
; the backup service sits between two of the domain's own hosts
order            MX   10 mx1.order
order            MX   20 backup.mxservice.test.
order            MX   30 mx2.order
mx1.order        A    192.0.2.21
mx2.order        A    192.0.2.22
; a large provider: every host in the provider's zone
hosted           MX   1  aspmx.l.bigmail.test.
hosted           MX   5  alt1.aspmx.l.bigmail.test.
hosted           MX   10 alt3.aspmx.l.bigmail.test.
; the domain's only MX is a backup service: it is the primary
only             MX   10 inbound.mxservice.test.
; a sister company's host as backup
sister           MX   10 mail.sister
sister           MX   20 mx.partner-co.test.
mail.sister      A    192.0.2.40
; two primaries, a third-party backup and an own backup
tiers            MX   10 east.tiers
tiers            MX   10 west.tiers
tiers            MX   20 offsite.mxservice.test.
tiers            MX   50 dr.tiers
east.tiers       A    192.0.2.51
west.tiers       A    192.0.2.52
dr.tiers         A    192.0.2.53
]]

local SERVICE = [[
$ORIGIN mxservice.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
backup   A    198.51.100.1
inbound  A    198.51.100.2
offsite  A    198.51.100.3
]]

local BIGMAIL = [[
$ORIGIN bigmail.test.
@             SOA  ns hostmaster 1 3600 600 86400 300
@             NS   ns
ns            A    192.0.2.53
aspmx.l       A    203.0.113.1
alt1.aspmx.l  A    203.0.113.2
alt3.aspmx.l  A    203.0.113.3
]]

local PARTNER = [[
$ORIGIN partner-co.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
mx       A    198.51.100.50
]]

local BACKUP = "backup.mxservice.test"

local function setup(config)
    reset()
    zone(ZONE)
    zone(SERVICE)
    zone(BIGMAIL)
    zone(PARTNER)
    policy("../backup_mx_guard.lua", config)
end

local function load_error(config)
    setup(config)
    local loaded, err = pcall(route, "guard.test")
    return loaded and "" or tostring(err)
end

local function skipped_hosts(plan)
    local t = {}
    for _, s in ipairs(plan.skipped) do
        t[#t + 1] = s.host .. ":" .. s.reason
    end
    return t
end

test("last: a third-party backup goes after the domain's own hosts", function()
    setup()
    local plan = route("order.guard.test")
    eq(hosts(plan), { "mx1.order.guard.test", "mx2.order.guard.test", BACKUP })
    -- preferences and sources are unchanged: only the order moved
    eq(plan.candidates[3].preference, 20)
    eq(plan.candidates[3].source, "mx")
    eq(#plan.skipped, 0)
end)

test("last: failover reaches the backup only after every own host", function()
    setup()
    local r = deliver{ to = { "a@order.guard.test" },
                       outcomes = { "mx1.order.guard.test=refused" } }
    eq(r.recipients[1].host, "mx2.order.guard.test")
    setup()
    r = deliver{ to = { "a@order.guard.test" },
                 outcomes = { "mx1.order.guard.test=refused",
                              "mx2.order.guard.test=refused" } }
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, BACKUP)
end)

test("last: a backup already last stays where it is", function()
    setup()
    eq(hosts(route("selfhosted.guard.test")), { "mail.selfhosted.guard.test", BACKUP })
end)

test("skip: third-party backups are removed (reason policy)", function()
    setup({ mode = "skip" })
    local plan = route("order.guard.test")
    eq(hosts(plan), { "mx1.order.guard.test", "mx2.order.guard.test" })
    eq(skipped_hosts(plan), { BACKUP .. ":policy" })
    local r = deliver{ to = { "a@selfhosted.guard.test" },
                       outcomes = { "mail.selfhosted.guard.test=refused" } }
    eq(r.recipients[1].state, "deferred") -- waits rather than the backup
end)

test("a large provider's hosts all belong together", function()
    setup({ mode = "skip" })
    eq(hosts(route("hosted.guard.test")), { "aspmx.l.bigmail.test",
        "alt1.aspmx.l.bigmail.test", "alt3.aspmx.l.bigmail.test" })
end)

test("the most preferred hosts are never touched, whoever runs them", function()
    setup({ mode = "skip", third_party = { "mxservice.test" } })
    eq(hosts(route("only.guard.test")), { "inbound.mxservice.test" })
end)

test("two equal primaries: the third-party backup goes after the own DR host", function()
    setup()
    local h = hosts(route("tiers.guard.test"))
    eq(#h, 4)
    ok(h[1] ~= "dr.tiers.guard.test" and h[2] ~= "dr.tiers.guard.test")
    eq(h[3], "dr.tiers.guard.test")
    eq(h[4], "offsite.mxservice.test")
end)

test("own: a sister company's backup is kept", function()
    setup({ mode = "skip" })
    eq(hosts(route("sister.guard.test")), { "mail.sister.guard.test" })
    setup({ mode = "skip", own = { "partner-co.test" } })
    eq(hosts(route("sister.guard.test")), { "mail.sister.guard.test", "mx.partner-co.test" })
end)

test("infer = false: only the third_party list counts", function()
    setup({ mode = "skip", infer = false })
    eq(#route("order.guard.test").candidates, 3)
    eq(#route("sister.guard.test").candidates, 2)
    setup({ mode = "skip", infer = false, third_party = { ".mxservice.test" } })
    eq(hosts(route("order.guard.test")), { "mx1.order.guard.test", "mx2.order.guard.test" })
    eq(#route("sister.guard.test").candidates, 2)
end)

test("third_party wins over inference", function()
    -- the backup is in the primary's zone, but listed as third-party
    setup({ mode = "skip", third_party = { "alt3.aspmx.l.bigmail.test" } })
    eq(hosts(route("hosted.guard.test")), { "aspmx.l.bigmail.test", "alt1.aspmx.l.bigmail.test" })
end)

test("domains: only the listed domains are guarded", function()
    setup({ mode = "skip", domains = { "order.guard.test" } })
    eq(#route("order.guard.test").candidates, 2)
    eq(#route("selfhosted.guard.test").candidates, 2)
end)

test("bad configurations are refused with a message naming the setting", function()
    local cases = {
        { { mode = "drop" }, 'mode must be "last" or "skip"' },
        { { own = "example.com" }, "own must be a list of domain names" },
        { { third_party = { "bad name" } }, "third_party%[1%] must be a domain name" },
        { { infer = "yes" }, "infer must be true or false" },
        { { domains = { "x..y" } }, "domains%[1%] must be a domain name" },
        { { domains = {} }, "domains must list a domain at least" },
        { { mod = "skip" }, "unknown setting 'mod'" },
    }
    for _, c in ipairs(cases) do
        local err = load_error(c[1])
        ok(err:find("backup_mx_guard: " .. c[2]), "want '" .. c[2] .. "', got '" .. err .. "'")
    end
    eq(load_error({ mode = "skip", own = { ".example.com" } }), "")
end)
