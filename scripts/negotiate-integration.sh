#!/usr/bin/env bash
# The negotiate module's integration tests against a real MIT KDC, Apache
# httpd with mod_auth_gssapi and squid with negotiate_kerberos_auth:
# installs them if needed (Debian, as root), starts them on 127.0.0.1 in a
# temporary directory (scripts/kerberos.sh), runs ./negotiate/... with the
# race detector and the integration tag, and stops the servers whatever
# happens. Extra arguments go to `go test` (e.g. -run Proxy -v).
set -euo pipefail
cd "$(dirname "$0")/.."

servers=scripts/kerberos.sh
"$servers" install

dir=$(mktemp -d "${TMPDIR:-/tmp}/reauth-kerberos.XXXXXX")
cleanup() {
  "$servers" stop "$dir" || true
  if [ -n "${REAUTH_KEEP_LOGS:-}" ]; then
    echo "negotiate-integration: server logs kept in $dir"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
# A signal ends the script through the EXIT trap above.
trap 'exit 130' INT
trap 'exit 143' TERM

"$servers" start "$dir"
set -a
# shellcheck source=/dev/null # written by kerberos.sh start
. "$dir/env"
set +a

status=0
(cd negotiate && go test -race -count=1 -tags integration "$@" ./...) || status=$?
if [ "$status" -ne 0 ]; then
  for log in "$dir/krb5/kdc.log" "$dir/apache/error.log" "$dir/squid/cache.log"; do
    echo "== $log (last 30 lines)"
    tail -n 30 "$log" 2>/dev/null || true
  done
fi
exit "$status"
