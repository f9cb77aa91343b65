-- runaway.lua -- a route hook that never ends, even though it tries to
-- catch its own stop with pcall.
return {
    route = function(plan)
        plan:remove(function(c) return true end) -- dropped with the failure
        while true do
            pcall(function()
                while true do end
            end)
        end
    end,
}
