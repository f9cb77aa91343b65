-- Each test here fails on purpose: the runner must report all of them.
zone [[
$ORIGIN example.test.
@       SOA ns hostmaster 1 3600 600 86400 300
@       NS  ns
ns      A   192.0.2.53
@       MX  10 mx1
mx1     A   192.0.2.1
]]
test("wrong host", function() eq(hosts(route("example.test")), { "mx9.example.test" }, "on purpose") end)
test("runtime error", function() local x; return x.y end)
test("ok on nil", function() ok(nil) end)
test("this one passes", function() eq(1, 1) end)
