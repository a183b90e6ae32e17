#!/usr/bin/env bash
# A headless browser for the ops-page screenshot test: Debian's `chromium`, driven by
# Playwright (PyPI) through executable_path; Playwright's own browser download is not used.
#
#   scripts/infra/chromium.sh install   find chromium, or apt-install it (root on Debian)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

case "${1:-}" in
    install)
        command -v chromium >/dev/null 2>&1 && exit 0
        log "chromium not found"
        apt_install --no-install-recommends chromium ||
            die "chromium not found. Install it (Debian/Ubuntu: 'apt-get install -y chromium'), or put a chromium binary on PATH."
        ;;
    *)
        echo "usage: $0 install" >&2
        exit 2
        ;;
esac
