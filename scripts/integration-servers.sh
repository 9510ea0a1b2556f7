#!/usr/bin/env bash
# Real Apache httpd and nginx for reauth's integration tests (integration/).
#
#   integration-servers.sh install     apt-get the servers if a binary is missing (root, Debian 12)
#   integration-servers.sh start DIR   write configs into DIR, start both on 127.0.0.1, write DIR/env
#   integration-servers.sh stop DIR    stop the servers started from DIR (by their pid files)
#
# Everything lives in DIR: configs, password files, documents, logs, pid files.
# Nothing in /etc is read or changed, nothing listens beyond 127.0.0.1, and
# processes are only ever signalled by the pids in DIR, never by name.
set -euo pipefail

readonly APACHE_MODULES=/usr/lib/apache2/modules
readonly USER_NAME=alice
readonly USER_PASSWORD=alice-secret-1
readonly REALM_BASIC="reauth basic"
readonly REALM_DIGEST="reauth digest"
readonly REALM_STALE="reauth digest stale"
readonly REALM_GROUP="reauth group"
readonly REALM_NGINX="reauth nginx"

die() { echo "integration-servers: $*" >&2; exit 1; }

tag=integration-servers
# shellcheck source=scripts/servers-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/servers-lib.sh"

usage() {
  cat >&2 <<'EOF'
usage: integration-servers.sh install
       integration-servers.sh start DIR
       integration-servers.sh stop DIR
EOF
  exit 2
}

apache_bin() { command -v apache2 || command -v /usr/sbin/apache2 || true; }
nginx_bin() { command -v nginx || command -v /usr/sbin/nginx || true; }

# missing_binaries prints what `start` needs and cannot find.
missing_binaries() {
  [ -n "$(apache_bin)" ] || echo apache2
  [ -f "$APACHE_MODULES/mod_auth_digest.so" ] || echo mod_auth_digest
  [ -n "$(nginx_bin)" ] || echo nginx
  command -v htpasswd >/dev/null || echo htpasswd
  command -v htdigest >/dev/null || echo htdigest
}

cmd_install() {
  local missing
  missing=$(missing_binaries)
  if [ -z "$missing" ]; then
    echo "integration-servers: apache2, nginx, htpasswd and htdigest are installed"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "missing: $(echo $missing); run 'sudo $0 install' (Debian 12)"
  command -v apt-get >/dev/null || die "missing: $(echo $missing), and there is no apt-get to install them"

  # Debian's maintainer scripts start apache2 and nginx on port 80 through
  # invoke-rc.d. A policy-rc.d that exits 101 forbids that; an existing one is
  # put back afterwards exactly as it was.
  local policy=/usr/sbin/policy-rc.d backup=""
  if [ -e "$policy" ]; then
    backup=$(mktemp /usr/sbin/policy-rc.d.reauth.XXXXXX)
    cp -p "$policy" "$backup"
  fi
  # shellcheck disable=SC2064 # expand now: the trap must know this backup
  trap "restore_policy '$policy' '$backup'" EXIT
  printf '#!/bin/sh\n# reauth integration-servers.sh: no services during install\nexit 101\n' >"$policy"
  chmod 0755 "$policy"

  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 \
    apache2 apache2-utils nginx-light

  restore_policy "$policy" "$backup"
  trap - EXIT
  missing=$(missing_binaries)
  [ -z "$missing" ] || die "still missing after install: $(echo $missing)"
  echo "integration-servers: installed apache2, apache2-utils, nginx-light"
}

# http_get_ok PORT PATH TOKEN succeeds when 127.0.0.1:PORT serves TOKEN at
# PATH: a server of ours from this DIR, not whatever else may own the port.
http_get_ok() {
  local port=$1 path=$2 token=$3 reply
  reply=$(timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
    cat <&3' _ "$port" "$path" 2>/dev/null) || return 1
  [[ $reply == "HTTP/1."?" 200 "* && $reply == *"$token"* ]]
}

# write_documents DIR: the "ok" file every protected location serves, and the
# ready token that proves a port is ours.
write_documents() {
  local dir=$1 loc
  mkdir -p "$dir/htdocs"
  for loc in basic digest digest-stale group-forbidden group-rechallenge forbidden; do
    mkdir -p "$dir/htdocs/$loc"
    echo ok >"$dir/htdocs/$loc/index.html"
  done
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$dir/htdocs/ready.txt"
}

# write_passwords DIR: alice for Basic (htpasswd), for both Digest realms, and
# a group file in which she is not an admin. htdigest reads the password from
# the terminal only, so its lines are written directly:
# user:realm:MD5(user:realm:password), the HA1 of RFC 7616 §3.4.2.
write_passwords() {
  local dir=$1 realm ha1
  htpasswd -cbB "$dir/htpasswd" "$USER_NAME" "$USER_PASSWORD" 2>/dev/null
  : >"$dir/htdigest"
  for realm in "$REALM_DIGEST" "$REALM_STALE"; do
    ha1=$(printf '%s:%s:%s' "$USER_NAME" "$realm" "$USER_PASSWORD" | md5sum | cut -d' ' -f1)
    printf '%s:%s:%s\n' "$USER_NAME" "$realm" "$ha1" >>"$dir/htdigest"
  done
  printf 'admins: root\nusers: %s\n' "$USER_NAME" >"$dir/groups"
}

write_apache_conf() {
  local dir=$1 port=$2 user_lines=""
  # Apache will not run its workers as root; as www-data they read DIR's files.
  if [ "$(id -u)" -eq 0 ]; then
    user_lines=$'User www-data\nGroup www-data'
  fi
  mkdir -p "$dir/apache/run"
  cat >"$dir/apache/httpd.conf" <<CONF
# Written by scripts/integration-servers.sh; self-contained, reads nothing in /etc/apache2.
ServerRoot "$dir/apache"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/apache/httpd.pid"
DefaultRuntimeDir "$dir/apache/run"
ErrorLog "$dir/apache/error.log"
LogLevel warn auth_digest:info
$user_lines

LoadModule mpm_event_module $APACHE_MODULES/mod_mpm_event.so
LoadModule authn_core_module $APACHE_MODULES/mod_authn_core.so
LoadModule authn_file_module $APACHE_MODULES/mod_authn_file.so
LoadModule authz_core_module $APACHE_MODULES/mod_authz_core.so
LoadModule authz_user_module $APACHE_MODULES/mod_authz_user.so
LoadModule authz_groupfile_module $APACHE_MODULES/mod_authz_groupfile.so
LoadModule auth_basic_module $APACHE_MODULES/mod_auth_basic.so
LoadModule auth_digest_module $APACHE_MODULES/mod_auth_digest.so
LoadModule dir_module $APACHE_MODULES/mod_dir.so
LoadModule mime_module $APACHE_MODULES/mod_mime.so

StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 8
MaxSpareThreads 32

CustomLog "$dir/apache/access.log" "%h \"%r\" %>s user=%u"
TypesConfig /dev/null
AddType text/html .html
AddType text/plain .txt
DirectoryIndex index.html

# mod_auth_digest keeps its table of clients (opaque, last nonce count) in
# shared memory; the default 1000 bytes hold about 12 clients.
AuthDigestShmemSize 64K

DocumentRoot "$dir/htdocs"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "$dir/htdocs">
    Require all granted
</Directory>

<Location /basic/>
    AuthType Basic
    AuthName "$REALM_BASIC"
    AuthBasicProvider file
    AuthUserFile "$dir/htpasswd"
    Require valid-user
</Location>

# AuthDigestNcCheck makes Apache send an opaque, which the client must echo,
# and refuse a nonce count that is not above the last one it saw for that
# nonce (RFC 7616 §3.4: nc counts the requests made with one nonce).
<Location /digest/>
    AuthType Digest
    AuthName "$REALM_DIGEST"
    AuthDigestProvider file
    AuthUserFile "$dir/htdigest"
    AuthDigestAlgorithm MD5
    AuthDigestQop auth
    AuthDigestDomain /digest/
    AuthDigestNcCheck On
    Require valid-user
</Location>

# Nonces expire after 2 s: a request with an older one gets a 401 with
# stale=true (RFC 7616 §3.3), which a client answers with the new nonce.
<Location /digest-stale/>
    AuthType Digest
    AuthName "$REALM_STALE"
    AuthDigestProvider file
    AuthUserFile "$dir/htdigest"
    AuthDigestAlgorithm MD5
    AuthDigestQop auth
    AuthDigestDomain /digest-stale/
    AuthDigestNonceLifetime 2
    Require valid-user
</Location>

# alice authenticates but is not in group admins: 403 (RFC 9110 §15.5.4).
<Location /group-forbidden/>
    AuthType Basic
    AuthName "$REALM_GROUP"
    AuthBasicProvider file
    AuthUserFile "$dir/htpasswd"
    AuthGroupFile "$dir/groups"
    Require group admins
    AuthzSendForbiddenOnFailure On
</Location>

# The same as Apache does it by default: a 401 that challenges again.
<Location /group-rechallenge/>
    AuthType Basic
    AuthName "$REALM_GROUP"
    AuthBasicProvider file
    AuthUserFile "$dir/htpasswd"
    AuthGroupFile "$dir/groups"
    Require group admins
</Location>
CONF
}

write_nginx_conf() {
  local dir=$1 port=$2 user_line=""
  if [ "$(id -u)" -eq 0 ]; then
    user_line="user www-data www-data;"
  fi
  mkdir -p "$dir/nginx/tmp"
  cat >"$dir/nginx/nginx.conf" <<CONF
# Written by scripts/integration-servers.sh; self-contained, reads nothing in /etc/nginx.
$user_line
daemon on;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 64; }
http {
    access_log $dir/nginx/access.log;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    default_type text/html;
    server {
        listen 127.0.0.1:$port;
        server_name 127.0.0.1;
        root $dir/htdocs;
        location = /ready.txt { default_type text/plain; }
        location /basic/ {
            auth_basic "$REALM_NGINX";
            auth_basic_user_file $dir/htpasswd;
        }
        location /forbidden/ { return 403; }
        location / { return 404; }
    }
}
CONF
}

cmd_stop() {
  local dir
  if ! dir=$(cd "$1" 2>/dev/null && pwd -P); then
    echo "integration-servers: $1: no such directory; nothing to stop"
    return 0
  fi
  stop_pidfile "$dir" "$dir/apache/httpd.pid" apache2
  stop_pidfile "$dir" "$dir/nginx/nginx.pid" nginx
  rm -f "$dir/env"
}

# start_server NAME PORT TOKEN CMD...: run CMD, which daemonizes, then wait
# up to 10 s for the server to serve the ready token on PORT.
start_server() {
  local name=$1 port=$2 token=$3 i
  shift 3
  "$@" || return 1
  for i in $(seq 1 100); do
    http_get_ok "$port" /ready.txt "$token" && return 0
    sleep 0.1
  done
  echo "integration-servers: $name did not answer on 127.0.0.1:$port within 10 s" >&2
  return 1
}

cmd_start() {
  local dir apache nginx token port_apache="" port_nginx="" attempt
  [ -d "$1" ] || die "$1: no such directory"
  dir=$(cd "$1" && pwd -P)
  [ -z "$(missing_binaries)" ] || die "missing: $(echo $(missing_binaries)); run '$0 install' first"
  apache=$(apache_bin)
  nginx=$(nginx_bin)

  # Safe to repeat: whatever an earlier start from DIR left running goes first.
  cmd_stop "$dir" >/dev/null
  write_documents "$dir"
  write_passwords "$dir"
  token=$(cat "$dir/htdocs/ready.txt")
  if [ "$(id -u)" -eq 0 ]; then
    # The workers run as www-data: they need to pass through DIR (not list
    # it) and read the documents and the (test-only) password files.
    chmod 0711 "$dir"
    chmod -R go+rX "$dir/htdocs" "$dir/htpasswd" "$dir/htdigest" "$dir/groups"
  fi

  # A port found free may be taken before the server binds it: try new ones.
  for attempt in 1 2 3 4 5; do
    port_apache=$(free_port)
    write_apache_conf "$dir" "$port_apache"
    if start_server apache2 "$port_apache" "$token" env TMPDIR="$dir/apache/run" "$apache" -f "$dir/apache/httpd.conf" -k start; then
      break
    fi
    stop_pidfile "$dir" "$dir/apache/httpd.pid" apache2 >/dev/null
    if [ "$attempt" -eq 5 ]; then
      tail -n 20 "$dir/apache/error.log" >&2 2>/dev/null || true
      die "apache2 did not start; see $dir/apache/error.log"
    fi
  done
  for attempt in 1 2 3 4 5; do
    port_nginx=$(free_port)
    write_nginx_conf "$dir" "$port_nginx"
    if start_server nginx "$port_nginx" "$token" \
      "$nginx" -q -e "$dir/nginx/error.log" -p "$dir/nginx" -c "$dir/nginx/nginx.conf"; then
      break
    fi
    stop_pidfile "$dir" "$dir/nginx/nginx.pid" nginx >/dev/null
    if [ "$attempt" -eq 5 ]; then
      tail -n 20 "$dir/nginx/error.log" >&2 2>/dev/null || true
      cmd_stop "$dir" >/dev/null
      die "nginx did not start; see $dir/nginx/error.log"
    fi
  done

  printf 'REAUTH_APACHE_URL=http://127.0.0.1:%s\nREAUTH_NGINX_URL=http://127.0.0.1:%s\n' \
    "$port_apache" "$port_nginx" >"$dir/env"
  echo "integration-servers: apache2 on 127.0.0.1:$port_apache, nginx on 127.0.0.1:$port_nginx; see $dir/env"
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
