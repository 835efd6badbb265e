#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian's `chromium` and `chromium-driver`) for
# the web interface's browser tests, when they are missing. Run as root in CI (`.ci/run` calls
# it); elsewhere it only says what it would need. The browser tests skip, with the reason
# printed, when no browser can be started.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "install-browser: chromium and chromedriver are present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-browser: chromium or chromedriver missing and not root: browser tests will skip" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no apt-get: install chromium and chromedriver yourself; browser tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core \
  || echo "install-browser: installation failed: browser tests will skip" >&2
