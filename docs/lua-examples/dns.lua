-- dns.lua -- resolve names from a route hook: the hook waits for each
-- answer without blocking the engine, then goes on.
return {
    route = function(plan)
        local records, err = mx.resolve_mx(plan.domain)
        if not records then
            mx.log(plan.domain .. ": no MX records: " .. err)
            return
        end
        for _, r in ipairs(records) do
            if r.host == "" then
                mx.log(plan.domain .. ": null MX")
            else
                local addrs, aerr = mx.resolve_addr(r.host)
                mx.log(("%s: MX %d %s -> %s"):format(plan.domain,
                    r.preference, r.host,
                    addrs and table.concat(addrs, " ") or aerr))
            end
        end
    end,
}
