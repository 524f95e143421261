-- swe-reasoner for Neovim >= 0.10: solve an issue with the local model, review the
-- diff, accept or reject. The protocol is docs/lsp.md of the swe-reasoner repository.
local M = {}

local NAME = "swe-reasoner"
local TITLE = "Solve issue with swe-reasoner"

M.config = {
  cmd = { "swe-reasoner", "serve" },
  filetypes = { "markdown", "text", "python" },
  root_markers = { ".git" },
  settings = {}, -- the server's sweReasoner settings: model, apiBase, apiModel, budget, ...
  keys = { accept = "a", reject = "r", next = "n", close = "q" },
}

-- What a statusline shows; see M.status().
M.state = { progress = "", result = nil, candidate = 1, preview = nil }

local function notify(msg, level)
  vim.notify("swe-reasoner: " .. msg, level or vim.log.levels.INFO)
end

local function request(client, method, params, handler, bufnr)
  if vim.fn.has("nvim-0.11") == 1 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function get_client(bufnr)
  local clients = vim.lsp.get_clients({ name = NAME, bufnr = bufnr })
  if #clients == 0 then
    clients = vim.lsp.get_clients({ name = NAME })
  end
  return clients[1]
end

local function execute(command, argument, on_result)
  local client = get_client(vim.api.nvim_get_current_buf())
  if not client then
    notify("the server is not running in this buffer (see :checkhealth vim.lsp)", vim.log.levels.ERROR)
    return
  end
  request(client, "workspace/executeCommand", { command = command, arguments = { argument } }, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
    elseif on_result then
      on_result(result)
    end
  end)
end

-- The preview: a scratch buffer with the candidate's evidence and diff.
local function preview_lines(result, i)
  local cand = result.candidates[i]
  local k = M.config.keys
  local lines = {
    string.format("swe-reasoner · candidate %d/%d · %s", i, #result.candidates, result.message),
    string.format("%s: accept   %s: reject   %s: next candidate   %s: close", k.accept, k.reject, k.next, k.close),
    "",
  }
  local ev = cand.evidence or {}
  for _, file in ipairs(ev.files or {}) do
    local why = type(ev.why) == "table" and ev.why[file] or nil
    table.insert(lines, "read " .. file .. ((why and why ~= "") and (": " .. why) or ""))
  end
  for _, loc in ipairs(ev.locations or {}) do
    local where = loc.file .. (loc.class ~= nil and loc.class ~= "" and (": " .. loc.class) or "")
    if loc["function"] ~= nil and loc["function"] ~= "" then
      where = where .. (where:find(": ") and "." or ": ") .. loc["function"]
    end
    table.insert(lines, "location: " .. where .. ((loc.reason or "") ~= "" and (" (" .. loc.reason .. ")") or ""))
  end
  for name, score in pairs(ev.scores or {}) do
    table.insert(lines, string.format("score %s: %s", name, tostring(score)))
  end
  local v = ev.verification
  if type(v) == "table" then
    table.insert(lines, string.format("verification: %s: %s", v.verified and "VERIFIED" or "NOT VERIFIED", v.reason))
    if v.repro_before ~= nil and v.repro_before ~= vim.NIL then
      local after = (v.repro_after ~= nil and v.repro_after ~= vim.NIL) and v.repro_after or "-"
      table.insert(lines, string.format("reproduction: %s before the patch, %s after", v.repro_before, after))
    end
    table.insert(lines, string.format("regression tests: %d passed before; regressions: %s",
      #(v.regression_tests or {}), #(v.regressions or {}) > 0 and table.concat(v.regressions, ", ") or "none"))
  elseif type(ev.note) == "string" and ev.note ~= "" then
    table.insert(lines, ev.note)
  end
  if result.trajectory ~= nil and result.trajectory ~= vim.NIL then
    table.insert(lines, "trajectory: " .. result.trajectory)
  end
  table.insert(lines, "")
  vim.list_extend(lines, vim.split(cand.diff, "\n", { trimempty = true }))
  return lines
end

local function close_preview()
  local buf = M.state.preview
  M.state.preview = nil
  if buf and vim.api.nvim_buf_is_valid(buf) then
    vim.api.nvim_buf_delete(buf, { force = true })
  end
end

local function show(i)
  local result = M.state.result
  M.state.candidate = i
  local buf = M.state.preview
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    buf = vim.api.nvim_create_buf(false, true)
    M.state.preview = buf
    vim.bo[buf].bufhidden = "wipe"
    vim.bo[buf].filetype = "diff"
    vim.cmd("botright split")
    vim.api.nvim_win_set_buf(0, buf)
    local k, opts = M.config.keys, { buffer = buf, nowait = true, silent = true }
    vim.keymap.set("n", k.accept, M.accept, vim.tbl_extend("force", opts, { desc = "swe-reasoner: accept" }))
    vim.keymap.set("n", k.reject, M.reject, vim.tbl_extend("force", opts, { desc = "swe-reasoner: reject" }))
    vim.keymap.set("n", k.next, M.next, vim.tbl_extend("force", opts, { desc = "swe-reasoner: next candidate" }))
    vim.keymap.set("n", k.close, close_preview, vim.tbl_extend("force", opts, { desc = "swe-reasoner: close" }))
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, preview_lines(result, i))
  vim.bo[buf].modifiable = false
end

local function on_result(_, result)
  M.state.progress = ""
  if result.status ~= "patched" or #result.candidates == 0 then
    local level = result.status == "error" and vim.log.levels.ERROR or vim.log.levels.WARN
    notify(result.message, level)
    M.state.result = nil
    vim.api.nvim_exec_autocmds("User", { pattern = "SweReasonerResult", data = result })
    return
  end
  M.state.result = result
  show(1)
  vim.api.nvim_exec_autocmds("User", { pattern = "SweReasonerResult", data = result })
end

--- Solve `issue` (a string); without one, the visual selection or a prompt.
function M.solve(issue)
  if issue == nil or issue == "" then
    vim.ui.input({ prompt = "Issue to solve: " }, function(text)
      if text and text ~= "" then
        M.solve(text)
      end
    end)
    return
  end
  close_preview()
  M.state.result = nil
  execute("sweReasoner.solve", { issue = issue, uri = vim.uri_from_bufnr(0) }, function(res)
    M.state.solve_id = res.solveId
  end)
end

function M.cancel()
  execute("sweReasoner.cancel", vim.empty_dict(), function(res)
    notify(res.cancelled and "cancelling" or "no solve is running")
  end)
end

function M.accept()
  local result = M.state.result
  if not result then
    return notify("nothing to accept", vim.log.levels.WARN)
  end
  execute("sweReasoner.apply", { solveId = result.solveId, candidate = M.state.candidate - 1 }, function(res)
    if res.applied then
      M.state.result = nil
      close_preview()
      notify("patch applied (not saved yet)")
    else
      notify("not applied: " .. res.reason, vim.log.levels.ERROR)
    end
    vim.api.nvim_exec_autocmds("User", { pattern = "SweReasonerApplied", data = res })
  end)
end

function M.reject()
  local result = M.state.result
  M.state.result = nil
  close_preview()
  if result then
    execute("sweReasoner.reject", { solveId = result.solveId })
  end
end

function M.next()
  local result = M.state.result
  if result then
    show(M.state.candidate % #result.candidates + 1)
  end
end

--- The running solve's stage for a statusline ("" when idle).
function M.status()
  return M.state.progress
end

local function selection_text(line1, line2)
  local lines = vim.api.nvim_buf_get_lines(0, line1 - 1, line2, false)
  return table.concat(lines, "\n")
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  local group = vim.api.nvim_create_augroup("swe_reasoner", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      local root = vim.fs.root(args.buf, M.config.root_markers)
      if not root then
        return
      end
      vim.lsp.start({
        name = NAME,
        cmd = M.config.cmd,
        root_dir = root,
        settings = { sweReasoner = M.config.settings },
        handlers = { ["sweReasoner/result"] = on_result },
      }, { bufnr = args.buf })
    end,
  })
  vim.api.nvim_create_autocmd("LspProgress", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if not client or client.name ~= NAME then
        return
      end
      local value = args.data.params.value
      if value.kind == "end" then
        M.state.progress = ""
      else
        M.state.progress = (value.message or value.title or "")
          .. (value.percentage and string.format(" (%d%%)", value.percentage) or "")
      end
      vim.cmd("redrawstatus")
    end,
  })
  vim.api.nvim_create_user_command("SweReasonerSolve", function(cmd)
    M.solve(cmd.range > 0 and selection_text(cmd.line1, cmd.line2) or cmd.args)
  end, { range = true, nargs = "?", desc = "swe-reasoner: solve the selected issue (or one typed at the prompt)" })
  vim.api.nvim_create_user_command("SweReasonerCancel", M.cancel, { desc = "swe-reasoner: cancel the solve" })
  vim.api.nvim_create_user_command("SweReasonerAccept", M.accept, { desc = "swe-reasoner: apply the previewed patch" })
  vim.api.nvim_create_user_command("SweReasonerReject", M.reject, { desc = "swe-reasoner: discard the patches" })
  vim.api.nvim_create_user_command("SweReasonerNext", M.next, { desc = "swe-reasoner: preview the next candidate" })
end

M.TITLE = TITLE
return M
