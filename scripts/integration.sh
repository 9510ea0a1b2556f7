#!/usr/bin/env bash
# reauth's integration tests against real Apache httpd, nginx, panva's
# oidc-provider (npm ci into integration/oidc) and Debian's docker-registry:
# installs the servers if needed (Debian, as root), starts them on 127.0.0.1 in a
# temporary directory, runs ./integration/... with the race detector, and
# stops the servers whatever happens. Extra arguments go to `go test`
# (e.g. -run Digest -v).
set -euo pipefail
cd "$(dirname "$0")/.."

servers=scripts/integration-servers.sh
"$servers" install
scripts/oidc-provider.sh install
scripts/docker-registry.sh install

dir=$(mktemp -d "${TMPDIR:-/tmp}/reauth-integration.XXXXXX")
cleanup() {
  "$servers" stop "$dir" || true
  scripts/oidc-provider.sh stop "$dir" || true
  scripts/docker-registry.sh stop "$dir" || true
  if [ -n "${REAUTH_KEEP_LOGS:-}" ]; then
    echo "integration: server logs kept in $dir"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
# A signal ends the script through the EXIT trap above.
trap 'exit 130' INT
trap 'exit 143' TERM

"$servers" start "$dir"
scripts/oidc-provider.sh start "$dir"
scripts/docker-registry.sh start "$dir"
set -a
# shellcheck source=/dev/null # written by integration-servers.sh start
. "$dir/env"
# shellcheck source=/dev/null # written by oidc-provider.sh start
. "$dir/oidc.env"
set +a

status=0
go test -race -count=1 -tags integration "$@" ./integration/... || status=$?
# The keychains against curl, git, the go command, docker-credential-pass
# and docker-registry (root package: they test unexported parts too).
go test -race -count=1 -tags integration -run 'SameAsCurl|GOAUTHGitStore|SameAsGoCommand|DockerCredentialPass|DockerRegistryPull' . || status=$?
if [ "$status" -ne 0 ]; then
  for log in "$dir/apache/error.log" "$dir/nginx/error.log" "$dir/oidc/server.log" "$dir/registry/registry.log"; do
    echo "== $log (last 30 lines)"
    tail -n 30 "$log" 2>/dev/null || true
  done
fi
exit "$status"
