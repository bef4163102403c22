#!/usr/bin/env bash
# The build tools llama.cpp's build needs besides Rust: cmake, a C/C++ compiler and
# libclang (for the generated bindings); with --tests also Neovim (the editor plugin's
# end-to-end test), llama-cpp-python[server] (the remote-generation test, with pip), and
# chromium, ripgrep, the GSSAPI headers and code-server (the VS Code end-to-end test;
# code-server from npm).
# Installs the missing ones with apt, saying so; elsewhere it names them and stops.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v c++ >/dev/null || need+=(g++)
if ! { ldconfig -p 2>/dev/null | grep -q 'libclang\(-[0-9.]*\)\?\.so'; } \
  && ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then
  need+=(libclang-dev)
fi
if [ "${1:-}" = --tests ]; then
  command -v nvim >/dev/null || need+=(neovim)
  command -v chromium >/dev/null || need+=(chromium)
  command -v rg >/dev/null || need+=(ripgrep)
  # code-server's native kerberos module builds against the GSSAPI headers.
  [ -f /usr/include/gssapi/gssapi.h ] || need+=(libkrb5-dev)
fi
# The remote-generation test runs a real llama-cpp-python server (pip builds it from source
# once and keeps the wheel in its cache).
install_llama_server() {
  python3 -c 'import llama_cpp.server' 2>/dev/null && return 0
  echo "patois: installing llama-cpp-python[server] with pip (the remote-generation test needs it)" >&2
  python3 -m pip install -q 'llama-cpp-python[server]==0.3.36'
}
test_installs() {
  install_llama_server
  "$(dirname "$0")/code-server.sh"
}
if ((${#need[@]} == 0)); then
  [ "${1:-}" != --tests ] || test_installs
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "patois: building and testing needs ${need[*]}; install them with your package manager" >&2
  exit 1
fi
echo "patois: installing ${need[*]} with apt-get (the build or the tests need them)" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q "${need[@]}" >/dev/null
[ "${1:-}" != --tests ] || test_installs
