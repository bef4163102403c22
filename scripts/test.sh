#!/usr/bin/env bash
# The whole test suite: formatting, clippy, the VS Code extension (unit tests, package,
# manifest check) and the Rust workspace (unit, integration, and the LSP, Neovim and VS Code
# end-to-end tests; the VS Code one drives the package built here in code-server).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --tests
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd editors/vscode && npm ci --no-audit --no-fund && npm run package && npm test)
# Every end-to-end test runs here: a missing editor or server fails it instead of skipping it.
PATOIS_REQUIRE_TOOLS=1 cargo test --workspace --locked
