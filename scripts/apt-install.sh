#!/bin/sh
# apt-get install PACKAGE... (Debian), quietly, as root or through sudo; the package index is
# read as it is first and refreshed (apt-get update, the slow part on a fresh machine) only
# when the install cannot be done from it. Used by the install-*.sh scripts.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
install() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null
}
if ! install "$@" 2>/dev/null; then
    $SUDO apt-get update -qq
    install "$@"
fi
