#!/usr/bin/env bash
# Stop the SLURM test cluster started by tests/slurm/setup_slurm.sh: cancels the jobs
# still in the queue, then stops exactly the daemons whose PIDs setup_slurm.sh
# recorded in $GPGAN_SLURM_STATE/pids (default /run/gpgan-slurm/pids), by PID, in
# reverse start order (slurmd, slurmctld, munged). Packages and config stay installed.
# Idempotent: without a PID file it does nothing.
set -uo pipefail

# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh" # STATE_DIR, PID_FILE, alive()
log() { echo "[teardown_slurm $(date -u +%H:%M:%S)] $*" >&2; }

if [[ ! -f "$PID_FILE" ]]; then
    log "no $PID_FILE: nothing to stop"
    exit 0
fi

# Jobs still running belong to slurmstepd processes that outlive slurmd: cancel them
# while slurmctld is still up, and give them a moment to go away.
if command -v squeue >/dev/null 2>&1; then
    jobs="$(timeout 10 squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o %i 2>/dev/null | tr '\n' ' ')"
    if [[ -n "${jobs// /}" ]]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 1 20); do
            left="$(timeout 10 squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o %i 2>/dev/null)"
            [[ -z "$left" ]] && break
            sleep 0.5
        done
    fi
fi

rc=0
# reverse order of start: slurmd, slurmctld, munged
mapfile -t entries < <(tac "$PID_FILE")
for entry in "${entries[@]}"; do
    read -r name pid <<<"$entry"
    [[ -n "${pid:-}" ]] || continue
    if ! alive "$pid" "$name"; then
        log "$name (pid $pid) not running"
        continue
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        alive "$pid" "$name" || break
        sleep 0.1
    done
    if alive "$pid" "$name"; then
        log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
        if alive "$pid" "$name"; then
            log "could not stop $name (pid $pid)"
            rc=1
        fi
    fi
done
[[ $rc == 0 ]] && rm -f "$PID_FILE"
exit $rc
