#!/bin/sh
# Headless Chromium for the explore page's browser test (tests/server/explore/test_explore_browser.py).
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
install() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >/dev/null
}
# The package index is read as it is first; it is refreshed (apt-get update, the slow part
# on a fresh machine with lists) only when the install cannot be done from it.
if ! install 2>/dev/null; then
    $SUDO apt-get update -qq
    install
fi
echo "installed $("$CHROMIUM" --version 2>/dev/null | tail -1)"
