-- sandbox.lua -- list what a policy can see (at load time).
local names = {}
for name in pairs(_G) do
    names[#names + 1] = name
end
table.sort(names)
mx.log("globals: " .. table.concat(names, " "))
local os_names = {}
for name in pairs(os) do
    os_names[#os_names + 1] = name
end
mx.log("os: " .. table.concat(os_names, " "))
mx.log("load of bytecode: " .. select(2, load(string.char(27) .. "Lua")))
mx.log("os.time{...}: " .. select(2, pcall(os.time, { year = 2030 })))
mx.log("require: " .. select(2, pcall(require, "socket")))
return { route = function(plan) end }
