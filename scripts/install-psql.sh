#!/bin/sh
# The real psql (Debian's postgresql-client) for the SQL interface's test
# (tests/server/sql/test_clients.py). Does nothing when psql is already there.
set -eu
if command -v psql >/dev/null 2>&1; then
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" postgresql-client
echo "installed $(psql --version)"
