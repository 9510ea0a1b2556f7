#!/usr/bin/env bash
# panva's oidc-provider for reauth's integration tests (integration/oidc_test.go).
#
#   oidc-provider.sh install     npm ci in integration/oidc (the pinned version in package-lock.json)
#   oidc-provider.sh start DIR   run integration/oidc/server.mjs on 127.0.0.1, wait until it listens,
#                                write DIR/oidc.env (REAUTH_OIDC_URL, REAUTH_OIDC_KEYS)
#   oidc-provider.sh stop DIR    stop the server started from DIR (by DIR/oidc/server.pid)
#
# Everything the server writes lives in DIR/oidc: the client keys it makes at
# every start (test-only), its log and its pid file. It listens on a free port
# of 127.0.0.1 only, and is only ever signalled by the pid in DIR, never by name.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
readonly peer="$root/integration/oidc"

die() { echo "oidc-provider: $*" >&2; exit 1; }

tag=oidc-provider
# shellcheck source=scripts/servers-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/servers-lib.sh"

usage() {
  cat >&2 <<'EOF'
usage: oidc-provider.sh install
       oidc-provider.sh start DIR
       oidc-provider.sh stop DIR
EOF
  exit 2
}

cmd_install() {
  command -v node >/dev/null || die "node is not on PATH; install Node.js 20.19 or later"
  command -v npm >/dev/null || die "npm is not on PATH"
  if [ -f "$peer/node_modules/.package-lock.json" ] && cmp -s "$peer/package-lock.json" "$peer/node_modules/.reauth-lock"; then
    echo "oidc-provider: integration/oidc/node_modules is up to date"
    return 0
  fi
  (cd "$peer" && npm ci --no-audit --no-fund --ignore-scripts)
  cp "$peer/package-lock.json" "$peer/node_modules/.reauth-lock"
}

cmd_stop() {
  local dir
  if ! dir=$(cd "$1" 2>/dev/null && pwd -P); then
    echo "oidc-provider: $1: no such directory; nothing to stop"
    return 0
  fi
  rm -f "$dir/oidc.env"
  stop_pidfile "$dir" "$dir/oidc/server.pid" server
}

cmd_start() {
  local dir pid i origin
  [ -d "$1" ] || die "$1: no such directory"
  dir=$(cd "$1" && pwd -P)
  [ -f "$peer/node_modules/oidc-provider/package.json" ] || die "oidc-provider is not installed; run '$0 install' first"
  cmd_stop "$dir" >/dev/null
  mkdir -p "$dir/oidc"
  chmod 0700 "$dir/oidc"
  rm -f "$dir/oidc/ready"
  # Port 0: the server picks a free port and writes its origin to DIR/oidc/ready.
  (cd "$peer" && exec node server.mjs 0 "$dir/oidc") >"$dir/oidc/server.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/oidc/server.pid"
  for i in $(seq 1 300); do
    if [ -s "$dir/oidc/ready" ]; then
      origin=$(tr -d '\n' <"$dir/oidc/ready")
      [[ $origin =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected origin '$origin' in $dir/oidc/ready"
      printf 'REAUTH_OIDC_URL=%s\nREAUTH_OIDC_KEYS=%s\n' "$origin" "$dir/oidc" >"$dir/oidc.env"
      echo "oidc-provider: $origin (pid $pid); see $dir/oidc.env"
      return 0
    fi
    running "$pid" || break
    sleep 0.1
  done
  tail -n 20 "$dir/oidc/server.log" >&2 || true
  cmd_stop "$dir" >/dev/null
  die "the server did not start within 30 s; see $dir/oidc/server.log"
}

main() {
  [ $# -ge 1 ] || usage
  case $1 in
    install) [ $# -eq 1 ] || usage; cmd_install ;;
    start) [ $# -eq 2 ] || usage; cmd_start "$2" ;;
    stop) [ $# -eq 2 ] || usage; cmd_stop "$2" ;;
    *) usage ;;
  esac
}

main "$@"
