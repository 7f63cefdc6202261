#!/usr/bin/env bash
# Makes sure the PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) the tests use are up;
# starts the machine's own services if they are installed but stopped.
set -uo pipefail
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! up 5432 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! up 6379 && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/parlour-redis.log || true
fi
for _ in $(seq 1 30); do up 5432 && up 6379 && exit 0; sleep 1; done
echo "PostgreSQL or Redis is not reachable on 127.0.0.1 (5432 / 6379)" >&2
exit 1
