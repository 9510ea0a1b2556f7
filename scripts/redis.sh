#!/usr/bin/env bash
# Real Redis for reauth's redisstore integration tests.
#
#   redis.sh install        apt-get redis-server if missing (root, Debian 12); the service is not started
#   redis.sh start DIR      start redis-server on 127.0.0.1 on a free port; write DIR/env and DIR/redis.pid
#   redis.sh stop DIR       stop the server started from DIR, by its pid file
#   redis.sh test [ARGS]    install, start in a temporary DIR, run the redisstore tests
#                           with -tags integration (ARGS go to go test), stop
#
# No persistence (--save '' --appendonly no), protected mode on, bound to
# 127.0.0.1 only; nothing in /etc is read or changed; the process is only ever
# signalled by the pid in DIR, never by name.
set -euo pipefail

die() { echo "redis.sh: $*" >&2; exit 1; }

tag=redis.sh
# shellcheck source=scripts/servers-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/servers-lib.sh"

redis_bin() { command -v redis-server || command -v /usr/bin/redis-server || true; }
cli_bin() { command -v redis-cli || command -v /usr/bin/redis-cli || true; }

cmd_install() {
  if [ -n "$(redis_bin)" ] && [ -n "$(cli_bin)" ]; then
    echo "redis.sh: redis-server is installed"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "redis-server is missing; run 'sudo $0 install' (Debian 12)"
  command -v apt-get >/dev/null || die "redis-server is missing, and there is no apt-get to install it"
  # Debian's maintainer script starts the redis-server service through
  # invoke-rc.d; a policy-rc.d that exits 101 forbids that. An existing one is
  # put back afterwards exactly as it was.
  local policy=/usr/sbin/policy-rc.d backup=""
  if [ -e "$policy" ]; then
    backup=$(mktemp /usr/sbin/policy-rc.d.reauth.XXXXXX)
    cp -p "$policy" "$backup"
  fi
  # shellcheck disable=SC2064 # expand now: the trap must know this backup
  trap "restore_policy '$policy' '$backup'" EXIT
  printf '#!/bin/sh\n# reauth redis.sh: no services during install\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 redis-server redis-tools
  restore_policy "$policy" "$backup"
  trap - EXIT
  [ -n "$(redis_bin)" ] || die "redis-server still missing after install"
  echo "redis.sh: installed redis-server"
}

cmd_start() {
  local dir=$1 bin cli port attempt i
  bin=$(redis_bin); cli=$(cli_bin)
  [ -n "$bin" ] && [ -n "$cli" ] || die "redis-server or redis-cli missing; run '$0 install'"
  mkdir -p "$dir"
  for attempt in 1 2 3; do
    port=$(free_port)
    rm -f "$dir/redis.pid"
    "$bin" --port "$port" --bind 127.0.0.1 --protected-mode yes \
      --save '' --appendonly no --dir "$dir" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" || true
    for i in $(seq 1 100); do
      if [ "$("$cli" -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && [ -s "$dir/redis.pid" ]; then
        printf 'REAUTH_REDIS_ADDR=127.0.0.1:%s\nREAUTH_REDIS_SERVER=%s\n' "$port" "$bin" >"$dir/env"
        echo "redis.sh: redis-server pid $(cat "$dir/redis.pid") on 127.0.0.1:$port"
        return 0
      fi
      sleep 0.05
    done
    cmd_stop "$dir" || true
    echo "redis.sh: start attempt $attempt on port $port failed; last log lines:" >&2
    tail -n 5 "$dir/redis.log" >&2 2>/dev/null || true
  done
  die "redis-server did not answer PING"
}

cmd_stop() {
  local dir=$1 pid i
  [ -s "$dir/redis.pid" ] || return 0
  pid=$(cat "$dir/redis.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || die "bad pid file $dir/redis.pid"
  kill "$pid" 2>/dev/null || { rm -f "$dir/redis.pid"; return 0; }
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/redis.pid"; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/redis.pid"
}

cmd_test() {
  cmd_install
  local dir status=0
  dir=$(mktemp -d "${TMPDIR:-/tmp}/reauth-redis.XXXXXX")
  # shellcheck disable=SC2064 # expand now
  trap "cmd_stop '$dir'; rm -rf '$dir'" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cmd_start "$dir"
  set -a
  # shellcheck source=/dev/null # written by cmd_start
  . "$dir/env"
  set +a
  (cd "$(dirname "$0")/../redisstore" && go test -race -count=1 -tags integration "$@" ./...) || status=$?
  [ "$status" -eq 0 ] || tail -n 30 "$dir/redis.log" 2>/dev/null || true
  return "$status"
}

case "${1:-}" in
  install) cmd_install ;;
  start) [ $# -eq 2 ] || die "usage: redis.sh start DIR"; cmd_start "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: redis.sh stop DIR"; cmd_stop "$2" ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: redis.sh install | start DIR | stop DIR | test [go test args]" >&2; exit 2 ;;
esac
