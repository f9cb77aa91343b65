-- greylist_retry_test.lua -- tests of policies/greylist_retry.lua (run
-- with `mxroute test policies/tests/greylist_retry_test.lua`).

local ZONE = [[
$ORIGIN example.test.
@        SOA  ns hostmaster 1 3600 600 86400 300
@        NS   ns
ns       A    192.0.2.53
@        MX   10 mx1
@        MX   20 mx2
mx1      A    192.0.2.1
mx2      A    192.0.2.2
; two equal primaries and a backup
tie      MX   10 a.tie
tie      MX   10 b.tie
tie      MX   20 backup.tie
a.tie    A    192.0.2.11
b.tie    A    192.0.2.12
backup.tie A  192.0.2.13
]]

local MX1, MX2 = "mx1.example.test", "mx2.example.test"

local function setup(config)
    reset()
    zone(ZONE)
    policy("../greylist_retry.lua", config)
end

local function load_error(config)
    setup(config)
    local loaded, err = pcall(route, "example.test")
    return loaded and "" or tostring(err)
end

-- Each test starts from a fresh engine (setup): host health (a refused
-- connection marks a host down, and the test clock never moves) and the
-- policy's memory would otherwise carry over from one test to the next.

-- The hosts a delivery connected to, in order, without repeats.
local function tried(r)
    local list, seen = {}, {}
    for _, hop in ipairs(r.hops) do
        if not seen[hop.host] then
            seen[hop.host] = true
            list[#list + 1] = hop.host
        end
    end
    return list
end

test("451 4.7.1 at RCPT: deferred on the same host, retried in 360 s", function()
    setup()
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { MX1 .. ":rcpt=451/4.7.1/Greylisted, try again later" } }
    eq(r.action, "defer")
    eq(r.recipients[1].state, "deferred")
    eq(r.recipients[1].host, MX1)
    eq(r.recipients[1].code, 451)
    eq(r.recipients[1].retry_in, 360)
    eq(tried(r), { MX1 }) -- never the backup
end)

test("without the policy the same reply fails over to the next host", function()
    reset()
    zone(ZONE)
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { MX1 .. ":rcpt=451/4.7.1/Greylisted, try again later" } }
    eq(tried(r), { MX1, MX2 })
    eq(r.recipients[1].host, MX2)
end)

test("known texts without a 4.7 code are greylisting too", function()
    setup()
    local replies = {
        "450/4.2.0/Recipient address rejected: Greylisted, see http://postgrey.example/",
        "451/4.3.0/Graylisting in action, please come back later",
        "451//Internal resource temporarily unavailable - https://example/451",
        "450//Please retry in 5 minutes",
    }
    for _, reply in ipairs(replies) do
        local r = deliver{ to = { "user@example.test" },
                           outcomes = { MX1 .. ":rcpt=" .. reply } }
        eq(r.recipients[1].state, "deferred", reply)
        eq(r.recipients[1].retry_in, 360, reply)
        eq(tried(r), { MX1 }, reply)
    end
end)

test("other 4xx replies keep the engine's decision (next host)", function()
    setup()
    for _, reply in ipairs({ "451/4.3.0/Temporary lookup failure",
                             "452/4.2.2/Mailbox full",
                             "421/4.7.0/Too many connections" }) do
        setup() -- a 421 marks the host down
        local r = deliver{ to = { "user@example.test" },
                           outcomes = { MX1 .. ":rcpt=" .. reply } }
        eq(r.recipients[1].state, "delivered", reply)
        eq(r.recipients[1].host, MX2, reply)
    end
end)

test("only the greylisted recipient waits; the others are delivered", function()
    setup()
    local r = deliver{ to = { "a@example.test", "b@example.test" },
                       outcomes = { MX1 .. ":rcpt:b@example.test=451/4.7.1/greylisted" } }
    eq(r.recipients[1].state, "delivered")
    eq(r.recipients[1].host, MX1)
    eq(r.recipients[2].state, "deferred")
    eq(r.recipients[2].retry_in, 360)
    eq(tried(r), { MX1 })
end)

test("greylisting at MAIL defers every recipient with the short delay", function()
    setup()
    local r = deliver{ to = { "a@example.test", "b@example.test" },
                       outcomes = { MX1 .. ":mail=451/4.7.1/greylisted" } }
    for _, rc in ipairs(r.recipients) do
        eq(rc.state, "deferred")
        eq(rc.retry_in, 360)
    end
    eq(tried(r), { MX1 })
end)

test("greylisting at end-of-data (a null sender, say) too", function()
    setup()
    local r = deliver{ to = { "a@example.test" }, from = "",
                       outcomes = { MX1 .. ":dot=451/4.7.1/Try again later" } }
    eq(r.recipients[1].state, "deferred")
    eq(tried(r), { MX1 })
end)

test("later attempts wait longer; the last delay repeats", function()
    setup()
    local want = { [0] = 360, [1] = 900, [2] = 1800, [5] = 1800 }
    for attempts, delay in pairs(want) do
        local r = deliver{ to = { "user@example.test" }, attempts = attempts,
                           age = 600 * attempts,
                           outcomes = { MX1 .. ":rcpt=451/4.7.1/greylisted" } }
        eq(r.recipients[1].retry_in, delay, "after " .. attempts .. " attempts")
    end
end)

test("a deferral for another reason keeps the engine's schedule", function()
    setup()
    -- greylisting first, then a failure elsewhere: the verdict is not reused
    deliver{ to = { "user@example.test" },
             outcomes = { MX1 .. ":rcpt=451/4.7.1/greylisted" } }
    local r = deliver{ to = { "user@example.test" },
                       outcomes = { MX1 .. "=refused", MX2 .. "=refused" } }
    local delay = r.recipients[1].retry_in
    -- the engine's first delay: 300 s with 10% jitter
    ok(delay >= 270 and delay <= 330, "delay " .. tostring(delay))
end)

test("the greylisting host is tried first again for its domain", function()
    setup()
    local r = deliver{ to = { "user@tie.example.test" },
                       outcomes = { "*:rcpt=451/4.7.1/greylisted" } }
    local host = tried(r)[1]
    eq(#tried(r), 1)
    for _ = 1, 16 do
        local h = hosts(route("tie.example.test"))
        eq(h[1], host)
        eq(h[3], "backup.tie.example.test")
    end
end)

test("stick_for = 0: equal hosts keep their random order (no route hook)", function()
    setup({ stick_for = 0 })
    deliver{ to = { "user@tie.example.test" },
             outcomes = { "*:rcpt=451/4.7.1/greylisted" } }
    local firsts = {}
    for _ = 1, 32 do
        firsts[hosts(route("tie.example.test"))[1]] = true
    end
    ok(firsts["a.tie.example.test"] and firsts["b.tie.example.test"])
end)

test("a greylisting backup never moves ahead of the primaries", function()
    setup()
    local r = deliver{ to = { "user@tie.example.test" },
                       outcomes = { "a.tie.example.test=refused",
                                    "b.tie.example.test=refused",
                                    "backup.tie.example.test:rcpt=451/4.7.1/greylisted" } }
    eq(r.recipients[1].state, "deferred")
    eq(r.recipients[1].host, "backup.tie.example.test")
    local h = hosts(route("tie.example.test"))
    eq(h[3], "backup.tie.example.test")
end)

test("configured phrases, codes and stages", function()
    setup({ texts = { "Slow Down" }, codes = { 450 }, stages = { "rcpt" } })
    local function state(reply, stage)
        return deliver{ to = { "u@example.test" },
                        outcomes = { MX1 .. ":" .. (stage or "rcpt") .. "=" .. reply } }
            .recipients[1].host
    end
    eq(state("450/4.2.0/please slow down"), MX1)  -- phrase, any case
    eq(state("450/4.7.1/whatever"), MX1)          -- the default 4.7. prefix
    eq(state("451/4.7.1/greylisted"), MX2)        -- 451 not in codes
    eq(state("450/4.7.1/greylisted", "mail"), MX2) -- MAIL not in stages
end)

test("bad configurations are refused with a message naming the setting", function()
    local cases = {
        { { codes = { 550 } }, "codes%[1%] is not one of the reply codes" },
        { { codes = {} }, "codes must be a non%-empty list" },
        { { enhanced = { "5.7." } }, "enhanced%[1%] is not one of" },
        { { texts = "greylist" }, "texts must be a non%-empty list" },
        { { stages = { "rcpt", "quit" } }, "stages%[2%] is not one of the stages" },
        { { delays = { 300, -1 } }, "delays%[2%] is not one of the delays" },
        { { stick_for = "1h" }, "stick_for must be a number" },
        { { delay = 300 }, "unknown setting 'delay'" },
    }
    for _, c in ipairs(cases) do
        local err = load_error(c[1])
        ok(err:find("greylist_retry: " .. c[2]), "want '" .. c[2] .. "', got '" .. err .. "'")
    end
    eq(load_error({ delays = { 60 }, stick_for = 0 }), "")
end)
