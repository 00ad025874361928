#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the browser test tests/test_serve_browser.py
# (the way tests/slurm/setup_slurm.sh installs SLURM): root + apt, idempotent (nothing is
# installed when /usr/bin/chromium already runs). Playwright drives this binary through
# executable_path; `playwright install` (which downloads its own browser) is never used.
#
# Exit status: 0 ready (the last line of stdout is the Chromium path); 10 not root;
# 11 the package cannot be installed; 13 Chromium is installed but does not start.
# The reason is printed on the last line of stderr as "setup_chromium: <reason>".
set -euo pipefail

CHROMIUM="${GPGAN_CHROMIUM:-/usr/bin/chromium}"

die() { # die CODE MESSAGE
    echo "setup_chromium: $2" >&2
    exit "$1"
}
log() { echo "[setup_chromium $(date -u +%H:%M:%S)] $*" >&2; }

if [[ ! -x "$CHROMIUM" ]]; then
    [[ "$(id -u)" == 0 ]] || die 10 "$CHROMIUM is missing and installing it needs root (apt-get install chromium); not root"
    command -v apt-get >/dev/null 2>&1 || die 11 "$CHROMIUM is missing and apt-get is not available (not Debian/Ubuntu?)"
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get install chromium"
    rc=0
    # the package lists may be missing or stale: update once if the install fails
    apt-get install -y -q --no-install-recommends chromium >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends chromium >&2; } ||
        rc=$?
    [[ $rc == 0 ]] || die 11 "apt-get install chromium failed (exit $rc); no package registry reachable?"
    [[ -x "$CHROMIUM" ]] || die 11 "apt-get install chromium did not provide $CHROMIUM"
else
    log "$CHROMIUM already installed"
fi

version="$(timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --version 2>&1 | tail -n1)" ||
    die 13 "$CHROMIUM --version failed: $version"
log "$version"
echo "$CHROMIUM"
