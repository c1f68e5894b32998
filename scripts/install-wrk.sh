#!/bin/sh
# wrk, the load generator `make bench` drives the servers with (Debian's package).
# Does nothing when wrk is already on the PATH.
set -eu
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
install() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk \
        >/dev/null
}
# The package index is refreshed only when the install cannot be done from it as it is.
if ! install 2>/dev/null; then
    $SUDO apt-get update -qq
    install
fi
echo "installed $(wrk --version 2>&1 | head -1)"
