-- drop-backup.lua -- never deliver to third-party backup MX hosts: they
-- often accept mail they cannot deliver (no recipient list) and bounce it
-- later. A backup is dropped only while another host remains.
--
-- Configuration:
--   backups  provider domains whose hosts are dropped (required), e.g.
--            {"mailprovider.example.net", "offsite-backup.example.net"}
local cfg = ...
local util = require("mxroute.util")

assert(type(cfg.backups) == "table", "drop-backup.lua: backups = {...} needed")

local function is_backup(c)
    return util.host_in(c.host, cfg.backups)
end

return {
    route = function(plan)
        local others = 0
        for _, c in ipairs(plan:candidates()) do
            if not is_backup(c) then
                others = others + 1
            end
        end
        if others == 0 then
            return -- only backups left: better them than nothing
        end
        local n = plan:remove(is_backup)
        if n > 0 then
            mx.log(("%s: dropped %d backup host(s)"):format(plan.domain, n))
        end
    end,
}
