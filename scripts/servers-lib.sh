# shellcheck shell=bash
# What the server scripts (integration-servers.sh, kerberos.sh, redis.sh,
# oidc-provider.sh) share: free ports on 127.0.0.1, the policy-rc.d guard
# around apt-get, and stopping a process by the pid it wrote, never by name.
# Sourced; the caller sets `tag` (its name in messages) and defines die.

# free_port prints a port on 127.0.0.1 that nothing listens on.
free_port() {
  local port tries
  for tries in $(seq 1 50); do
    port=$((20000 + RANDOM % 12000)) # below Linux's ephemeral range (32768-60999)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port on 127.0.0.1 after $tries tries"
}

# restore_policy POLICY BACKUP puts back the policy-rc.d that was there
# before apt-get (BACKUP), or removes the one put there for it.
restore_policy() {
  local policy=$1 backup=$2
  if [ -n "$backup" ]; then
    mv -f "$backup" "$policy"
  else
    rm -f "$policy"
  fi
}

# owned_pid DIR FILE prints the pid in FILE if that process is alive and has
# DIR on its command line or in its environment (KRB5_KDC_PROFILE, say), so
# a recycled pid is left alone.
owned_pid() {
  local dir=$1 file=$2 pid
  [ -f "$file" ] || return 1
  pid=$(tr -d ' \n' <"$file")
  [[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  { tr '\0' ' ' <"/proc/$pid/cmdline"; tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null; } |
    grep -qF -- "$dir/" || return 1
  echo "$pid"
}

# running PID: the process exists and has not exited. A daemon's parent is
# init, which may take seconds to reap it, so a zombie counts as exited.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# stop_pidfile DIR FILE NAME: TERM, wait up to 10 s for the exit, then KILL.
stop_pidfile() {
  local dir=$1 file=$2 name=$3 pid i
  pid=$(owned_pid "$dir" "$file") || { rm -f "$file"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    if ! running "$pid"; then
      rm -f "$file"
      echo "$tag: stopped $name (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  echo "$tag: $name (pid $pid) still running 10 s after TERM; sending KILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}
