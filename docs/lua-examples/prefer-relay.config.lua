-- Configuration of prefer-relay.lua: use it with
--   --policy docs/lua-examples/prefer-relay.lua
--   --policy-config docs/lua-examples/prefer-relay.config.lua
return {
    domains = { "example.com", ".example.com" },
    relays = {
        { host = "relay-us.relays.example", label = "us" },
        { host = "relay-eu.relays.example", label = "eu", port = 587, tls = true },
    },
    prefer = "eu",
}
