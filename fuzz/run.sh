#!/usr/bin/env bash
# Fuzzes configuration parsing (`ServicesFile::from_toml_str` on arbitrary bytes) for a bounded
# time:  fuzz/run.sh [SECONDS]   (default 60)
#
# Needs a nightly toolchain (cargo fuzz builds with sanitizer flags only nightly accepts) and
# cargo-fuzz, which this script installs with `cargo install cargo-fuzz` when it is missing.
# The corpus grows in fuzz/corpus/ (seeded from fuzz/seeds/); a crash is saved in
# fuzz/artifacts/ and makes the script fail. Not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz/run.sh: cargo fuzz needs a nightly Rust toolchain and none is installed;" >&2
  echo "            install one with 'rustup toolchain install nightly' (needs network), then rerun." >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

mkdir -p corpus/config_toml
cp -n seeds/config_toml/* corpus/config_toml/ 2>/dev/null || true
exec cargo +nightly fuzz run config_toml corpus/config_toml -- \
  -max_total_time="$secs" -max_len=4096 -timeout=10
