-- Drives the real server through the project's Neovim plugin, headless:
--   nvim --headless --clean -l tests/nvim/e2e.lua
-- Environment: PLUGIN (editors/nvim), SERVER (the command, JSON list), REPO (a git
-- repository with issue.md), SETTINGS (JSON), SCENARIO ("accept" | "cancel"), OUT (a
-- file that receives what happened, as JSON).
local env = vim.env
vim.opt.rtp:prepend(env.PLUGIN)
local out = { progress = {}, scenario = env.SCENARIO }

local function finish(err)
  out.error = err
  local f = assert(io.open(env.OUT, "w"))
  f:write(vim.json.encode(out))
  f:close()
  vim.cmd("qall!")
end

local function wait(ms, what, cond)
  if not vim.wait(ms, cond, 20) then
    finish("timed out waiting for " .. what)
  end
end

local sr = require("swe_reasoner")
sr.setup({ cmd = vim.json.decode(env.SERVER), settings = vim.json.decode(env.SETTINGS) })
vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(a)
    local v = a.data.params.value
    table.insert(out.progress, { kind = v.kind, message = v.message or v.title, percentage = v.percentage,
                                  status = sr.status() })
  end,
})
vim.api.nvim_create_autocmd("User", { pattern = "SweReasonerResult", callback = function(a) out.result = a.data end })
vim.api.nvim_create_autocmd("User", { pattern = "SweReasonerApplied", callback = function(a) out.applied = a.data end })

vim.cmd.edit(env.REPO .. "/issue.md")
local issue_buf = vim.api.nvim_get_current_buf()
wait(15000, "the server", function()
  local c = vim.lsp.get_clients({ name = "swe-reasoner", bufnr = issue_buf })[1]
  return c ~= nil and c.initialized
end)
local n = vim.api.nvim_buf_line_count(issue_buf)

if env.SCENARIO == "accept" then
  -- select the issue's lines and pick the code action, as a user would
  local last = vim.api.nvim_buf_get_lines(issue_buf, n - 1, n, false)[1]
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(a) return a.title == sr.TITLE end,
    range = { start = { 1, 0 }, ["end"] = { n, #last } },
  })
  wait(60000, "the result", function() return out.result ~= nil end)
  out.preview = vim.api.nvim_buf_get_lines(sr.state.preview, 0, -1, false)
  out.status_after = sr.status()
  local stats = env.REPO .. "/calc/stats.py"
  out.disk_before = table.concat(vim.fn.readfile(stats), "\n")
  vim.api.nvim_set_current_win(vim.fn.bufwinid(sr.state.preview))
  vim.cmd("normal a") -- the preview's accept key
  wait(10000, "the edit", function() return out.applied ~= nil end)
  local buf = vim.fn.bufnr(stats)
  out.buffer = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
  out.modified = vim.bo[buf].modified
  out.disk_after = table.concat(vim.fn.readfile(stats), "\n")
  out.preview_open = sr.state.preview ~= nil
elseif env.SCENARIO == "cancel" then
  vim.cmd(string.format("1,%dSweReasonerSolve", n))
  wait(60000, "the model to work", function()
    for _, p in ipairs(out.progress) do
      if p.message and (p.message:find("^Understanding") or p.message:find("^Localizing")) then
        return true
      end
    end
    return false
  end)
  vim.wait(500)
  out.status_while = sr.status()
  local t0 = vim.uv.hrtime()
  vim.cmd("SweReasonerCancel")
  wait(10000, "the cancelled result", function() return out.result ~= nil end)
  out.cancel_ms = (vim.uv.hrtime() - t0) / 1e6
end
finish(nil)
