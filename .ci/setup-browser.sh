#!/usr/bin/env bash
# What tests/serve/test_browser.py needs: Debian's chromium (/usr/bin/chromium) and the playwright Python package,
# which only drives that binary. Never `playwright install`: its browser downloads fail offline and are not needed.
# Idempotent and quiet: installs only what is missing. Usage: .ci/setup-browser.sh  (VENV=.venv by default)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if ! "$VENV/bin/python" -c "import playwright.sync_api" >/dev/null 2>&1; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$VENV/bin/pip" install -q -c constraints.txt playwright
fi

# The Debian wrapper script prints a harmless shell warning on some machines; keep only the version line.
echo "browser test ready: $(chromium --version 2>/dev/null | tail -n 1), playwright $("$VENV/bin/python" -c \
    'from importlib.metadata import version; print(version("playwright"))')"
