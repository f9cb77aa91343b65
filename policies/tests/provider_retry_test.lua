-- provider_retry_test.lua -- tests of policies/provider_retry.lua (run
-- with `mxroute test policies/tests/provider_retry_test.lua`).
--
-- The zones stand in for the providers' real MX hosts (offline, with
-- documentation addresses).

local DOMAINS = [[
$ORIGIN example.test.
@          SOA  ns hostmaster 1 3600 600 86400 300
@          NS   ns
ns         A    192.0.2.53
; Google Workspace, as in the seed articles
@          MX   1  aspmx.l.google.com.
@          MX   5  alt1.aspmx.l.google.com.
@          MX   10 alt3.aspmx.l.google.com.
; Microsoft 365: one host
m365       MX   0  m365-example-test.mail.protection.outlook.com.
; self-hosted
self       MX   10 mail.self
mail.self  A    192.0.2.10
; self-hosted, with Google as the backup
mixed      MX   10 mail.self
mixed      MX   20 aspmx.l.google.com.
]]

local GOOGLE = [[
$ORIGIN google.com.
@             SOA  ns hostmaster 1 3600 600 86400 300
@             NS   ns
ns            A    192.0.2.53
aspmx.l       A    203.0.113.1
alt1.aspmx.l  A    203.0.113.2
alt3.aspmx.l  A    203.0.113.3
]]

local OUTLOOK = [[
$ORIGIN outlook.com.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
m365-example-test.mail.protection  A  203.0.113.50
]]

local THROTTLED = "*:mail=451/4.7.0/Try again later"

local function setup(config)
    reset()
    zone(DOMAINS)
    zone(GOOGLE)
    zone(OUTLOOK)
    policy("../provider_retry.lua", config)
end

local function load_error(config)
    setup(config)
    local loaded, err = pcall(route, "example.test")
    return loaded and "" or tostring(err)
end

-- One failed attempt: the recipient's state and retry_in.
local function attempt(to, attempts, age)
    local r = deliver{ to = { to }, attempts = attempts or 0, age = age or 0,
                       outcomes = { THROTTLED } }
    return r.recipients[1]
end

test("a Google-hosted domain gets Google's schedule", function()
    setup({ jitter = 0 })
    eq(attempt("a@example.test", 0).retry_in, 600)
    eq(attempt("a@example.test", 1, 600).retry_in, 1200)
    eq(attempt("a@example.test", 3, 4200).retry_in, 3600)
    eq(attempt("a@example.test", 9, 30000).retry_in, 3600) -- the last repeats
end)

test("a Microsoft 365 domain is keyed by its MX host too", function()
    setup({ jitter = 0 })
    eq(attempt("a@m365.example.test").retry_in, 600)
end)

test("a self-hosted domain keeps the engine's schedule", function()
    setup({ jitter = 0 })
    local r = attempt("a@self.example.test")
    eq(r.state, "deferred")
    ok(r.retry_in >= 270 and r.retry_in <= 330, "engine delay " .. r.retry_in)
end)

test("only the first (most preferred) host decides", function()
    setup({ jitter = 0 })
    local r = attempt("a@mixed.example.test")
    ok(r.retry_in >= 270 and r.retry_in <= 330, "engine delay " .. r.retry_in)
end)

test("jitter spreads the delay around the schedule", function()
    setup() -- jitter 0.1
    local seen = {}
    for _ = 1, 20 do
        local d = attempt("a@example.test").retry_in
        ok(d >= 540 and d <= 660, "delay " .. d)
        seen[d] = true
    end
    local n = 0
    for _ in pairs(seen) do
        n = n + 1
    end
    ok(n > 1, "the delays differ")
end)

test("custom providers replace the defaults", function()
    setup({ jitter = 0, providers = {
        { name = "self", suffixes = { "self.example.test" }, delays = { 60, 120 } } } })
    eq(attempt("a@self.example.test").retry_in, 60)
    eq(attempt("a@self.example.test", 1, 60).retry_in, 120)
    -- Google is no longer in the list: the engine's schedule
    local d = attempt("a@example.test").retry_in
    ok(d >= 270 and d <= 330, "engine delay " .. d)
end)

test("max_attempts: the recipient bounces with its last error", function()
    setup({ jitter = 0, providers = {
        { name = "google", suffixes = { "google.com" }, delays = { 600 },
          max_attempts = 3 } } })
    eq(attempt("a@example.test", 1, 600).state, "deferred")
    local r = attempt("a@example.test", 2, 1200) -- the third attempt
    eq(r.state, "bounced")
    eq(r.code, 451)
    ok(r.text:find("a retry policy gave up", 1, true), r.text)
end)

test("max_age: the recipient bounces once the message is that old", function()
    setup({ jitter = 0, providers = {
        { name = "google", suffixes = { "google.com" }, delays = { 600 },
          max_age = 3600 } } })
    eq(attempt("a@example.test", 2, 3000).state, "deferred")
    eq(attempt("a@example.test", 3, 3600).state, "bounced")
end)

test("other failures of a provider domain use the schedule too", function()
    setup({ jitter = 0 })
    local r = deliver{ to = { "a@example.test" }, outcomes = { "*=refused" } }
    eq(r.recipients[1].retry_in, 600)
end)

test("bad configurations are refused with a message naming the setting", function()
    local cases = {
        { { providers = "google" }, "providers must be a list" },
        { { providers = { { suffixes = { "google.com" }, delays = { 1 } } } },
          "providers%[1%]%.name must be a string" },
        { { providers = { { name = "g", suffixes = {}, delays = { 1 } } } },
          "providers%[1%]%.suffixes must be a non%-empty list" },
        { { providers = { { name = "g", suffixes = { "bad name" }, delays = { 1 } } } },
          "providers%[1%]%.suffixes%[1%] must be a domain name" },
        { { providers = { { name = "g", suffixes = { "g.test" }, delays = { 60, "1h" } } } },
          "providers%[1%]%.delays%[2%] must be a number of seconds" },
        { { providers = { { name = "g", suffixes = { "g.test" }, delays = { 1 }, max_attempts = 0 } } },
          "providers%[1%]%.max_attempts must be an integer >= 1" },
        { { providers = { { name = "g", suffixes = { "g.test" }, delays = { 1 }, max_age = -5 } } },
          "providers%[1%]%.max_age must be a number of seconds > 0" },
        { { providers = { { name = "g", suffixes = { "g.test" }, delay = { 1 } } } },
          "providers%[1%]: unknown key 'delay'" },
        { { jitter = 2 }, "jitter must be a number from 0 to 0.5" },
        { { provider = {} }, "unknown setting 'provider'" },
    }
    for _, c in ipairs(cases) do
        local err = load_error(c[1])
        ok(err:find("provider_retry: " .. c[2]), "want '" .. c[2] .. "', got '" .. err .. "'")
    end
end)
