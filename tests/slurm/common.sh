# Shared by setup_slurm.sh and teardown_slurm.sh (sourced, not run).
STATE_DIR="${GPGAN_SLURM_STATE:-/run/gpgan-slurm}"
PID_FILE="$STATE_DIR/pids"

alive() { # alive PID NAME: PID exists, is the named program and not a zombie
    [[ -n "${1:-}" && -r "/proc/$1/comm" ]] || return 1
    [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2"* ]] || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }" # field 3 (state) follows the ")" closing the command name
    [[ "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}
