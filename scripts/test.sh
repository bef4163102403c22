#!/usr/bin/env bash
# The whole test suite: formatting, clippy, the Rust workspace (unit, integration, LSP and
# Neovim end-to-end tests) and the VS Code extension (unit tests, package, manifest check).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --tests
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
(cd editors/vscode && npm ci --no-audit --no-fund && npm run package && npm test)
