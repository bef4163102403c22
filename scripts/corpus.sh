#!/usr/bin/env bash
# Clones the benchmark corpus (benchmarks/corpus.toml) into DIR (default target/corpus),
# each repository at its pinned commit, as DIR/owner+name. Uses the network (GitHub); with
# PATOIS_CORPUS_MIRROR set, clones from MIRROR/owner+name/repo instead (a local mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/corpus}
mkdir -p "$dir"
python3 - benchmarks/corpus.toml <<'PY' | while read -r name commit; do
import sys, tomllib
for r in tomllib.load(open(sys.argv[1], "rb"))["repo"]:
    print(r["name"], r["commit"])
PY
  into="$dir/${name/\//+}"
  if [ -n "${PATOIS_CORPUS_MIRROR:-}" ]; then
    src="$PATOIS_CORPUS_MIRROR/${name/\//+}/repo"
  else
    src="https://github.com/$name"
  fi
  [ -d "$into/.git" ] || git clone -q "$src" "$into"
  git -C "$into" checkout -q "$commit" || {
    echo "patois: $name has no commit $commit; fetch it again or update benchmarks/corpus.toml" >&2
    exit 1
  }
  echo "$into at ${commit:0:10}"
done
