#!/usr/bin/env bash
# Install and start a real single-node SLURM cluster on this machine, for the
# integration test tests/test_slurm.py (and for trying profiles/slurm-test by hand).
#
# - root only; Debian/Ubuntu apt; no systemd, no cgroups (works in containers/VMs);
# - idempotent: packages are installed only when missing, and if the daemons this
#   script started earlier are still alive it only waits for the node to be idle;
# - the PIDs of every daemon it starts are written to $GPGAN_SLURM_STATE/pids
#   (default /run/gpgan-slurm/pids); tests/slurm/teardown_slurm.sh stops exactly those.
#
# Cluster: one node (this host, its real CPU count and memory, one fake GPU so that
# `--gres=gpu:1` / `--gpus=1` jobs can be scheduled), one partition
# ($GPGAN_SLURM_PARTITION, default "local"), no accounting (so `sacct` is useless:
# use the executor's `slurm-status-command: squeue`), MinJobAge=300 so finished jobs
# stay visible to `squeue --states=all` long enough for Snakemake to see their state.
#
# The config must live at /etc/slurm/slurm.conf: the Snakemake jobstep wrapper does
# not forward SLURM_CONF into the job. An existing slurm.conf not written by this
# script is never overwritten (set GPGAN_SLURM_FORCE=1 to do it anyway).
#
# Exit status: 0 ready; 10 not root; 11 packages cannot be installed;
# 12 refusing to touch a foreign SLURM installation; 13 daemons failed to start.
# The reason is printed on the last line of stderr as "setup_slurm: <reason>".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$HERE/common.sh" # STATE_DIR, PID_FILE, alive()
PARTITION="${GPGAN_SLURM_PARTITION:-local}"
CLUSTER_NAME="gpgan-test"
MARKER="# managed by gpgan tests/slurm/setup_slurm.sh"
CONF_DIR=/etc/slurm
SPOOL_CTLD=/var/spool/slurmctld
SPOOL_D=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm

die() { # die CODE MESSAGE
    echo "setup_slurm: $2" >&2
    exit "$1"
}
log() { echo "[setup_slurm $(date -u +%H:%M:%S)] $*" >&2; }

[[ "$(id -u)" == 0 ]] || die 10 "must run as root (installs packages, writes /etc/slurm, starts daemons); not root"

# --- 0. already running (started by us)? then only wait for the node --------------
node_idle() {
    local state
    state="$(timeout 10 sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)"
    [[ "$state" == idle* || "$state" == mix* || "$state" == alloc* ]]
}
if [[ -f "$PID_FILE" ]]; then
    all_alive=1
    while read -r name pid; do
        alive "$pid" "$name" || all_alive=0
    done <"$PID_FILE"
    if [[ $all_alive == 1 ]] && node_idle; then
        log "daemons from $PID_FILE already running and node is up: nothing to do"
        sinfo >&2
        exit 0
    fi
    log "stale or partial cluster in $PID_FILE: stopping it first"
    "$HERE/teardown_slurm.sh" || true
fi

# Refuse to fight with a SLURM/munge that someone else runs on this machine.
# (Zombies do not count; helpers of daemons stopped a moment ago get 10 s to exit.)
running() { # running PROG -> live (non-zombie) PIDs of PROG
    { ps -C "$1" -o pid=,stat= 2>/dev/null || true; } | awk '$2 !~ /^[ZX]/ {printf "%s ", $1}'
}
for prog in slurmctld slurmd slurmstepd munged; do
    for _ in $(seq 1 20); do
        [[ -z "$(running "$prog")" ]] && break
        sleep 0.5
    done
    pids="$(running "$prog")"
    if [[ -n "$pids" ]]; then
        die 12 "a '$prog' not started by this script is already running (pid $pids); refusing to touch a foreign SLURM installation"
    fi
done

# --- 1. packages ---------------------------------------------------------------------
need_install=0
for bin in slurmctld slurmd sbatch squeue sinfo munged munge; do
    command -v "$bin" >/dev/null 2>&1 || [[ -x "/usr/sbin/$bin" ]] || need_install=1
done
if [[ $need_install == 1 ]]; then
    command -v apt-get >/dev/null 2>&1 || die 11 "SLURM is not installed and apt-get is not available (not Debian/Ubuntu?)"
    log "apt-get update && apt-get install slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts must not start the daemons (no systemd here; we start them
    # ourselves below). Use a temporary policy-rc.d only if none exists.
    tmp_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        tmp_policy=1
    fi
    rc=0
    { apt-get update -q && apt-get install -y -q --no-install-recommends \
        slurmctld slurmd slurm-client munge; } >&2 || rc=$?
    [[ $tmp_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
    [[ $rc == 0 ]] || die 11 "apt-get install slurmctld slurmd slurm-client munge failed (exit $rc); no package registry reachable?"
else
    log "SLURM and munge already installed"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# --- 2. munge --------------------------------------------------------------------------
id munge >/dev/null 2>&1 || die 11 "user 'munge' missing although munge is installed"
install -d -m 0700 -o munge -g munge /etc/munge
install -d -m 0711 -o munge -g munge /var/lib/munge
install -d -m 0700 -o munge -g munge /var/log/munge
install -d -m 0755 -o munge -g munge /run/munge # socket dir must be 755
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# --- 3. slurm config ----------------------------------------------------------------------
if [[ -e "$CONF_DIR/slurm.conf" ]] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf" &&
    [[ "${GPGAN_SLURM_FORCE:-0}" != 1 ]]; then
    die 12 "$CONF_DIR/slurm.conf exists and was not written by this script; refusing to overwrite it (GPGAN_SLURM_FORCE=1 to override)"
fi
install -d -m 0755 "$CONF_DIR" "$SPOOL_CTLD" "$SPOOL_D" "$LOG_DIR" "$RUN_DIR" "$STATE_DIR"

NODE="$(hostname -s)"
# `slurmd -C` prints this host's real hardware: "NodeName=x CPUs=.. ... RealMemory=.."
HW="$(slurmd -C 2>/dev/null | head -n1 | sed -E 's/^NodeName=[^ ]+ //')"
[[ "$HW" == *CPUs=* && "$HW" == *RealMemory=* ]] || die 13 "could not read the hardware with 'slurmd -C' (got: '$HW')"

cat >"$CONF_DIR/slurm.conf" <<EOF
$MARKER
# Single-node test cluster without systemd, cgroups or accounting.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SPOOL_CTLD
SlurmdSpoolDir=$SPOOL_D
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: plain /proc process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: sacct cannot see jobs -> Snakemake must use squeue for job status
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# keep finished jobs in slurmctld (and thus in 'squeue --states=all') for 5 min
MinJobAge=300
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# jobs that ask for no memory get 1 GiB per CPU, not the whole node
DefMemPerCPU=1024
GresTypes=gpu
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
OverTimeLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 $HW Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
# A fake GPU: lets the scheduler hand out --gres=gpu:1 / --gpus=1 on a GPU-less host.
cat >"$CONF_DIR/gres.conf" <<EOF
$MARKER
NodeName=$NODE Name=gpu File=/dev/null
EOF
chmod 0644 "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"

# --- 4. daemons (no systemd) -------------------------------------------------------------
: >"$PID_FILE"
wait_pidfile() { # wait_pidfile FILE NAME -> prints pid
    local i pid
    for i in $(seq 1 100); do
        pid="$(cat "$1" 2>/dev/null || true)"
        if alive "$pid" "$2"; then
            echo "$pid"
            return 0
        fi
        sleep 0.1
    done
    return 1
}
fail_daemon() { # fail_daemon NAME LOGFILE
    [[ -f "$2" ]] && tail -n 20 "$2" >&2
    "$HERE/teardown_slurm.sh" || true
    die 13 "$1 did not start (see $2)"
}

log "starting munged"
rm -f /run/munge/munged.pid
runuser -u munge -- /usr/sbin/munged || fail_daemon munged /var/log/munge/munged.log
pid="$(wait_pidfile /run/munge/munged.pid munged)" || fail_daemon munged /var/log/munge/munged.log
echo "munged $pid" >>"$PID_FILE"
munge -n | unmunge >/dev/null || fail_daemon munged /var/log/munge/munged.log

log "starting slurmctld"
rm -f "$RUN_DIR/slurmctld.pid"
# -c: start from a clean state (no jobs or node states left from an earlier run)
/usr/sbin/slurmctld -c || fail_daemon slurmctld "$LOG_DIR/slurmctld.log"
pid="$(wait_pidfile "$RUN_DIR/slurmctld.pid" slurmctld)" || fail_daemon slurmctld "$LOG_DIR/slurmctld.log"
echo "slurmctld $pid" >>"$PID_FILE"

log "starting slurmd"
rm -f "$RUN_DIR/slurmd.pid"
/usr/sbin/slurmd || fail_daemon slurmd "$LOG_DIR/slurmd.log"
pid="$(wait_pidfile "$RUN_DIR/slurmd.pid" slurmd)" || fail_daemon slurmd "$LOG_DIR/slurmd.log"
echo "slurmd $pid" >>"$PID_FILE"

# --- 5. wait for the node -------------------------------------------------------------------
log "waiting for node $NODE to become idle"
for i in $(seq 1 60); do
    if node_idle; then
        log "cluster ready (pids: $(tr '\n' ' ' <"$PID_FILE"))"
        sinfo >&2
        exit 0
    fi
    state="$(timeout 10 sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)"
    if [[ "$state" == drain* || "$state" == down* ]] && ((i % 5 == 0)); then
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 1
done
timeout 10 sinfo -N -l >&2 || true
tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
"$HERE/teardown_slurm.sh" || true
die 13 "node $NODE did not become idle within 60 s"
