#!/usr/bin/env bash
# Headless browser for tests/test_app_browser.py: Debian's Chromium + its matching chromedriver (apt).
# Idempotent. Installs as root or with passwordless sudo; otherwise prints how to enable the test and exits 0,
# so `make test` runs everything else (the browser test then skips with the same instruction).
set -euo pipefail
have_browser() {
  { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } \
    && command -v chromedriver >/dev/null 2>&1
}
report() {
  echo "browser: $( (chromium --version || chromium-browser --version) 2>/dev/null | head -1); $(chromedriver --version | head -1)"
}
if have_browser; then report; exit 0; fi
if [ "$(id -u)" = "0" ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "browser: not installed (needs root or passwordless sudo); tests/test_app_browser.py will be skipped." \
       "To enable it: sudo apt-get install -y chromium chromium-driver (or: sudo bash scripts/install_browser.sh)"
  exit 0
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
report
