#!/bin/sh
# wrk, the load generator `make bench` drives the servers with (Debian's package), and pgbench
# (in postgresql-client) for the SQL interface's row. Does nothing when both are on the PATH.
set -eu
if command -v wrk >/dev/null 2>&1 && command -v pgbench >/dev/null 2>&1; then
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" wrk postgresql-client
echo "installed $(wrk --version 2>&1 | head -1), $(pgbench --version)"
