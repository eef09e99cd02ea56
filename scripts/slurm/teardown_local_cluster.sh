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
# shellcheck source=scripts/slurm/daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemons.sh" # STATE_DIR, pid_of, stop_ours

[[ $EUID -eq 0 ]] || { log "must run as root: sudo $0"; exit 1; }
[[ -d "$STATE_DIR" ]] || { log "nothing to do ($STATE_DIR does not exist)"; exit 0; }

# Cancel the cluster's jobs through SLURM itself, so no job outlives slurmd
# (only when the slurmctld answering is ours).
if ((CANCEL)) && ours slurmctld; then
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

stop_ours slurmd
stop_ours slurmctld
stop_ours munged

if ((PURGE)); then
  log "deleting slurmctld and slurmd state"
  rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/*
fi
rmdir "$STATE_DIR" 2>/dev/null || true
log "done"
