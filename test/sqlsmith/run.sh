#!/usr/bin/env bash
# test/sqlsmith/run.sh: fuzz the coordinator with sqlsmith and fail if any
# backend crashed.
#
# Usage (as root, from anywhere):
#   bash test/sqlsmith/run.sh
# Environment:
#   QUERIES=3000      number of queries sqlsmith generates (--max-queries)
#   SEED=1            sqlsmith's random seed (the same seed gives the same
#                     queries against the same schema)
#   SETTINGS="a=1 b=2"  settings of sqlsmith's role (ALTER ROLE ... SET),
#                     e.g. "shardexec.max_connections_per_query=1" for
#                     connection-strict execution or
#                     "shardexec.enable_pushdown=off" for the pull path
#   SKIP_BUILD=1      do not build and install; fuzz what is installed
#   KEEP_SCRATCH=1    keep the scratch directory even when nothing crashed
#   PG_BINDIR=...     PostgreSQL 15 binaries (default: the system ones)
#
# What it does:
#   - starts one temporary instance, on a free port of 127.0.0.1, that is
#     the coordinator (database "fuzz") and, over 127.0.0.1, its own three
#     nodes (databases node1 to node3), like the pg_regress instance;
#   - the tables are owned by a role that is not a superuser, fuzz_owner,
#     which reaches the nodes through user mappings with a password (the
#     nodes ask for it: scram-sha-256 for that role in pg_hba.conf), and
#     sqlsmith runs as that role: distributed tables of several
#     distribution column types (two of them colocated), a reference
#     table, a local table and a view over a join;
#   - sqlsmith sends QUERIES random queries (SELECT mostly, also INSERT,
#     UPDATE, DELETE, MERGE and upserts; each in a transaction it rolls
#     back, with statement_timeout = 1s) over those tables, with every
#     function and operator of the catalog;
#   - then it checks that no server process was "terminated by signal"
#     (each crash is printed with the query it was running), that the
#     tables hold exactly the rows they held before (every statement was
#     rolled back, on the nodes too), that no prepared transaction is left
#     on the nodes, and that once sqlsmith is gone no connection to a node
#     is counted in shardexec.shared_connection_counts().
#
# It is not part of scripts/test.sh: a few thousand random queries take
# minutes, and timing (statement_timeout) makes runs differ a little even
# with the same seed.  Exit status 0 when all checks pass.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
source "$REPO_ROOT/scripts/common.sh"

QUERIES=${QUERIES:-3000}
SEED=${SEED:-1}

[[ $(id -u) -eq 0 ]] || die "run $0 as root (it runs the server and sqlsmith as postgres)"
command -v sqlsmith >/dev/null || die "sqlsmith is not installed (apt-get install sqlsmith)"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    bash "$REPO_ROOT/scripts/build.sh"
fi

scratch=$(make_scratch sqlsmith)
data=$scratch/data
port=$(pick_free_port)
failed=0

# pg OS-user helpers, all in the scratch directory
pg() { pg_run "$scratch" "$@"; }
psql_as() # psql_as ROLE DB [psql args...]
{
    local role=$1 db=$2
    shift 2
    pg "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$scratch" -p "$port" -U "$role" -d "$db" "$@"
}

stop_server()
{
    pg "$PG_BINDIR/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
}
trap 'stop_server; echo "sqlsmith run stopped early; files kept in $scratch" >&2' EXIT

log "initdb in $scratch"
pg "$PG_BINDIR/initdb" -D "$data" -A trust -U postgres --no-sync >"$scratch/initdb.log" 2>&1 ||
    { cat "$scratch/initdb.log"; die "initdb failed"; }
cat >>"$data/postgresql.conf" <<EOF

# test/sqlsmith/run.sh
shared_preload_libraries = 'shardexec'
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$scratch'
max_connections = 200
max_prepared_transactions = 20
shared_buffers = 64MB
fsync = off
# LOG keeps "terminated by signal" and its query; sqlsmith's thousands of
# ERRORs stay out of the log
log_min_messages = log
log_min_error_statement = panic
restart_after_crash = on
# every statement sent to a node is logged: the run reports how many
shardexec.log_remote_sql = on
EOF
cat >"$data/pg_hba.conf" <<EOF
local all all trust
host all fuzz_owner 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
EOF
chown postgres: "$data/pg_hba.conf"

log "starting the instance on 127.0.0.1:$port"
pg "$PG_BINDIR/pg_ctl" -D "$data" -l "$scratch/server.log" -w start >/dev/null ||
    { tail -n 30 "$scratch/server.log"; die "the server did not start"; }

log "creating the schema"
psql_as postgres postgres <<EOF
CREATE ROLE fuzz_owner LOGIN PASSWORD 'fuzz-secret-pw';
CREATE DATABASE node1 OWNER fuzz_owner;
CREATE DATABASE node2 OWNER fuzz_owner;
CREATE DATABASE node3 OWNER fuzz_owner;
CREATE DATABASE fuzz OWNER fuzz_owner;
\c fuzz
CREATE EXTENSION shardexec;
SELECT shardexec.add_node('node' || i, '127.0.0.1', $port, 'node' || i)
  FROM generate_series(1, 3) i;
CREATE USER MAPPING FOR fuzz_owner SERVER node1 OPTIONS (user 'fuzz_owner', password 'fuzz-secret-pw');
CREATE USER MAPPING FOR fuzz_owner SERVER node2 OPTIONS (user 'fuzz_owner', password 'fuzz-secret-pw');
CREATE USER MAPPING FOR fuzz_owner SERVER node3 OPTIONS (user 'fuzz_owner', password 'fuzz-secret-pw');
EOF

psql_as fuzz_owner fuzz <<'EOF'
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    name text,
    city text,
    score numeric(8,2),
    created timestamptz,
    active boolean,
    tags text[]
);
INSERT INTO customers
SELECT g, 'customer ' || g, 'city ' || (g % 7),
       CASE WHEN g % 11 = 0 THEN NULL ELSE (g * 37 % 1000) / 10.0 END,
       timestamptz '2024-01-01 00:00+00' + g * interval '7 hours',
       g % 3 <> 0, ARRAY['t' || (g % 4), 'u' || (g % 5)]
  FROM generate_series(1, 500) g;
SELECT shardexec.create_distributed_table('customers', 'id', 8);

CREATE TABLE orders (
    customer_id bigint NOT NULL,
    order_id int NOT NULL,
    amount numeric(10,2),
    status varchar(10),
    placed date,
    payload jsonb,
    PRIMARY KEY (customer_id, order_id)
);
INSERT INTO orders
SELECT g % 500 + 1, g, (g * 13 % 10000) / 100.0,
       (ARRAY['new', 'paid', 'shipped', NULL])[g % 4 + 1],
       date '2024-01-01' + g % 365, jsonb_build_object('n', g, 'even', g % 2 = 0)
  FROM generate_series(1, 2000) g;
SELECT shardexec.create_distributed_table('orders', 'customer_id', 8, colocate_with => 'customers');

CREATE TABLE events (
    key text NOT NULL,
    at timestamp,
    kind int,
    val float8,
    flag boolean
);
INSERT INTO events
SELECT 'k' || (g % 97), timestamp '2024-01-01' + g * interval '1 minute', g % 5,
       CASE WHEN g % 13 = 0 THEN NULL ELSE g / 7.0 END, g % 2 = 0
  FROM generate_series(1, 1000) g;
SELECT shardexec.create_distributed_table('events', 'key', 6);

CREATE TABLE sessions (
    id uuid NOT NULL,
    customer_id bigint,
    started timestamptz,
    duration interval,
    agent text
);
INSERT INTO sessions
SELECT md5(g::text)::uuid, g % 500 + 1, timestamptz '2024-02-01 00:00+00' + g * interval '13 minutes',
       g * interval '1 second', CASE WHEN g % 3 = 0 THEN 'mobile' ELSE 'desktop' END
  FROM generate_series(1, 300) g;
SELECT shardexec.create_distributed_table('sessions', 'id', 4);

CREATE TABLE cities (
    city text PRIMARY KEY,
    country text,
    population int
);
INSERT INTO cities SELECT 'city ' || g, 'country ' || (g % 3), g * 1000 FROM generate_series(0, 9) g;
SELECT shardexec.create_reference_table('cities');

CREATE TABLE local_notes (
    id int PRIMARY KEY,
    customer_id bigint,
    body text
);
INSERT INTO local_notes SELECT g, g * 3, 'note ' || g FROM generate_series(1, 100) g;

CREATE VIEW customer_orders AS
SELECT c.id, c.name, c.city, o.order_id, o.amount, o.status
  FROM customers c JOIN orders o ON o.customer_id = c.id;
EOF

for setting in ${SETTINGS:-}; do
    psql_as postgres postgres -c "ALTER ROLE fuzz_owner SET ${setting%%=*} = '${setting#*=}'"
done

# the rows of every table, to compare after the run
checksum_sql="SELECT string_agg(t || '=' || md5, ' ' ORDER BY t) FROM (
    SELECT 'customers' t, md5(string_agg(x::text, ',' ORDER BY x::text)) FROM customers x
    UNION ALL SELECT 'orders', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM orders x
    UNION ALL SELECT 'events', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM events x
    UNION ALL SELECT 'sessions', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM sessions x
    UNION ALL SELECT 'cities', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM cities x
    UNION ALL SELECT 'local_notes', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM local_notes x) s"
before=$(psql_as fuzz_owner fuzz -At -c "$checksum_sql")

log "sqlsmith: $QUERIES queries, seed $SEED${SETTINGS:+, settings $SETTINGS}"
start=$(date +%s)
rc=0
pg sqlsmith --target="host=$scratch port=$port dbname=fuzz user=fuzz_owner" \
    --seed="$SEED" --max-queries="$QUERIES" --exclude-catalog --verbose \
    >"$scratch/sqlsmith.log" 2>&1 || rc=$?
elapsed=$(($(date +%s) - start))
log "sqlsmith exited with status $rc after ${elapsed}s"
tail -n 25 "$scratch/sqlsmith.log" | tr -cd '\11\12\15\40-\176' >&2 || true
echo >&2
# how much of it reached the nodes
remote=$(grep -c 'shardexec: sending to node' "$scratch/server.log" || true)
log "$remote statements were sent to the nodes"

# 1. crashes
crashes=$(grep -c 'terminated by signal' "$scratch/server.log" || true)
if [[ $crashes -gt 0 ]]; then
    failed=1
    echo "FAILED: $crashes server process(es) terminated by signal:" >&2
    grep -A 1 'terminated by signal' "$scratch/server.log" >&2
else
    log "no server process terminated by signal"
fi

# wait for a restart after a crash, if any
for _ in $(seq 1 30); do
    psql_as postgres postgres -c 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
done

# 2. every statement was rolled back, on the nodes too
after=$(psql_as fuzz_owner fuzz -At -c "$checksum_sql" 2>&1 || true)
if [[ $after != "$before" ]]; then
    failed=1
    echo "FAILED: the tables changed during the run" >&2
    echo "  before: $before" >&2
    echo "  after:  $after" >&2
else
    log "every table holds the rows it held before the run"
fi

# 3. no prepared transaction left on the nodes
prepared=$(psql_as postgres postgres -At -c 'SELECT count(*) FROM pg_prepared_xacts' 2>&1 || true)
if [[ $prepared != 0 ]]; then
    failed=1
    echo "FAILED: prepared transactions left on the nodes: $prepared" >&2
else
    log "no prepared transaction left"
fi

# 4. no connection counted once sqlsmith's sessions are gone
counted=""
for _ in $(seq 1 20); do
    counted=$(psql_as postgres fuzz -At -c \
        'SELECT coalesce(sum(connections), 0) FROM shardexec.shared_connection_counts()' 2>&1 || true)
    [[ $counted == 0 ]] && break
    sleep 1
done
if [[ $counted != 0 ]]; then
    failed=1
    echo "FAILED: connections still counted after the run: $counted" >&2
    psql_as postgres fuzz -c 'SELECT * FROM shardexec.shared_connection_counts()' >&2 || true
else
    log "no connection counted after the run"
fi

if [[ $rc -ne 0 && $rc -ne 1 ]]; then
    # sqlsmith exits 1 on --max-queries in some versions; anything else is odd
    echo "note: sqlsmith exited with status $rc" >&2
fi

trap - EXIT
stop_server
if [[ $failed -eq 0 && ${KEEP_SCRATCH:-0} != 1 ]]; then
    rm -rf "$scratch"
else
    echo "files kept in $scratch (server.log, sqlsmith.log)" >&2
fi
if [[ $failed -ne 0 ]]; then
    echo "sqlsmith: FAILED"
    exit 1
fi
echo "sqlsmith: $QUERIES queries, no crash, no change, no leak"
