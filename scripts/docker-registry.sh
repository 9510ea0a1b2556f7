#!/usr/bin/env bash
# Debian's docker-registry (distribution 2.8) with htpasswd auth, for the
# keychain integration tests (keychain_*integration_test.go).
#
#   docker-registry.sh install     apt-get what the keychain integration tests run against
#                                  when missing: docker-registry, apache2-utils (htpasswd),
#                                  golang-docker-credential-helpers, pass, gnupg, curl, git
#                                  (root, Debian 12)
#   docker-registry.sh start DIR   write config, htpasswd and a Docker config.json into DIR,
#                                  start the registry on 127.0.0.1, write DIR/env
#   docker-registry.sh stop DIR    stop the registry started from DIR (by its pid file)
#
# Everything lives in DIR. Nothing listens beyond 127.0.0.1; the registry is
# signalled only by the pid in DIR, never by name. REAUTH_REGISTRY_PORT picks
# the port (default 5117).
set -euo pipefail

readonly USER_NAME=bob
readonly USER_PASSWORD=bob-registry-secret-1

die() { echo "docker-registry: $*" >&2; exit 1; }

usage() {
  echo "usage: docker-registry.sh install | start DIR | stop DIR" >&2
  exit 2
}

install() {
  local need=()
  command -v docker-registry >/dev/null || need+=(docker-registry)
  command -v htpasswd >/dev/null || need+=(apache2-utils)
  command -v docker-credential-pass >/dev/null || need+=(golang-docker-credential-helpers)
  command -v pass >/dev/null || need+=(pass)
  command -v gpg >/dev/null || need+=(gnupg)
  command -v curl >/dev/null || need+=(curl)
  command -v git >/dev/null || need+=(git)
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${need[*]}; run as root or apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

start() {
  local dir=$1 port=${REAUTH_REGISTRY_PORT:-5117}
  mkdir -p "$dir/registry/data" "$dir/registry/docker"
  htpasswd -Bbn "$USER_NAME" "$USER_PASSWORD" >"$dir/registry/htpasswd"
  cat >"$dir/registry/config.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry/data
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: reauth-registry
    path: $dir/registry/htpasswd
CONF
  local auth
  auth=$(printf '%s:%s' "$USER_NAME" "$USER_PASSWORD" | base64 -w0)
  printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$port" "$auth" >"$dir/registry/docker/config.json"
  docker-registry serve "$dir/registry/config.yml" >"$dir/registry/registry.log" 2>&1 &
  echo $! >"$dir/registry/pid"
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      {
        echo "REAUTH_REGISTRY_URL=http://127.0.0.1:$port"
        echo "REAUTH_REGISTRY_DOCKER_CONFIG=$dir/registry/docker"
      } >>"$dir/env"
      return 0
    fi
    kill -0 "$(cat "$dir/registry/pid")" 2>/dev/null || { cat "$dir/registry/registry.log" >&2; die "the registry exited"; }
    sleep 0.2
  done
  die "the registry did not listen on 127.0.0.1:$port"
}

stop() {
  local pidfile=$1/registry/pid
  [ -f "$pidfile" ] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  install) install ;;
  start) [ $# -eq 2 ] || usage; start "$2" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
