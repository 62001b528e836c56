#!/usr/bin/env bash
# bench/run.sh: THE benchmark command.  Side-by-side figures for shardexec,
# direct node access, postgres_fdw and PL/Proxy on one machine, measured in
# one run, printed as one markdown table (screen and bench/results/latest.md).
#
# Usage (as root):
#   bash bench/run.sh [scale]     scale 1 (default) takes about 5 minutes
# Environment:
#   BENCH_DURATION=10   seconds per pgbench run (router and TPC-B workloads)
#   BENCH_CLIENTS=8     pgbench clients (the direct arm splits them over nodes)
#   SKIP_BUILD=1        do not run scripts/build.sh (use what is installed)
#   KEEP_CLUSTER=1      leave the instances running and the scratch directory
#                       in place at the end (stop them with the printed
#                       command)
#
# What it does, in order:
#   1. builds and installs shardexec (scripts/build.sh) and compiles
#      bench/pgmulti.c, the small libpq client that times every fan-out
#      (workload 10 compiles bench/noop_plugin.c, a do-nothing plugin);
#   2. starts five PostgreSQL 15 instances (a coordinator with shardexec,
#      postgres_fdw and PL/Proxy, and four nodes) in a scratch directory
#      /tmp/shardexec-bench.XXXXXX owned by postgres, on free ports of
#      127.0.0.1, with settings for a small machine (bench/README.md);
#   3. loads the same rows into every arm (2 million x scale rows of
#      kv(k bigint, v bigint, grp int, pad text), a 3,200-row "slow" table
#      whose every shard query waits 200 ms on its node, and pgbench tables
#      at pgbench scale 8 x scale), each arm in its own layout:
#        shardexec     distributed tables, 32 shards over 4 nodes
#        direct        a plain table on each node holding a quarter of the
#                      rows (hashint8(k) & 3); clients talk to the nodes
#                      themselves
#        postgres_fdw  a table PARTITION BY HASH with one postgres_fdw
#                      foreign partition per shard (modulus 32) on plain
#                      tables on the nodes, async_capable on
#        plproxy       a 32-partition PL/Proxy cluster (8 per node), rows
#                      placed by hashint8(k) & 31, RUN ON hashint8(k) /
#                      RUN ON ALL
#   4. runs every workload on every arm where it applies, records a figure
#      or "n/a (<first line of the error>)" (so an unsupported feature, such
#      as shardexec's UPDATE while writes are being implemented, never stops
#      the run), and checks that the arms computed the same answers;
#   5. prints the table and writes it, with the machine's facts, to
#      bench/results/latest.md (git-ignored); stops the instances and removes
#      the scratch directory (trap), unless KEEP_CLUSTER=1.
#
# Why it looks like this: every arm must run on the same machine, the same
# data and the same settings in the same run, or the ratios mean nothing;
# and the machine runs as root while PostgreSQL refuses root, so servers
# run through scripts/common.sh's pg_run as postgres, while the clients
# (psql, pgbench, pgmulti) run as root over TCP.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=scripts/common.sh
source "$REPO_ROOT/scripts/common.sh"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

usage()
{
    sed -n '/^# Usage/,/^# What it does/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

case ${1:-1} in
    -h | --help) usage; exit 0 ;;
esac
SCALE=${1:-1}
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || { usage >&2; die "scale must be a positive integer, not \"$SCALE\""; }
[[ $(id -u) -eq 0 ]] || die "run $0 as root (it installs the extension and runs the servers as postgres)"

DURATION=${BENCH_DURATION:-10}
CLIENTS=${BENCH_CLIENTS:-8}
NROWS=$((2000000 * SCALE))
TPCB_SCALE=$((8 * SCALE))
SHARDS=32
NODES=4
SLOW_ROWS=3200
SLOW_SECONDS=0.2
FDW_COPY_ROWS=$((20000 * SCALE))
[[ $CLIENTS -ge $NODES && $((CLIENTS % NODES)) -eq 0 ]] ||
    die "BENCH_CLIENTS must be a multiple of $NODES (the direct arm splits the clients over the nodes)"

START_EPOCH=$(date +%s)
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# 1. Build

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building and installing shardexec (scripts/build.sh)"
    bash "$REPO_ROOT/scripts/build.sh" >&2 ||
        die "scripts/build.sh failed; fix the build, or rerun with SKIP_BUILD=1 to measure what is installed"
fi
SO_PATH=$("$PG_BINDIR/pg_config" --pkglibdir)/shardexec.so
[[ -f $SO_PATH ]] || die "shardexec is not installed ($SO_PATH is missing)"
SO_SUM_START=$(sha256sum "$SO_PATH" | cut -c1-12)
SO_MTIME_START=$(date -u -r "$SO_PATH" '+%Y-%m-%d %H:%M UTC')

SCRATCH=$(make_scratch bench)
trap cleanup EXIT
trap 'exit 130' INT TERM

PGMULTI=$SCRATCH/pgmulti
log "compiling bench/pgmulti.c"
cc -O2 -Wall -o "$PGMULTI" "$BENCH_DIR/pgmulti.c" \
    -I"$("$PG_BINDIR/pg_config" --includedir)" -L"$("$PG_BINDIR/pg_config" --libdir)" -lpq ||
    die "could not compile bench/pgmulti.c (needs libpq-dev: bash scripts/install-deps.sh)"

# ---------------------------------------------------------------------------
# 2. Instances

start_cluster

# ---------------------------------------------------------------------------
# 3. Data

load_all

# ---------------------------------------------------------------------------
# 4. Workloads

# the reads first, while every arm still holds the rows it was loaded with
# (the fan-out answers are checked against direct's); then the writes
run_router_select
run_fanout_count
run_fanout_group
run_fanout_slow
run_streamed
run_router_update
run_tpcb
run_plugins

# ---------------------------------------------------------------------------
# 5. Report

SO_SUM_END=$(sha256sum "$SO_PATH" 2>/dev/null | cut -c1-12 || echo missing)
write_report "$REPO_ROOT/bench/results/latest.md"
