-- Every check here passes: the runner's own happy path.
zone [[
$ORIGIN example.test.
@       SOA ns hostmaster 1 3600 600 86400 300
@       NS  ns
ns      A   192.0.2.53
@       MX  10 mx1
@       MX  20 mx2
mx1     A   192.0.2.1
mx2     A   192.0.2.2
relay   A   192.0.2.9
]]

test("plain routing", function()
  local plan = route("user@example.test")
  eq(plan.status, "ok")
  eq(hosts(plan), { "mx1.example.test", "mx2.example.test" })
end)

test("served TTLs: the MX records' and each host's, not the plan's", function()
  local plan = route("example.test")
  eq(plan.ttl, 300) -- the AAAA NODATA's SOA minimum
  eq(plan.mx_ttl, 3600)
  eq(plan.candidates[1].ttl, 3600)
end)

test("invalid input is a plan-like table", function()
  eq(route("a..b").status, "invalid")
end)

test("failover and a per-recipient bounce", function()
  local r = deliver{ to = { "a@example.test", "b@example.test" },
                     outcomes = { "mx1.example.test=refused",
                                  "mx2.example.test:rcpt:2=550/5.1.1/no such user" } }
  eq(r.action, "delivered")
  eq(r.recipients[1].state, "delivered")
  eq(r.recipients[1].host, "mx2.example.test")
  eq(r.recipients[2].state, "bounced")
  eq(r.recipients[2].code, 550)
end)

test("4xx on the last host defers", function()
  local r = deliver{ to = { "a@example.test" }, outcomes = { "*:mail=451" } }
  eq(r.action, "defer")
  ok(r.recipients[1].retry_in > 0)
end)

policy("relay.lua", { relays = { { host = "relay.example.test", port = 587 } } })

test("a policy puts the relay first", function()
  local plan = route("example.test")
  eq(plan.candidates[1].host, "relay.example.test")
  eq(plan.candidates[1].source, "policy")
  eq(plan.candidates[1].port, 587)
end)
