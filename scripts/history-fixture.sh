#!/usr/bin/env bash
# Makes a git repository for `patois bench retrieval` out of a source tree without
# history: the first commit holds SRC minus N source files (chosen with a fixed
# seed), then each held-out file is added in a commit of its own, so every later
# commit is "a new file written against an existing codebase".
#   scripts/history-fixture.sh SRC DEST [N]
set -euo pipefail
src=$1 dest=$2 n=${3:-40}
rm -rf "$dest" && mkdir -p "$dest" && cp -r "$src"/. "$dest"
cd "$dest"
git init -q
git config user.name fixture && git config user.email fixture@example.com
held=$(find . -type f \( -name '*.rs' -o -name '*.py' -o -name '*.go' -o -name '*.ts' \) \
  -not -path '*/tests/*' -not -path '*/benches/*' -not -path '*/examples/*' -not -name 'mod.rs' -not -name 'lib.rs' \
  | sort | awk 'BEGIN{srand(7)} {print rand() "\t" $0}' | sort | head -n "$n" | cut -f2)
mkdir -p ../.held.$$
for f in $held; do mkdir -p "../.held.$$/$(dirname "$f")"; mv "$f" "../.held.$$/$f"; done
git add -A && git commit -qm "base" --date=2020-01-01T00:00:00
i=0
for f in $held; do
  i=$((i+1)); mv "../.held.$$/$f" "$f"
  git add "$f" && git commit -qm "Add $f" --date="2020-01-02T00:00:$(printf %02d $((i % 60)))"
done
rm -rf "../.held.$$"
echo "$dest: base + $i commits"
