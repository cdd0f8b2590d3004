#!/usr/bin/env bash
# Headless browser for tests/test_app_browser.py: Debian's Chromium + its matching chromedriver (apt).
# Idempotent; ~30 s on a fresh Debian 12 machine (apt-get update included). Needs root or sudo.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "browser: $(chromium --version 2>/dev/null | head -1); $(chromedriver --version | head -1)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
echo "browser: $(chromium --version 2>/dev/null | head -1); $(chromedriver --version | head -1)"
