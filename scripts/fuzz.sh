#!/usr/bin/env bash
# Runs every fuzz target of reauth, one at a time, for a fixed time each.
#
#   scripts/fuzz.sh [seconds] [go test flags...]
#
# seconds defaults to 20 (the CI budget); extra flags go to go test, e.g.
# scripts/fuzz.sh 120 -parallel=1 on a shared machine. A failing input is
# written to testdata/fuzz/<Target>/ of its package: commit it with the fix,
# and plain go test runs it as a regression test from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true

# package  target (listed by hand: a new target must be added here)
targets=(
  ".            FuzzParseChallenges"
  ".            FuzzDigestAuthorization"
  ".            FuzzTransport"
  ".            FuzzOAuth2TokenResponse"
  ".            FuzzRegistryTokenRealm"
  ".            FuzzParseTokenResponse"
  ".            FuzzNetrc"
  ".            FuzzGOAUTHOutput"
  "./mockserver FuzzMockAuthorization"
  "./mockserver FuzzParseCredentials"
  "./mockserver FuzzDPoPProof"
)

for entry in "${targets[@]}"; do
  read -r pkg name <<<"$entry"
  echo "== ${name} (${pkg}, ${seconds}s)"
  # Minimizing a new input may take up to a minute by default, during which
  # nothing is fuzzed: cap it, so that a short run mostly fuzzes.
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "${seconds}s" -fuzzminimizetime 5s "$@" "$pkg"
done
