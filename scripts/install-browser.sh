#!/usr/bin/env bash
# Install headless Chromium and its driver (Debian packages `chromium`, `chromium-driver`)
# for the browser tests of the report and the live view.
#   bash scripts/install-browser.sh
# Does nothing when /usr/bin/chromium and /usr/bin/chromedriver are already there. Exits
# non-zero, saying why, when they cannot be installed (no apt-get, not root and no sudo,
# apt failed); the browser tests then skip with the reason.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "install-browser.sh: Chromium and chromedriver already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser.sh: apt-get not found; install Chromium and chromedriver by hand" \
    "(browser tests will be skipped)" >&2
  exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-browser.sh: not root and no sudo; run as root:" \
      "apt-get install chromium chromium-driver (browser tests will be skipped)" >&2
    exit 1
  fi
  as_root=(sudo -n)  # never wait for a password
fi
echo "install-browser.sh: installing Debian chromium and chromium-driver"
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends chromium chromium-driver
echo "install-browser.sh: $(/usr/bin/chromium --version 2>/dev/null | tail -n 1)"
