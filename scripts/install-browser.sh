#!/bin/sh
# Headless Chromium for the explore page's browser test (tests/server/test_explore_browser.py).
# Debian's own package: no browser download of its own, so it works wherever apt does.
# Does nothing when the browser is already there.
set -eu
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "installed $("$CHROMIUM" --version 2>/dev/null | tail -1)"
