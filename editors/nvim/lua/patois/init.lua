-- patois for Neovim: starts `patois serve`, shows inline completions as ghost
-- text (or uses Neovim's native inline completion where it exists), and
-- renders cited explanations in a floating window.
local M = {}

local ns = vim.api.nvim_create_namespace("patois")
local config = {
  cmd = { "patois", "serve" },
  filetypes = { "rust", "python", "typescript", "typescriptreact", "javascript", "javascriptreact", "go" },
  debounce_ms = 120,
  auto_trigger = true,
  settings = {},
  keymaps = { accept = "<M-l>", next = "<M-]>", dismiss = "<C-]>", next_edit = "<M-n>" },
}

-- The ghost text on screen: { buf, row, col, text, extmark }
local current = nil
local timer = nil
local seq = 0

-- Requests whose answer streams in: partialResultToken -> function(text so far).
local streams = {}
local stream_seq = 0

--- `$/progress` for a streamed answer goes to its request; any other to Neovim's handler.
local function progress_handler(err, result, ctx, conf)
  local on = result and streams[result.token]
  if on then
    on(type(result.value) == "table" and result.value.text or "")
    return
  end
  return vim.lsp.handlers["$/progress"](err, result, ctx, conf)
end

local function root_dir(path)
  local dir = vim.fn.fnamemodify(path, ":p:h")
  local git = vim.fn.finddir(".git", dir .. ";")
  if git ~= "" then
    return vim.fn.fnamemodify(git, ":p:h:h")
  end
  return dir
end

local function client_for(buf)
  for _, c in pairs(vim.lsp.buf_get_clients(buf)) do
    if c.name == "patois" then
      return c
    end
  end
  return nil
end

--- The buffer's patois client; says so when there is none.
local function attached(buf)
  local client = client_for(buf)
  if not client then
    vim.notify("patois: no server attached to this buffer", vim.log.levels.WARN)
  end
  return client
end

--- The buffer's patois client, else any running one (a question is about the workspace,
--- whatever buffer it is asked from).
local function any_client(buf)
  local c = client_for(buf)
  if c then
    return c
  end
  for _, other in pairs(vim.lsp.get_active_clients()) do
    if other.name == "patois" then
      return other
    end
  end
  return nil
end

local function native_inline()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

--- Starts (or reuses) the server for a buffer.
function M.attach(buf)
  buf = buf or vim.api.nvim_get_current_buf()
  local path = vim.api.nvim_buf_get_name(buf)
  if path == "" or client_for(buf) then
    return
  end
  local root = root_dir(path)
  local cfg = {
    name = "patois",
    cmd = config.cmd,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = { patois = config.settings },
    handlers = { ["$/progress"] = progress_handler },
  }
  if vim.lsp.start then
    vim.lsp.start(cfg, { bufnr = buf })
  else
    -- Neovim 0.7: start_client + buf_attach_client, one client per root.
    M._clients = M._clients or {}
    local id = M._clients[root]
    if not id or not vim.lsp.get_client_by_id(id) then
      id = vim.lsp.start_client(cfg)
      M._clients[root] = id
    end
    vim.lsp.buf_attach_client(buf, id)
  end
  if native_inline() then
    pcall(vim.lsp.inline_completion.enable, true, { bufnr = buf })
  end
end

function M.clear()
  if current then
    pcall(vim.api.nvim_buf_del_extmark, current.buf, ns, current.extmark)
  end
  current = nil
end

local function show(buf, row, col, text)
  M.clear()
  if text == nil or text == "" then
    return
  end
  local lines = vim.split(text, "\n", { plain = true })
  local opts = { virt_text = { { lines[1], "Comment" } }, virt_text_pos = "overlay", hl_mode = "combine" }
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  if col < #line then
    -- Mid-line: show after the line's end so the text under the cursor stays readable.
    opts.virt_text_pos = "eol"
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      table.insert(opts.virt_lines, { { lines[i], "Comment" } })
    end
  end
  local id = vim.api.nvim_buf_set_extmark(buf, ns, row, col, opts)
  current = { buf = buf, row = row, col = col, text = text, extmark = id }
end

--- Asks the server for a completion at the cursor and shows it as ghost text.
--- `done(text)` is called with the result (tests use it).
function M.request(done)
  local buf = vim.api.nvim_get_current_buf()
  local client = client_for(buf)
  if not client then
    return
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  local _, utf16 = vim.str_utfindex(line, col)
  seq = seq + 1
  local mine = seq
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = row, character = utf16 },
    context = { triggerKind = 1 },
  }
  client.request("textDocument/inlineCompletion", params, function(err, result)
    if mine ~= seq then
      return -- a newer request replaced this one
    end
    local text, command = nil, nil
    if not err and result then
      local items = result.items or result
      if items[1] then
        text = items[1].insertText
        command = items[1].command
        if type(text) == "table" then
          text = text.value
        end
      end
    end
    if text and text ~= "" then
      show(buf, row, col, text)
      current.command = command
    end
    if done then
      done(text, err)
    end
  end, buf)
end

--- Inserts the ghost text at its position.
function M.accept()
  if not current then
    return false
  end
  local c = current
  M.clear()
  -- The server prepares the completion that follows the accepted one.
  local client = c.command and client_for(c.buf)
  if client then
    client.request("workspace/executeCommand", { command = c.command.command, arguments = c.command.arguments }, function() end, c.buf)
  end
  local lines = vim.split(c.text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(c.buf, c.row, c.col, c.row, c.col, lines)
  local last = lines[#lines]
  local row = c.row + #lines
  local col = (#lines == 1) and (c.col + #last) or #last
  vim.api.nvim_win_set_cursor(0, { row, col })
  return true
end

function M.visible()
  return current ~= nil
end

local function schedule()
  if not config.auto_trigger then
    return
  end
  if timer then
    timer:stop()
  end
  timer = vim.defer_fn(function()
    timer = nil
    if vim.api.nvim_get_mode().mode:sub(1, 1) == "i" then
      M.request()
    end
  end, config.debounce_ms)
end

--- The float showing an explanation or answer: reused while open, else a new one; <CR> on
--- a `path#Lline` link jumps there, q closes it.
local function float_buffer()
  if M._explain_win and vim.api.nvim_win_is_valid(M._explain_win) then
    return vim.api.nvim_win_get_buf(M._explain_win)
  end
  local fbuf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_option(fbuf, "filetype", "markdown")
  vim.api.nvim_buf_set_option(fbuf, "bufhidden", "wipe")
  local width = math.min(100, vim.o.columns - 4)
  M._explain_win = vim.api.nvim_open_win(fbuf, true, {
    relative = "editor", width = width, height = 1,
    row = 2, col = math.floor((vim.o.columns - width) / 2), border = "rounded", style = "minimal",
  })
  vim.api.nvim_buf_set_keymap(fbuf, "n", "q", "<cmd>close<CR>", { noremap = true, silent = true })
  vim.api.nvim_buf_set_keymap(fbuf, "n", "<CR>", "<cmd>lua require('patois').jump()<CR>", { noremap = true, silent = true })
  return fbuf
end

--- Shows `markdown` in the float; returns its lines.
local function show_markdown(markdown)
  local lines = vim.split(markdown, "\n", { plain = true })
  local fbuf = float_buffer()
  vim.api.nvim_buf_set_lines(fbuf, 0, -1, false, lines)
  vim.api.nvim_win_set_height(M._explain_win, math.max(1, math.min(#lines, vim.o.lines - 6)))
  return lines
end

-- The streamed request the float shows: { client, id, token }.
local streaming = nil

--- Stops the streamed request the float shows, if it is still running.
local function stop_streaming()
  local st = streaming
  streaming = nil
  if st then
    streams[st.token] = nil
    if st.id then
      st.client.cancel_request(st.id)
    end
  end
end

--- Sends `method` with a partialResultToken and shows the float at once: `view.heading`
--- and `view.waiting`, then the text so far under the heading while the model writes,
--- then `view.final(result)`. Closing the float, or a newer such request, cancels it.
--- `done(lines)` is called when the final text is shown.
local function streamed(client, method, params, view, done)
  stop_streaming()
  stream_seq = stream_seq + 1
  local token = "patois-" .. stream_seq
  params.partialResultToken = token
  show_markdown(view.heading .. "\n\n_" .. view.waiting .. "_")
  local fbuf = vim.api.nvim_win_get_buf(M._explain_win)
  streams[token] = function(text)
    if vim.api.nvim_buf_is_valid(fbuf) and text ~= "" then
      show_markdown(view.heading .. "\n\n" .. text .. " …")
    end
  end
  local mine = { client = client, token = token }
  local ok, id = client.request(method, params, function(err, result)
    streams[token] = nil
    if streaming ~= mine then
      return -- cancelled: the float was closed or shows a newer request
    end
    streaming = nil
    if err or not result then
      vim.notify("patois: " .. (err and err.message or "no answer"), vim.log.levels.ERROR)
      return
    end
    local lines = show_markdown(view.final(result))
    if done then
      done(lines)
    end
  end)
  mine.id = ok and id or nil
  streaming = mine
  vim.api.nvim_create_autocmd("BufWipeout", { buffer = fbuf, once = true, callback = function()
    if streaming == mine then
      stop_streaming()
    end
  end })
end

--- The explanation of the selection (or the line under the cursor) in a float, its
--- summary streamed as the model writes it. <CR> on a citation jumps to it. `done(lines)`
--- is called when shown whole.
function M.explain(line1, line2, done)
  local buf = vim.api.nvim_get_current_buf()
  local client = attached(buf)
  if not client then
    return
  end
  local l1 = (line1 or vim.fn.line(".")) - 1
  local l2 = (line2 or l1 + 1) - 1
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = { start = { line = l1, character = 0 }, ["end"] = { line = l2, character = 0 } },
  }
  local view = {
    heading = "### Summary (being written)",
    waiting = "Gathering the definition, callers and history…",
    final = function(result) return result.markdown end,
  }
  streamed(client, "patois/explain", params, view, done)
end

--- The answer to `question` about the code and its history, with its sources, in a float,
--- streamed as the model writes it (<CR> on a source jumps to it). `done(lines)` is
--- called when shown whole.
function M.ask(question, done)
  local client = any_client(vim.api.nvim_get_current_buf())
  if not client then
    vim.notify("patois: no server running; open a file of the repository first", vim.log.levels.WARN)
    return
  end
  local heading = "### " .. question
  local view = {
    heading = heading,
    waiting = "Looking through the index…",
    final = function(result) return heading .. "\n\n" .. result.markdown end,
  }
  streamed(client, "patois/ask", { question = question }, view, done)
end

-- Next edits from `patois/nextEdit` still to apply, and the mark showing the first.
local pending = { edits = {}, mark = nil }
local edit_ns = vim.api.nvim_create_namespace("patois_next_edit")

--- Shows the first pending next edit as virtual text at the end of its line.
local function show_next_edit()
  if pending.mark then
    pcall(vim.api.nvim_buf_del_extmark, pending.mark[1], edit_ns, pending.mark[2])
    pending.mark = nil
  end
  local e = pending.edits[1]
  if not e then
    return
  end
  local buf = vim.uri_to_bufnr(e.uri)
  vim.fn.bufload(buf)
  local text = "→ " .. e.newText:gsub("\n%s*", " ⏎ ") .. "  (" .. e.reason .. ")"
  local id = vim.api.nvim_buf_set_extmark(buf, edit_ns, e.range.start.line, 0,
    { virt_text = { { text, "Comment" } }, virt_text_pos = "eol" })
  pending.mark = { buf, id }
end

--- Asks for the edits that follow the latest one in the current buffer (a rename: the old
--- name's other uses) and shows the first at its place. `done(edits)` is called with them.
function M.next_edit(done)
  local buf = vim.api.nvim_get_current_buf()
  local client = attached(buf)
  if not client then
    return
  end
  client.request("patois/nextEdit", { textDocument = { uri = vim.uri_from_bufnr(buf) } }, function(err, result)
    pending.edits = (not err and result and result.edits) or {}
    show_next_edit()
    if #pending.edits == 0 then
      vim.notify("patois: " .. (err and err.message or "no next edit"))
    end
    if done then
      done(pending.edits)
    end
  end, buf)
end

--- Jumps to the first pending next edit and applies it; the next one is shown. Later
--- edits on the same line move by what this one changed there.
function M.apply_next_edit()
  local e = table.remove(pending.edits, 1)
  if not e then
    return false
  end
  local buf = vim.uri_to_bufnr(e.uri)
  vim.fn.bufload(buf)
  vim.api.nvim_set_current_buf(buf)
  local r = e.range
  vim.api.nvim_win_set_cursor(0, { r.start.line + 1, 0 })
  vim.lsp.util.apply_text_edits({ { range = r, newText = e.newText } }, buf, "utf-16")
  local _, new_units = vim.str_utfindex(e.newText)
  local moved = new_units - (r["end"].character - r.start.character)
  for _, later in ipairs(pending.edits) do
    local s = later.range.start
    if later.uri == e.uri and s.line == r.start.line and s.character >= r["end"].character then
      s.character = s.character + moved
      later.range["end"].character = later.range["end"].character + moved
    end
  end
  show_next_edit()
  return true
end

--- Jumps to the citation on the current line of the explanation window.
function M.jump()
  local line = vim.api.nvim_get_current_line()
  local file, lnum = line:match("%]%(([^)#]+)#L(%d+)%)")
  if not file then
    return false
  end
  if M._explain_win and vim.api.nvim_win_is_valid(M._explain_win) then
    vim.api.nvim_win_close(M._explain_win, true)
  end
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  vim.api.nvim_win_set_cursor(0, { tonumber(lnum), 0 })
  return true
end

function M.status(done)
  local client = client_for(vim.api.nvim_get_current_buf())
  if not client then
    print("patois: not attached")
    return
  end
  client.request("patois/status", {}, function(err, s)
    if err then
      print("patois: " .. err.message)
      return
    end
    local model = "none: " .. tostring(s.modelError)
    if s.model then
      local name = vim.fn.fnamemodify(s.model.path or "", ":t")
      model = string.format("%s (%s %s, run by %s; %s)", name, s.model.arch, s.model.format,
        tostring(s.model.backend), tostring(s.modelSource))
    end
    local msg = string.format("patois: %d files, %d commits; model %s", s.files, s.commits, model)
    if s.speed then
      msg = msg .. string.format("; speed here %d prompt tokens/s, %d tokens/s written, budget %d ms, prompt %s/%s tokens",
        s.speed.prefill, s.speed.decode, s.latencyBudgetMs or 0, tostring(s.promptWindow or "?"), tostring(s.fullPromptWindow or "?"))
    end
    if s.drift then
      msg = msg .. "; " .. s.drift.advice
    end
    print(msg)
    if done then
      done(s)
    end
  end)
end

function M.setup(opts)
  config = vim.tbl_deep_extend("force", config, opts or {})
  local group = vim.api.nvim_create_augroup("patois", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.filetypes,
    callback = function(args) M.attach(args.buf) end,
  })
  -- Where the cursor rests, the server prefills the prompt of a completion there.
  vim.api.nvim_create_autocmd({ "CursorHold", "CursorHoldI" }, { group = group, callback = function(args)
    local client = client_for(args.buf)
    if client then
      local row, col = unpack(vim.api.nvim_win_get_cursor(0))
      local line = vim.api.nvim_buf_get_lines(args.buf, row - 1, row, false)[1] or ""
      local _, utf16 = vim.str_utfindex(line, col)
      client.notify("patois/cursor", { textDocument = { uri = vim.uri_from_bufnr(args.buf) }, position = { line = row - 1, character = utf16 } })
    end
  end })
  if not native_inline() then
    vim.api.nvim_create_autocmd({ "TextChangedI", "TextChangedP" }, { group = group, callback = function() M.clear(); schedule() end })
    vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, { group = group, callback = function() M.clear() end })
    local km = config.keymaps
    vim.keymap.set("i", km.accept, function()
      if not M.accept() then
        return vim.api.nvim_replace_termcodes(km.accept, true, false, true)
      end
    end, { expr = true, desc = "patois: accept the suggestion" })
    vim.keymap.set("i", km.next, function() M.request() end, { desc = "patois: ask for a suggestion" })
    vim.keymap.set("i", km.dismiss, function() M.clear() end, { desc = "patois: dismiss the suggestion" })
  end
  vim.keymap.set("n", config.keymaps.next_edit, function()
    if not M.apply_next_edit() then
      M.next_edit()
    end
  end, { desc = "patois: jump to and apply the next edit (asks for them when none is shown)" })
  -- Buffers opened before setup() ran have had their FileType event already.
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.tbl_contains(config.filetypes, vim.api.nvim_buf_get_option(buf, "filetype")) then
      M.attach(buf)
    end
  end
  vim.api.nvim_create_user_command("PatoisExplain", function(a) M.explain(a.line1, a.line2) end, { range = true })
  vim.api.nvim_create_user_command("PatoisStatus", function() M.status() end, {})
  vim.api.nvim_create_user_command("PatoisAsk", function(a) M.ask(a.args) end, { nargs = "+" })
  vim.api.nvim_create_user_command("PatoisNextEdit", function() M.next_edit() end, {})
end

return M
