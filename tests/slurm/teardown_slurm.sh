#!/usr/bin/env bash
# Stop the SLURM test cluster started by tests/slurm/setup_slurm.sh: cancels the jobs
# still in the queue, then stops exactly the daemons whose PIDs setup_slurm.sh
# recorded in $GPGAN_SLURM_STATE/pids (default /run/gpgan-slurm/pids), by PID, in
# reverse start order (slurmd, slurmctld, munged). Packages and config stay installed.
# Idempotent: without a PID file it does nothing.
set -uo pipefail

STATE_DIR="${GPGAN_SLURM_STATE:-/run/gpgan-slurm}"
PID_FILE="$STATE_DIR/pids"
log() { echo "[teardown_slurm $(date -u +%H:%M:%S)] $*" >&2; }
alive() { # alive PID NAME: PID exists, is the named program and not a zombie
    [[ -n "${1:-}" && -r "/proc/$1/comm" ]] || return 1
    [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2"* ]] || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }" # field 3 (state) follows the ")" closing the command name
    [[ "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

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
