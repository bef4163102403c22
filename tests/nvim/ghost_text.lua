-- Run by tests/nvim.rs in a headless Neovim: attach the real `patois serve`,
-- type a prefix, wait for ghost text, accept it, then :PatoisExplain and :PatoisAsk
-- (both streamed; closing the float cancels).
-- Writes "ok" or the failure to $PATOIS_RESULT and quits.
local out = os.getenv("PATOIS_RESULT")
local function finish(msg)
  local f = io.open(out, "w")
  f:write(msg)
  f:close()
  vim.cmd("qa!")
end
local function check(cond, msg)
  if not cond then
    finish("FAIL: " .. msg)
    error(msg)
  end
end

local ok, err = pcall(function()
  local patois = require("patois")
  patois.setup({ cmd = { os.getenv("PATOIS_BIN"), "serve" }, auto_trigger = false })
  local buf = vim.api.nvim_get_current_buf()
  patois.attach(buf)
  local ready = vim.wait(60000, function()
    for _, c in pairs(vim.lsp.buf_get_clients(buf)) do
      if c.name == "patois" and c.initialized then
        return true
      end
    end
    return false
  end, 50)
  check(ready, "the server never initialized")

  -- Type a prefix on the empty line inside main() in insert mode, then ask for a
  -- suggestion from insert mode (as the <M-]> mapping does).
  local row = tonumber(os.getenv("PATOIS_ROW")) - 1
  local typed = "    let total = "
  local answered, suggestion, failure = false, nil, nil
  _G.patois_test_trigger = function()
    patois.request(function(text, e)
      answered, suggestion, failure = true, text, e
    end)
  end
  vim.api.nvim_win_set_cursor(0, { row + 1, 0 })
  local keys = vim.api.nvim_replace_termcodes("A" .. typed .. "<Cmd>lua _G.patois_test_trigger()<CR><Esc>", true, false, true)
  vim.api.nvim_feedkeys(keys, "x", false)
  check(vim.wait(60000, function() return answered end, 20), "no inline completion response")
  check(failure == nil, "the request failed: " .. vim.inspect(failure))
  check(suggestion and suggestion ~= "", "the completion was empty")
  local word = os.getenv("PATOIS_WORD")
  check(suggestion:sub(1, #word) == word and suggestion:gsub(vim.pesc(word), "") == "",
    "the completion is not the model's word repeated: " .. vim.inspect(suggestion))
  check(patois.visible(), "no ghost text shown")
  local marks = vim.api.nvim_buf_get_extmarks(buf, vim.api.nvim_create_namespace("patois"), 0, -1, { details = true })
  check(#marks == 1 and marks[1][2] == row, "ghost text extmark not on the typed line")
  check(patois.accept(), "accept found nothing to insert")
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
  local first = vim.split(suggestion, "\n", { plain = true })[1]
  check(line == typed .. first, "accepted text not in the buffer: " .. vim.inspect(line))
  check(not patois.visible(), "ghost text still shown after accept")

  -- Requests before indexing finishes are answered from what is indexed so far;
  -- wait for the whole repository before asking for callers and history.
  local indexed = false
  check(vim.wait(60000, function()
    patois.status(function(s)
      indexed = indexed or (s.files >= 3 and s.commits >= 1 and not s.indexing)
    end)
    return indexed
  end, 200), "the index never finished")

  -- :PatoisExplain on the store function (line 2 of src/store.rs).
  vim.cmd("edit " .. os.getenv("PATOIS_STORE"))
  local sbuf = vim.api.nvim_get_current_buf()
  patois.attach(sbuf)
  vim.wait(5000, function() return #vim.lsp.buf_get_clients(sbuf) > 0 end, 20)
  local shown = nil
  patois.explain(2, 2, function(lines) shown = lines end)
  -- The summary streams into the float while the model writes it.
  local function float_text()
    local b = vim.api.nvim_win_get_buf(patois._explain_win)
    return table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), "\n")
  end
  check(vim.wait(60000, function() return shown ~= nil or float_text():find(vim.trim(word), 1, true) ~= nil end, 20),
    "no summary streamed: " .. float_text())
  check(shown == nil, "the explanation came whole, not streamed")
  check(vim.wait(60000, function() return shown ~= nil end, 20), "no explanation")
  local text = table.concat(shown, "\n")
  check(text:find("src/store.rs:2%-4", 1) ~= nil, "explanation lacks the definition citation:\n" .. text)
  check(text:find("src/app.rs", 1, true) ~= nil, "explanation lacks the caller citation:\n" .. text)
  -- Jump from a citation line in the float to the cited file and line.
  local win_buf = vim.api.nvim_get_current_buf()
  local lines = vim.api.nvim_buf_get_lines(win_buf, 0, -1, false)
  for i, l in ipairs(lines) do
    if l:find("src/app.rs", 1, true) and l:find("#L", 1, true) then
      vim.api.nvim_win_set_cursor(0, { i, 0 })
      break
    end
  end
  check(patois.jump(), "no citation to jump to")
  check(vim.api.nvim_buf_get_name(0):find("src/app.rs", 1, true) ~= nil, "jump did not open src/app.rs")

  -- :PatoisAsk: the answer's sources list the definition, and <CR> on one jumps there.
  -- Closing the float while the answer streams in cancels the request.
  local cancelled, streaming_answer = {}, false
  for _, c in pairs(vim.lsp.get_active_clients()) do
    if c.name == "patois" then
      local cancel = c.cancel_request
      c.cancel_request = function(id)
        table.insert(cancelled, id)
        return cancel(id)
      end
    end
  end
  patois.ask("Who calls `fetch_value`?", function() streaming_answer = "whole" end)
  check(vim.wait(60000, function() return float_text():find(vim.trim(word), 1, true) ~= nil end, 20),
    "no answer streamed: " .. float_text())
  check(float_text():find("### Who calls `fetch_value`?", 1, true) == 1, "the float lacks the question")
  check(not streaming_answer, "the answer came whole, not streamed")
  vim.api.nvim_feedkeys("q", "x", false)
  check(#cancelled == 1, "closing the float did not cancel the request: " .. vim.inspect(cancelled))
  check(not vim.api.nvim_win_is_valid(patois._explain_win), "the float is still open")

  local answer = nil
  patois.ask("Who calls `fetch_value`?", function(l) answer = l end)
  check(vim.wait(60000, function() return answer ~= nil end, 20), "no answer")
  local atext = table.concat(answer, "\n")
  check(atext:find("definition of `fetch_value`", 1, true) ~= nil, "the answer lacks the definition:\n" .. atext)
  local alines = vim.api.nvim_buf_get_lines(vim.api.nvim_get_current_buf(), 0, -1, false)
  for i, l in ipairs(alines) do
    if l:find("definition of", 1, true) and l:find("#L", 1, true) then
      vim.api.nvim_win_set_cursor(0, { i, 0 })
      break
    end
  end
  check(patois.jump(), "no source to jump to")
  check(vim.api.nvim_buf_get_name(0):find("src/store.rs", 1, true) ~= nil, "jump did not open src/store.rs")

  -- Next edit: rename the call in src/app.rs; the import is shown as the next edit at its
  -- line, and the mapping's function jumps there and applies it.
  vim.cmd("edit " .. os.getenv("PATOIS_STORE"):gsub("store%.rs$", "app.rs"))
  local abuf = vim.api.nvim_get_current_buf()
  patois.attach(abuf)
  vim.wait(5000, function() return #vim.lsp.buf_get_clients(abuf) > 0 end, 20)
  local call = vim.api.nvim_buf_get_lines(abuf, 3, 4, false)[1]
  vim.api.nvim_buf_set_lines(abuf, 3, 4, false, { (call:gsub("fetch_value", "load_value")) })
  local edits = nil
  check(vim.wait(10000, function()
    patois.next_edit(function(e) edits = e end)
    vim.wait(300, function() return edits ~= nil end, 20)
    return edits ~= nil and #edits > 0
  end, 500), "no next edit after the rename")
  local first = edits[1]
  check(first.uri == vim.uri_from_bufnr(abuf) and first.range.start.line == 0, "the import is not first: " .. vim.inspect(first))
  local emarks = vim.api.nvim_buf_get_extmarks(abuf, vim.api.nvim_create_namespace("patois_next_edit"), 0, -1, {})
  check(#emarks == 1 and emarks[1][2] == 0, "no virtual text at the import: " .. vim.inspect(emarks))
  vim.api.nvim_win_set_cursor(0, { 4, 0 })
  check(patois.apply_next_edit(), "nothing applied")
  check(vim.api.nvim_win_get_cursor(0)[1] == 1, "the cursor did not jump to the import")
  local import = vim.api.nvim_buf_get_lines(abuf, 0, 1, false)[1]
  check(import == "use crate::store::load_value;", "the import was not renamed: " .. import)
end)
if ok then
  finish("ok")
else
  finish("FAIL: " .. tostring(err))
end
