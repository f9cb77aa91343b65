-- greylist.lua -- a greylisting reply means "come back later, to me":
-- moving on to the next MX host (the default for 4xx) only gets the
-- message greylisted there too. Defer instead, and keep the host.
--
-- Configuration:
--   words  phrases that mark a greylisting reply (lower case); the
--          default list is below
local cfg = ...

local words = cfg.words or { "greylist", "graylist", "try again later" }

local function greylisted(ev)
    if ev.class ~= "4xx" then
        return false
    end
    local text = string.lower(ev.text or "")
    for _, w in ipairs(words) do
        if string.find(text, w, 1, true) then
            return true
        end
    end
    return false
end

return {
    outcome = function(ev)
        if greylisted(ev) then
            mx.log(("%s greylisted at %s by %s: deferring"):format(
                ev.recipient or ev.domain, ev.stage, ev.host))
            return "defer"
        end
        return nil -- the engine's decision stands
    end,
}
