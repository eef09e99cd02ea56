# shellcheck shell=bash
# Sourced by setup_local_cluster.sh and teardown_local_cluster.sh (not run on its own).
# The daemons those scripts start are found through the PID files in $STATE_DIR only,
# never by process name, and a PID is trusted only while /proc/PID/exe is the expected
# binary, so a stale PID file can never get an unrelated process signalled.
# The caller defines log().

STATE_DIR=/run/early-exit-slurm # PID files of the daemons setup_local_cluster.sh started

# pid_of NAME: print the PID if $STATE_DIR/NAME.pid names a live /usr/sbin/NAME
pid_of() {
  local f="$STATE_DIR/$1.pid" pid exe
  [[ -s "$f" ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n "$pid" ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  # Debian links /usr/sbin/slurmctld -> slurmctld-wlm: compare the real binaries
  [[ "${exe% (deleted)}" == "$(readlink -f "/usr/sbin/$1")" ]] || return 1
  echo "$pid"
}

# ours NAME: true if a daemon NAME that setup_local_cluster.sh started is running
ours() { pid_of "$1" >/dev/null; }

# stop_ours NAME [WHY]: SIGTERM our daemon NAME, SIGKILL after 30 s; drop its PID file
stop_ours() {
  local pid
  if pid=$(pid_of "$1"); then
    log "stopping $1 (pid $pid)${2:+ $2}"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 still alive after 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  else
    log "$1: none of ours is running"
  fi
  rm -f "$STATE_DIR/$1.pid"
}
