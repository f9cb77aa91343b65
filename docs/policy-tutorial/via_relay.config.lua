-- Configuration of via_relay.lua, in a file: use it with
--   --policy docs/policy-tutorial/via_relay.lua
--   --policy-config docs/policy-tutorial/via_relay.config.lua
return {
    domains = { "partner.example", ".partner.example" },
    relay = "relay.corp.example",
    port = 587,
}
