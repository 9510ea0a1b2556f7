#!/usr/bin/env bash
# A throwaway Kerberos world for the negotiate submodule's integration tests:
# an MIT KDC with realm REAUTH.TEST, Apache httpd with mod_auth_gssapi, and
# squid with negotiate_kerberos_auth, all on 127.0.0.1.
#
#   kerberos.sh install     apt-get the packages if a binary is missing (root, Debian 12)
#   kerberos.sh start DIR   create the realm, principals and keytabs in DIR, start the
#                           KDC, Apache and squid on free 127.0.0.1 ports, write DIR/env
#   kerberos.sh stop DIR    stop what a start from DIR started (by its pid files)
#
# Everything lives in DIR: krb5.conf (KRB5_CONFIG), kdc.conf (KRB5_KDC_PROFILE),
# the KDC database, keytabs, server configs, logs and pid files. The machine's
# /etc/krb5.conf, /etc/apache2 and /etc/squid are neither read nor changed,
# /etc/hosts is not needed ("localhost" is in every /etc/hosts), nothing
# listens beyond 127.0.0.1, and processes are only ever signalled by the pids
# in DIR, never by name.
#
# Names (the tests read them from DIR/env):
#   alice@REAUTH.TEST         password $ALICE_PASSWORD and DIR/krb5/alice.keytab
#   stale@REAUTH.TEST         DIR/krb5/stale.keytab holds a key the KDC has since replaced
#   ghost@REAUTH.TEST         DIR/krb5/ghost.keytab holds the key of a principal since deleted
#   HTTP/localhost            Apache: http://localhost:PORT/negotiate/ (alice gets 200),
#                             /negotiate-other/ (only other@REAUTH.TEST: alice gets 403)
#   HTTP/127.0.0.1            squid: http://127.0.0.1:PORT, Negotiate for http and CONNECT
set -euo pipefail

readonly REALM=REAUTH.TEST
readonly ALICE_PASSWORD=alice-krb-secret-1
readonly APACHE_MODULES=/usr/lib/apache2/modules
readonly SQUID_HELPER=/usr/lib/squid/negotiate_kerberos_auth
readonly ENCTYPES="aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96"

die() { echo "kerberos: $*" >&2; exit 1; }

tag=kerberos
# shellcheck source=scripts/servers-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/servers-lib.sh"

usage() {
  cat >&2 <<'EOF'
usage: kerberos.sh install
       kerberos.sh start DIR
       kerberos.sh stop DIR
EOF
  exit 2
}

sbin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true; }

# missing_binaries prints what `start` needs and cannot find.
missing_binaries() {
  [ -n "$(sbin krb5kdc)" ] || echo krb5kdc
  [ -n "$(sbin kdb5_util)" ] || echo kdb5_util
  [ -n "$(sbin kadmin.local)" ] || echo kadmin.local
  [ -n "$(sbin apache2)" ] || echo apache2
  [ -f "$APACHE_MODULES/mod_auth_gssapi.so" ] || echo mod_auth_gssapi
  [ -n "$(sbin squid)" ] || echo squid
  [ -x "$SQUID_HELPER" ] || echo negotiate_kerberos_auth
  command -v kinit >/dev/null || echo kinit
}

cmd_install() {
  local missing
  missing=$(missing_binaries)
  if [ -z "$missing" ]; then
    echo "kerberos: krb5kdc, kadmin.local, apache2 with mod_auth_gssapi and squid are installed"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "missing: $(echo $missing); run 'sudo $0 install' (Debian 12)"
  command -v apt-get >/dev/null || die "missing: $(echo $missing), and there is no apt-get to install them"

  # Debian's maintainer scripts would start krb5-kdc, apache2 and squid as
  # services; a policy-rc.d that exits 101 forbids that, and an existing one
  # is put back afterwards exactly as it was.
  local policy=/usr/sbin/policy-rc.d backup=""
  if [ -e "$policy" ]; then
    backup=$(mktemp /usr/sbin/policy-rc.d.reauth.XXXXXX)
    cp -p "$policy" "$backup"
  fi
  # shellcheck disable=SC2064 # expand now: the trap must know this backup
  trap "restore_policy '$policy' '$backup'" EXIT
  printf '#!/bin/sh\n# reauth kerberos.sh: no services during install\nexit 101\n' >"$policy"
  chmod 0755 "$policy"

  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 \
    krb5-kdc krb5-admin-server krb5-user apache2 libapache2-mod-auth-gssapi squid

  restore_policy "$policy" "$backup"
  trap - EXIT
  missing=$(missing_binaries)
  [ -z "$missing" ] || die "still missing after install: $(echo $missing)"
  echo "kerberos: installed krb5-kdc, krb5-admin-server, krb5-user, apache2, libapache2-mod-auth-gssapi, squid"
}

cmd_stop() {
  local dir
  if ! dir=$(cd "$1" 2>/dev/null && pwd -P); then
    echo "kerberos: $1: no such directory; nothing to stop"
    return 0
  fi
  stop_pidfile "$dir" "$dir/squid/squid.pid" squid
  stop_pidfile "$dir" "$dir/apache/httpd.pid" apache2
  stop_pidfile "$dir" "$dir/krb5/kdc.pid" krb5kdc
  rm -f "$dir/env"
}

write_krb5_conf() {
  local dir=$1 kdc_port=$2
  cat >"$dir/krb5/krb5.conf" <<CONF
# Written by scripts/kerberos.sh for a throwaway realm; not /etc/krb5.conf.
[libdefaults]
    default_realm = $REALM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    default_ccache_name = FILE:$dir/krb5/ccache
    default_tkt_enctypes = $ENCTYPES
    default_tgs_enctypes = $ENCTYPES
    permitted_enctypes = $ENCTYPES

[realms]
    $REALM = {
        kdc = 127.0.0.1:$kdc_port
    }

[domain_realm]
    localhost = $REALM
    127.0.0.1 = $REALM
CONF
  cat >"$dir/krb5/kdc.conf" <<CONF
# Written by scripts/kerberos.sh (KRB5_KDC_PROFILE); not /etc/krb5kdc/kdc.conf.
[kdcdefaults]
    kdc_listen = 127.0.0.1:$kdc_port
    kdc_tcp_listen = 127.0.0.1:$kdc_port

[realms]
    $REALM = {
        database_name = $dir/krb5/principal
        key_stash_file = $dir/krb5/stash
        acl_file = $dir/krb5/kadm5.acl
        kdc_listen = 127.0.0.1:$kdc_port
        kdc_tcp_listen = 127.0.0.1:$kdc_port
        max_life = 10h
        max_renewable_life = 1d
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }

[logging]
    kdc = FILE:$dir/krb5/kdc.log
    admin_server = FILE:$dir/krb5/kadmin.log
    default = FILE:$dir/krb5/krb5lib.log
CONF
  : >"$dir/krb5/kadm5.acl"
}

# create_realm DIR: the database, the principals and the keytabs.
create_realm() {
  local dir=$1 k=$dir/krb5 master
  rm -f "$k"/principal* "$k/stash" "$k"/*.keytab
  master=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  kdb5_util -r "$REALM" -P "$master" create -s >"$k/kdb5_util.log" 2>&1 ||
    { cat "$k/kdb5_util.log" >&2; die "kdb5_util create failed"; }
  kadmin.local -r "$REALM" >"$k/kadmin.out" 2>&1 <<KADMIN ||
addprinc +requires_preauth -pw $ALICE_PASSWORD alice@$REALM
ktadd -k $k/alice.keytab -norandkey alice@$REALM
addprinc -randkey other@$REALM
addprinc +requires_preauth -randkey stale@$REALM
ktadd -k $k/stale.keytab stale@$REALM
cpw -randkey stale@$REALM
addprinc +requires_preauth -randkey ghost@$REALM
ktadd -k $k/ghost.keytab ghost@$REALM
delprinc -force ghost@$REALM
addprinc -randkey HTTP/localhost@$REALM
ktadd -k $k/http.keytab HTTP/localhost@$REALM
addprinc -randkey HTTP/127.0.0.1@$REALM
ktadd -k $k/proxy.keytab HTTP/127.0.0.1@$REALM
KADMIN
    { cat "$k/kadmin.out" >&2; die "kadmin.local failed"; }
  grep -qi 'error\|not found\|cannot\|fail' "$k/kadmin.out" &&
    { cat "$k/kadmin.out" >&2; die "kadmin.local reported an error"; }
  return 0
}

# kdc_ready PORT: the KDC answers on TCP (a connect is enough: it binds only
# after it has read its database).
kdc_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_documents() {
  local dir=$1 loc
  mkdir -p "$dir/htdocs"
  for loc in negotiate negotiate-other public; do
    mkdir -p "$dir/htdocs/$loc"
    echo "ok $loc" >"$dir/htdocs/$loc/index.html"
  done
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$dir/htdocs/ready.txt"
}

write_apache_conf() {
  local dir=$1 port=$2 user_lines=""
  if [ "$(id -u)" -eq 0 ]; then
    user_lines=$'User www-data\nGroup www-data'
  fi
  mkdir -p "$dir/apache/run"
  cat >"$dir/apache/httpd.conf" <<CONF
# Written by scripts/kerberos.sh; self-contained, reads nothing in /etc/apache2.
ServerRoot "$dir/apache"
ServerName localhost
Listen 127.0.0.1:$port
PidFile "$dir/apache/httpd.pid"
DefaultRuntimeDir "$dir/apache/run"
ErrorLog "$dir/apache/error.log"
LogLevel warn auth_gssapi:info
$user_lines

LoadModule mpm_event_module $APACHE_MODULES/mod_mpm_event.so
LoadModule authn_core_module $APACHE_MODULES/mod_authn_core.so
LoadModule authz_core_module $APACHE_MODULES/mod_authz_core.so
LoadModule authz_user_module $APACHE_MODULES/mod_authz_user.so
LoadModule auth_gssapi_module $APACHE_MODULES/mod_auth_gssapi.so
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

DocumentRoot "$dir/htdocs"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "$dir/htdocs">
    Require all granted
</Directory>

# Negotiate with krb5 only (no NTLM, no raw krb5 without SPNEGO). The keytab
# holds HTTP/localhost; a client that asks for mutual authentication gets the
# AP-REP in the 200's WWW-Authenticate. No session cookie: every request
# authenticates, as the tests count them.
<Location /negotiate/>
    AuthType GSSAPI
    AuthName "reauth negotiate"
    GssapiCredStore keytab:$dir/krb5/http.keytab
    GssapiAllowedMech krb5
    GssapiBasicAuth Off
    GssapiSSLonly Off
    GssapiLocalName Off
    Require valid-user
</Location>

# alice authenticates but may not read this: 403 (RFC 9110 §15.5.4).
<Location /negotiate-other/>
    AuthType GSSAPI
    AuthName "reauth negotiate"
    GssapiCredStore keytab:$dir/krb5/http.keytab
    GssapiAllowedMech krb5
    GssapiBasicAuth Off
    GssapiSSLonly Off
    Require user other@$REALM
    AuthzSendForbiddenOnFailure On
</Location>
CONF
}

write_squid_conf() {
  local dir=$1 port=$2 user_line=""
  if [ "$(id -u)" -eq 0 ]; then
    user_line="cache_effective_user proxy"
  fi
  mkdir -p "$dir/squid/rcache"
  cat >"$dir/squid/squid.conf" <<CONF
# Written by scripts/kerberos.sh; self-contained, reads nothing in /etc/squid.
http_port 127.0.0.1:$port
pid_filename $dir/squid/squid.pid
$user_line
cache deny all
cache_mem 8 MB
access_log stdio:$dir/squid/access.log
cache_log $dir/squid/cache.log
cache_store_log none
logfile_rotate 0
coredump_dir $dir/squid
visible_hostname 127.0.0.1
dns_v4_first on
shutdown_lifetime 1 seconds
forwarded_for delete
via off

auth_param negotiate program $SQUID_HELPER -s HTTP/127.0.0.1@$REALM -k $dir/krb5/proxy.keytab -c $dir/squid/rcache
auth_param negotiate children 4 startup=1 idle=1
auth_param negotiate keep_alive on

acl authenticated proxy_auth REQUIRED
acl Safe_ports port 1-65535
acl CONNECT method CONNECT
http_access deny !Safe_ports
http_access allow authenticated
http_access deny all
CONF
}

cmd_start() {
  local dir k token port_kdc="" port_apache="" port_squid="" attempt i
  [ -d "$1" ] || die "$1: no such directory"
  dir=$(cd "$1" && pwd -P)
  k=$dir/krb5
  [ -z "$(missing_binaries)" ] || die "missing: $(echo $(missing_binaries)); run '$0 install' first"

  # Safe to repeat: whatever an earlier start from DIR left running goes first.
  cmd_stop "$dir" >/dev/null
  mkdir -p "$k" "$dir/apache" "$dir/squid"
  export KRB5_CONFIG=$k/krb5.conf KRB5_KDC_PROFILE=$k/kdc.conf
  export KRB5CCNAME=FILE:$k/ccache

  for attempt in 1 2 3 4 5; do
    port_kdc=$(free_port)
    write_krb5_conf "$dir" "$port_kdc"
    [ "$attempt" -gt 1 ] || create_realm "$dir"
    "$(sbin krb5kdc)" -r "$REALM" -P "$k/kdc.pid" || true
    for i in $(seq 1 100); do
      kdc_ready "$port_kdc" && break
      sleep 0.1
    done
    kdc_ready "$port_kdc" && break
    stop_pidfile "$dir" "$k/kdc.pid" krb5kdc >/dev/null
    if [ "$attempt" -eq 5 ]; then
      tail -n 20 "$k/kdc.log" >&2 2>/dev/null || true
      die "krb5kdc did not start; see $k/kdc.log"
    fi
  done

  write_documents "$dir"
  token=$(cat "$dir/htdocs/ready.txt")
  if [ "$(id -u)" -eq 0 ]; then
    # Apache's workers run as www-data and squid's helpers as proxy: they pass
    # through DIR and read the documents, krb5.conf and their keytabs. These
    # are keys of a throwaway realm made for this run; real keytabs are 0600.
    chmod 0711 "$dir" "$k"
    chmod -R go+rX "$dir/htdocs"
    chmod 0644 "$k/krb5.conf" "$k/http.keytab" "$k/proxy.keytab"
  fi
  # The acceptors' replay caches: Apache's in its own directory
  # (KRB5RCACHEDIR), squid's helper's in squid's (-c).
  mkdir -p "$dir/apache/rcache"
  [ "$(id -u)" -ne 0 ] || chown www-data:www-data "$dir/apache/rcache"

  for attempt in 1 2 3 4 5; do
    port_apache=$(free_port)
    write_apache_conf "$dir" "$port_apache"
    if env TMPDIR="$dir/apache/run" KRB5RCACHEDIR="$dir/apache/rcache" "$(sbin apache2)" -f "$dir/apache/httpd.conf" -k start; then
      for i in $(seq 1 100); do
        curl -fsS --max-time 2 "http://127.0.0.1:$port_apache/ready.txt" 2>/dev/null | grep -qF "$token" && break 2
        sleep 0.1
      done
    fi
    stop_pidfile "$dir" "$dir/apache/httpd.pid" apache2 >/dev/null
    if [ "$attempt" -eq 5 ]; then
      tail -n 20 "$dir/apache/error.log" >&2 2>/dev/null || true
      cmd_stop "$dir" >/dev/null
      die "apache2 did not start; see $dir/apache/error.log"
    fi
  done

  for attempt in 1 2 3 4 5; do
    port_squid=$(free_port)
    write_squid_conf "$dir" "$port_squid"
    [ "$(id -u)" -ne 0 ] || chown -R proxy:proxy "$dir/squid"
    if "$(sbin squid)" -f "$dir/squid/squid.conf" 2>>"$dir/squid/start.log"; then
      # squid without credentials answers 407: it is up and it is ours (the
      # Proxy-Authenticate names our realm's scheme).
      for i in $(seq 1 100); do
        if [ -s "$dir/squid/squid.pid" ] &&
          curl -sS --max-time 2 -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$port_squid" \
            "http://localhost:$port_apache/public/" 2>/dev/null | grep -qx 407; then
          break 2
        fi
        sleep 0.1
      done
    fi
    stop_pidfile "$dir" "$dir/squid/squid.pid" squid >/dev/null
    if [ "$attempt" -eq 5 ]; then
      tail -n 20 "$dir/squid/cache.log" "$dir/squid/start.log" >&2 2>/dev/null || true
      cmd_stop "$dir" >/dev/null
      die "squid did not start; see $dir/squid/cache.log"
    fi
  done

  cat >"$dir/env" <<ENV
KRB5_CONFIG=$k/krb5.conf
REAUTH_KRB5_REALM=$REALM
REAUTH_KRB5_USER=alice
REAUTH_KRB5_PASSWORD=$ALICE_PASSWORD
REAUTH_KRB5_KEYTAB=$k/alice.keytab
REAUTH_KRB5_STALE_KEYTAB=$k/stale.keytab
REAUTH_KRB5_GHOST_KEYTAB=$k/ghost.keytab
REAUTH_NEGOTIATE_URL=http://localhost:$port_apache
REAUTH_NEGOTIATE_PROXY=http://127.0.0.1:$port_squid
ENV
  echo "kerberos: krb5kdc on 127.0.0.1:$port_kdc, apache2 on 127.0.0.1:$port_apache, squid on 127.0.0.1:$port_squid; see $dir/env"
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
