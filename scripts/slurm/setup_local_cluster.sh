#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine, for tests/e2e/test_slurm.py and for
# trying profiles/slurm without a real cluster. Debian/Ubuntu, as root.
#
# Installs munge, slurmctld, slurmd and slurm-client with apt-get, writes
# /etc/slurm/slurm.conf for this machine (no systemd, no cgroups, no accounting
# database) and starts munged, slurmctld and slurmd, each with a PID file in
# $STATE_DIR. Safe to run again: daemons it started that are still alive are kept; if
# the generated config changed, only those daemons are restarted.
# scripts/slurm/teardown_local_cluster.sh stops them again.
#
# Usage (as root):
#   scripts/slurm/setup_local_cluster.sh [--partition NAME] [--fake-gpus N]
#                                        [--no-smoke-test] [--force]
#
#   --partition NAME  name of the cluster's only (and default) partition;
#                     default "batch", the one profiles/slurm asks for.
#   --fake-gpus N     advertise N GPUs (gres "gpu", type "fake", each backed by a
#                     character device equal to /dev/null), so that jobs asking for
#                     --gpus=1 are scheduled on a machine without GPUs.
#   --no-smoke-test   skip the final `srun hostname`.
#   --force           overwrite an /etc/slurm/slurm.conf this script did not write.
#
# Without slurmdbd there is no job accounting: `sacct` fails, so the profile sets
# `slurm-status-command: squeue`, and finished jobs stay visible to
# `squeue --states=all` for MinJobAge seconds (set below).
set -euo pipefail

PARTITION="batch"
FAKE_GPUS=0
SMOKE=1
FORCE=0
CLUSTER=early-exit-local
MARK="# managed-by: early-exit scripts/slurm/setup_local_cluster.sh"

while (($#)); do
  case "$1" in
    --partition) PARTITION="$2"; shift ;;
    --partition=*) PARTITION="${1#*=}" ;;
    --fake-gpus) FAKE_GPUS="$2"; shift ;;
    --fake-gpus=*) FAKE_GPUS="${1#*=}" ;;
    --no-smoke-test) SMOKE=0 ;;
    --force) FORCE=1 ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "setup_local_cluster: unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done

T0=$(date +%s)
log() { echo "[setup_local_cluster +$(($(date +%s) - T0))s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=scripts/slurm/daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemons.sh" # STATE_DIR, pid_of, ours, stop_ours

[[ $EUID -eq 0 ]] || die "must run as root (it installs packages and starts daemons): sudo $0"
[[ "$FAKE_GPUS" =~ ^[0-9]+$ ]] || die "--fake-gpus needs a number, got '$FAKE_GPUS'"
[[ "$PARTITION" =~ ^[A-Za-z0-9_-]+$ ]] || die "--partition: invalid name '$PARTITION'"

# ------------------------------------------------------------------------- packages
missing=()
for p in munge slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  # Keep the packages' postinst scripts from starting services: we start the daemons.
  added_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  cmd=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}")
  # A stale package index is the usual reason an install fails: refresh once, retry.
  "${cmd[@]}" >/dev/null || { apt-get update -q >/dev/null && "${cmd[@]}" >/dev/null; }
  if ((added_policy)); then rm -f /usr/sbin/policy-rc.d; fi
fi
getent hosts localhost >/dev/null || die "'localhost' does not resolve (check /etc/hosts)"

# ------------------------------------------------------------------------- helpers
install -d -m 0755 "$STATE_DIR"

# wait_for SECONDS CMD...: run CMD every 0.25 s until it succeeds
wait_for() {
  local tries=$(($1 * 4))
  shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  return 1
}
munge_ok() { munge -n </dev/null | unmunge >/dev/null; }

# ------------------------------------------------------------------------- munge
if [[ ! -s /etc/munge/munge.key ]]; then
  log "creating the munge key"
  install -d -o munge -g munge -m 0700 /etc/munge
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge

if ours munged && munge_ok 2>/dev/null; then
  log "munged already running"
elif munge_ok 2>/dev/null; then
  log "using a munged this script did not start (teardown leaves it alone)"
else
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 test -s /run/munge/munged.pid || die "munged wrote no PID file"
  cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
  wait_for 10 munge_ok || die "munge round trip failed"
fi

# ------------------------------------------------------------------------- config
# "NodeName=host CPUs=2 Boards=1 SocketsPerBoard=1 ... RealMemory=24105": keep the hardware
read -r _ HW <<<"$(slurmd -C | head -1)"
[[ "$HW" == *CPUs=* && "$HW" == *RealMemory=* ]] || die "unexpected 'slurmd -C' output: $HW"

install -d -o slurm -g slurm -m 0755 /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
install -d -m 0755 /etc/slurm

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GRES=""
if ((FAKE_GPUS > 0)); then
  GRES=" Gres=gpu:fake:$FAKE_GPUS"
  echo "$MARK" >"$tmp/gres.conf"
  for i in $(seq 0 $((FAKE_GPUS - 1))); do
    # slurmd drops a gpu gres without a device file; each fake GPU gets its own
    # character device identical to /dev/null (major 1, minor 3)
    dev=/dev/early-exit-fake-gpu$i
    [[ -c "$dev" ]] || mknod -m 0666 "$dev" c 1 3
    echo "Name=gpu Type=fake File=$dev" >>"$tmp/gres.conf"
  done
fi
cat >"$tmp/slurm.conf" <<EOF
$MARK
# Single-node test cluster on localhost, generated: edits are overwritten.
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
# no cgroups: containers and VMs often do not delegate them
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
ReturnToService=2
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# memory is consumable: a job without --mem would otherwise hold the whole node
DefMemPerCPU=1024
# No accounting database: finished jobs are known only to slurmctld, which keeps them
# (for 'squeue --states=all') for MinJobAge seconds. The Snakemake plugin needs at least
# 3 x its first status-check delay; the tests count finished jobs after a run.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
MinJobAge=1800
$( ((FAKE_GPUS > 0)) && echo "GresTypes=gpu")
NodeName=localhost NodeAddr=127.0.0.1 $HW$GRES State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

if [[ -e /etc/slurm/slurm.conf ]] && ! grep -qF "$MARK" /etc/slurm/slurm.conf && ((!FORCE)); then
  die "/etc/slurm/slurm.conf exists and was not written by this script (--force overwrites it)"
fi
changed=0
for name in slurm.conf gres.conf; do
  src="$tmp/$name" dst="/etc/slurm/$name"
  if [[ -f "$src" ]]; then
    cmp -s "$src" "$dst" || { install -m 0644 "$src" "$dst"; changed=1; log "wrote $dst"; }
  elif [[ -f "$dst" ]] && grep -qF "$MARK" "$dst"; then
    rm -f "$dst"; changed=1; log "removed $dst"
  fi
done
if ((changed)); then
  stop_ours slurmd "to reload its config"
  stop_ours slurmctld "to reload its config"
fi

# ------------------------------------------------------------------------- daemons
if ours slurmctld; then
  log "slurmctld already running"
else
  scontrol ping 2>/dev/null | grep -q UP \
    && die "a slurmctld this script did not start answers on port 6817: stop it first"
  log "starting slurmctld"
  /usr/sbin/slurmctld
fi
wait_for 60 sh -c 'scontrol ping | grep -q UP' \
  || { tail -20 /var/log/slurm/slurmctld.log >&2; die "slurmctld did not come up"; }

if ours slurmd; then
  log "slurmd already running"
else
  log "starting slurmd"
  # -N localhost: the node is called localhost, whatever the machine's hostname
  /usr/sbin/slurmd -N localhost
fi
node_state() { sinfo -h -N -n localhost -o %T 2>/dev/null | head -1; }
wait_for 60 sh -c 'sinfo -h -N -n localhost -o %T | grep -qvE "unknown|not_responding|^$|\*"' \
  || { tail -20 /var/log/slurm/slurmd.log >&2; die "the node did not register (state: $(node_state))"; }
state=$(node_state)
case "$state" in
  *inval*) tail -5 /var/log/slurm/slurmctld.log >&2; die "node state $state: config does not match the hardware" ;;
  *drain* | *down* | *fail*)
    log "node state $state (left over from an earlier run): resuming it"
    scontrol update nodename=localhost state=resume
    wait_for 30 sh -c 'sinfo -h -N -n localhost -o %T | grep -qE "idle|mix|alloc"' \
      || die "the node stays $(node_state)" ;;
esac

if ((SMOKE)); then
  out=$(timeout 120 srun -p "$PARTITION" -N1 -n1 -t 1 hostname 2>&1) || die "'srun hostname' failed: $out"
fi
log "ready: cluster $CLUSTER, partition $PARTITION, fake GPUs $FAKE_GPUS, PID files in $STATE_DIR"
sinfo -o "%P %a %l %D %T %N %c %m %G"
