-- Loaded by Neovim from the runtimepath; call require("patois").setup{} to enable.
if vim.g.loaded_patois then
  return
end
vim.g.loaded_patois = true
