#!/usr/bin/env bash
# Makes a git repository whose history is a crate's published releases, one commit per
# version in the order given, from crates.io (a benchmark fixture: real code written over
# time, at release granularity, for `patois bench complete` and `bench retrieval`).
#   scripts/release-history.sh CRATE DEST VERSION...
#   scripts/release-history.sh itertools /tmp/itertools 0.11.0 0.12.0 0.12.1 0.13.0 0.14.0
set -euo pipefail
crate=$1 dest=$2
shift 2
rm -rf "$dest" && mkdir -p "$dest"
cd "$dest"
git init -q
git config user.name releases && git config user.email releases@example.com
day=1
for v in "$@"; do
  find . -mindepth 1 -maxdepth 1 -not -name .git -exec rm -rf {} +
  curl -fsSL "https://static.crates.io/crates/$crate/$crate-$v.crate" | tar xz --strip-components=1
  rm -f .cargo_vcs_info.json Cargo.toml.orig
  git add -A
  git commit -qm "$crate $v" --date="2020-01-$(printf %02d $day)T00:00:00"
  day=$((day + 1))
done
echo "$dest: $(git rev-list --count HEAD) releases of $crate"
