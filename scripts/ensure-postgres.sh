#!/usr/bin/env bash
# Make sure the PostgreSQL the registry tests use answers on 127.0.0.1:5432 (trust auth, database
# "test"). Starts the system cluster when it is installed but stopped; says what to do otherwise.
set -euo pipefail
host=127.0.0.1
port=5432
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
  exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version (cluster main)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -q -h "$host" -p "$port" && exit 0
    sleep 1
  done
fi
echo "PostgreSQL is not answering on $host:$port; install and start it (trust auth, database 'test')," >&2
echo "or run the suite without it: MLINFRA_SKIP_POSTGRES=1 make test (CI never skips it)" >&2
exit 1
