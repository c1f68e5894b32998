#!/bin/sh
# The real psql (Debian's postgresql-client) for the SQL interface's test
# (tests/server/sql/test_clients.py). Does nothing when psql is already there.
set -eu
if command -v psql >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
install() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        postgresql-client >/dev/null
}
# as for the browser: the package index is refreshed only when the install needs it
if ! install 2>/dev/null; then
    $SUDO apt-get update -qq
    install
fi
echo "installed $(psql --version)"
