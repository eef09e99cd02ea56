#!/usr/bin/env bash
# Stop the daemons that scripts/slurm/setup_local_cluster.sh started, found through the
# PID files it wrote (never by process name). A PID is signalled only if /proc/PID/exe
# is the expected binary, so a stale PID file cannot hit an unrelated process; daemons
# the setup found already running have no PID file and are left alone. Packages and
# /etc/slurm are kept, so the next setup is quick.
#
# Usage (as root): scripts/slurm/teardown_local_cluster.sh [--keep-jobs] [--purge-state]
#   --keep-jobs    do not cancel the jobs still queued or running on the cluster
#   --purge-state  also delete slurmctld's saved state (job ids restart at 1)
set -uo pipefail

STATE_DIR=/run/early-exit-slurm
CANCEL=1
PURGE=0
for arg in "$@"; do
  case "$arg" in
    --keep-jobs) CANCEL=0 ;;
    --purge-state) PURGE=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "teardown_local_cluster: unknown option: $arg" >&2; exit 2 ;;
  esac
done
log() { echo "[teardown_local_cluster] $*" >&2; }

[[ $EUID -eq 0 ]] || { log "must run as root: sudo $0"; exit 1; }
[[ -d "$STATE_DIR" ]] || { log "nothing to do ($STATE_DIR does not exist)"; exit 0; }

# pid_of NAME: print the PID if $STATE_DIR/NAME.pid names a live /usr/sbin/NAME
pid_of() {
  local f="$STATE_DIR/$1.pid" pid exe
  [[ -s "$f" ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n "$pid" ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ "${exe% (deleted)}" == "$(readlink -f "/usr/sbin/$1")" ]] || return 1
  echo "$pid"
}

stop() {
  local pid
  if pid=$(pid_of "$1"); then
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 still alive after 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
    fi
  else
    log "$1: none of ours is running"
  fi
  rm -f "$STATE_DIR/$1.pid"
}

# Cancel the cluster's jobs through SLURM itself, so no job outlives slurmd
# (only when the slurmctld answering is ours).
if ((CANCEL)) && pid_of slurmctld >/dev/null; then
  jobs=$(timeout 20 squeue -h -t PD,R,CG,S -o %i 2>/dev/null | tr '\n' ' ')
  if [[ -n "${jobs// /}" ]]; then
    log "cancelling jobs $jobs"
    # shellcheck disable=SC2086
    timeout 20 scancel $jobs 2>/dev/null
    for _ in $(seq 40); do
      [[ -z "$(timeout 10 squeue -h -t PD,R,CG -o %i 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
fi

stop slurmd
stop slurmctld
stop munged

if ((PURGE)); then
  log "deleting slurmctld and slurmd state"
  rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/*
fi
rmdir "$STATE_DIR" 2>/dev/null || true
log "done"
