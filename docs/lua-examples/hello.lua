-- hello.lua -- the smallest useful policy: look at every plan, change
-- nothing.
return {
    route = function(plan)
        local hosts = {}
        for _, c in ipairs(plan:candidates()) do
            hosts[#hosts + 1] = c.host
        end
        mx.log(("%s: %s, candidates: %s"):format(plan.domain, plan.status,
            #hosts > 0 and table.concat(hosts, " ") or "none"))
    end,
}
