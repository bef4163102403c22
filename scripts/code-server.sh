#!/usr/bin/env bash
# Installs what the VS Code end-to-end test (tests/vscode.rs) drives: code-server 4.100.3
# (VS Code's own build served to a browser; later versions need Node 24) and playwright-core,
# from npm, into $PATOIS_DEV_CACHE (default ~/.cache/patois-dev). Debian's chromium is the
# browser (deps.sh installs it); nothing here downloads a browser or ripgrep.
set -euo pipefail
version=4.100.3
dir=${PATOIS_DEV_CACHE:-$HOME/.cache/patois-dev}/code-server-$version
if [ -x "$dir/node_modules/.bin/code-server" ] && [ -f "$dir/.installed" ]; then
  exit 0
fi
command -v rg >/dev/null || { echo "patois: code-server needs ripgrep (apt install ripgrep)" >&2; exit 1; }
echo "patois: installing code-server $version and playwright-core with npm into $dir" >&2
rm -rf "$dir" && mkdir -p "$dir"
cd "$dir"
export npm_config_yes=true npm_config_audit=false npm_config_fund=false
export npm_config_update_notifier=false npm_config_loglevel=error
npm init -y >/dev/null
npm install -q --ignore-scripts "code-server@$version" playwright-core@1 >/dev/null
(
  cd node_modules/code-server/lib/vscode
  npm install -q --omit=dev --ignore-scripts >/dev/null
  # VS Code's ripgrep package downloads its binary on install; give it Debian's.
  mkdir -p node_modules/@vscode/ripgrep/bin
  cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/
  npm rebuild >/dev/null 2>&1
)
(cd node_modules/code-server && npm_config_unsafe_perm=true npm_config_user_agent="npm/$(npm -v) node/$(node -v)" sh postinstall.sh >/dev/null)
npm rebuild argon2 --build-from-source >/dev/null 2>&1
touch .installed
