local config = ...
return { route = function(plan)
  for _, r in ipairs(config.relays) do
    plan:add{host = r.host, port = r.port, position = "first", addresses = r.addresses}
  end
end }
