#!/bin/sh
# Headless Chromium for the explore page's browser test (tests/server/explore/test_explore_browser.py).
# Debian's own package: no browser download of its own, so it works wherever apt does.
# Does nothing when the browser is already there.
set -eu
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" chromium fonts-dejavu-core
echo "installed $("$CHROMIUM" --version 2>/dev/null | tail -1)"
