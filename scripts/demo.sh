#!/usr/bin/env bash
# scripts/demo.sh: run shardexec on a local five-instance cluster and show it
# at work.
#
# Usage (as root):
#   bash scripts/demo.sh [start]   build and install shardexec, create the
#                                  cluster if missing, start what is stopped,
#                                  run scripts/demo.sql, print how to connect
#   bash scripts/demo.sh status    show the instances, their ports and state
#   bash scripts/demo.sh stop      stop every instance and remove .cluster/
# Environment:
#   SKIP_BUILD=1   do not run scripts/build.sh (use what is installed)
#
# The cluster lives in <repo>/.cluster/ (git-ignored), owned by the postgres
# OS user because PostgreSQL refuses to run as root:
#   .cluster/coordinator/   data directory, shared_preload_libraries='shardexec'
#   .cluster/node1..node4/  data directories of four ordinary nodes
#   .cluster/<name>.log     server log of each instance (pg_ctl -l)
#   .cluster/ports          "<name> <port>" per instance
#   .cluster/coordinator.so checksum of the shardexec.so the coordinator loaded
# Every instance is a separate initdb'd server listening on 127.0.0.1 only
# (no Unix socket), with trust authentication for 127.0.0.1/32 only, and
# max_prepared_transactions = 20 (two-phase commit across nodes) and
# shared_buffers = 32MB.  Ports are picked free at first creation and
# remembered in .cluster/ports, so rerunning `start` reuses the same cluster
# and the node addresses registered in the coordinator stay valid.
#
# demo.sql is idempotent (it drops and recreates the sample schema `demo`),
# so `start` can be run again at any time.  If the installed shardexec.so
# differs from the one the running coordinator loaded, the coordinator is
# restarted so that the demo runs the code just built.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$REPO_ROOT/scripts/common.sh"

CLUSTER_DIR=$REPO_ROOT/.cluster
PORTS_FILE=$CLUSTER_DIR/ports
INSTANCES=(coordinator node1 node2 node3 node4)

# port_of NAME: the port remembered for instance NAME.
port_of()
{
    awk -v name="$1" '$1 == name { print $2 }' "$PORTS_FILE"
}

# is_running NAME: true if instance NAME has a running postmaster.
is_running()
{
    [[ -f $CLUSTER_DIR/$1/PG_VERSION ]] &&
        pg_run "$CLUSTER_DIR" pg_ctl status -D "$CLUSTER_DIR/$1" >/dev/null 2>&1
}

# prepare_cluster_dir: create .cluster/ owned by postgres, and its ports file.
prepare_cluster_dir()
{
    local name port
    local -a taken=()

    if [[ ! -d $CLUSTER_DIR ]]; then
        mkdir "$CLUSTER_DIR"
        chown "$PG_OS_USER:" "$CLUSTER_DIR"
        chmod 700 "$CLUSTER_DIR"
    fi
    pg_can_write "$CLUSTER_DIR" ||
        die "the postgres OS user cannot write $CLUSTER_DIR; every directory above it" \
            "must be searchable by others (chmod o+x), or clone the repository elsewhere"

    if [[ ! -s $PORTS_FILE ]]; then
        for name in "${INSTANCES[@]}"; do
            port=$(pick_free_port "${taken[@]}")
            taken+=("$port")
            printf '%s %s\n' "$name" "$port"
        done >"$PORTS_FILE.tmp"
        mv "$PORTS_FILE.tmp" "$PORTS_FILE"
        log "picked ports: $(tr '\n' ' ' <"$PORTS_FILE")"
    fi
    for name in "${INSTANCES[@]}"; do
        [[ -n $(port_of "$name") ]] || die "$PORTS_FILE has no port for $name; run: bash scripts/demo.sh stop"
    done
}

# init_instance NAME: initdb and configure instance NAME unless it exists.
init_instance()
{
    local name=$1 data=$CLUSTER_DIR/$1 port
    port=$(port_of "$name")

    [[ -f $data/PG_VERSION ]] && return
    rm -rf "$data" # a leftover of an interrupted initdb

    log "initdb $name (port $port)"
    if ! pg_run "$CLUSTER_DIR" initdb -D "$data" -U postgres -A trust --no-instructions \
        >"$CLUSTER_DIR/$name.initdb.log" 2>&1; then
        cat "$CLUSTER_DIR/$name.initdb.log" >&2
        die "initdb of $name failed"
    fi

    {
        printf '\n# Added by scripts/demo.sh\n'
        printf "port = %s\n" "$port"
        printf "listen_addresses = '127.0.0.1'\n"
        printf "unix_socket_directories = ''\n"
        printf "max_prepared_transactions = 20\n"
        printf "shared_buffers = 32MB\n"
        if [[ $name == coordinator ]]; then
            printf "shared_preload_libraries = 'shardexec'\n"
        fi
    } | pg_run "$CLUSTER_DIR" tee -a "$data/postgresql.conf" >/dev/null

    printf '%s\n' \
        '# Written by scripts/demo.sh: TCP from 127.0.0.1 only, trusted.' \
        '# TYPE  DATABASE  USER  ADDRESS       METHOD' \
        'host    all       all   127.0.0.1/32  trust' |
        pg_run "$CLUSTER_DIR" tee "$data/pg_hba.conf" >/dev/null
}

# start_instance NAME: start instance NAME if it is not running.
start_instance()
{
    local name=$1 data=$CLUSTER_DIR/$1 log=$CLUSTER_DIR/$1.log

    if is_running "$name"; then
        return
    fi
    [[ $name == coordinator ]] && so_sum >"$CLUSTER_DIR/coordinator.so"
    log "starting $name on 127.0.0.1:$(port_of "$name")"
    if ! pg_run "$CLUSTER_DIR" pg_ctl -w -D "$data" -l "$log" start >/dev/null; then
        tail -n 20 "$log" >&2 || true
        die "could not start $name (if its port is now taken by another program, run" \
            "bash scripts/demo.sh stop, then start again to pick new ports)"
    fi
}

# so_sum: checksum of the installed shardexec.so (empty if not installed).
so_sum()
{
    local so
    so=$("$PG_BINDIR/pg_config" --pkglibdir)/shardexec.so
    [[ -f $so ]] && sha256sum "$so" | cut -d' ' -f1
    return 0
}

# restart_if_rebuilt: restart the coordinator when the installed shardexec.so
# differs from the one it loaded at start (recorded in .cluster/coordinator.so),
# so that the demo runs the code just built.
restart_if_rebuilt()
{
    local sum_file=$CLUSTER_DIR/coordinator.so sum
    sum=$(so_sum)
    if [[ -f $sum_file && $(cat "$sum_file") != "$sum" ]]; then
        log "restarting coordinator: shardexec.so changed since it started"
        pg_run "$CLUSTER_DIR" pg_ctl -w -D "$CLUSTER_DIR/coordinator" \
            -l "$CLUSTER_DIR/coordinator.log" -m fast restart >/dev/null
    fi
    printf '%s\n' "$sum" >"$sum_file"
}

cmd_start()
{
    local name
    local -a vars=()

    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        bash "$REPO_ROOT/scripts/build.sh"
    fi

    prepare_cluster_dir
    for name in "${INSTANCES[@]}"; do
        init_instance "$name"
    done
    for name in "${INSTANCES[@]}"; do
        start_instance "$name"
    done
    restart_if_rebuilt

    for name in "${INSTANCES[@]}"; do
        vars+=(-v "${name}_port=$(port_of "$name")")
    done
    log "running scripts/demo.sql on the coordinator"
    "$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 "${vars[@]}" \
        -h 127.0.0.1 -p "$(port_of coordinator)" -U postgres -d postgres \
        -f "$REPO_ROOT/scripts/demo.sql"

    cat <<EOF

The cluster is running (data and logs in $CLUSTER_DIR).
Connect to the coordinator:
    psql -h 127.0.0.1 -p $(port_of coordinator) -U postgres postgres
Look at a node directly (shard tables are demo.<table>_<shardid>):
$(for name in "${INSTANCES[@]:1}"; do echo "    psql -h 127.0.0.1 -p $(port_of "$name") -U postgres postgres    # $name"; done)
Stop it and remove $CLUSTER_DIR:
    bash scripts/demo.sh stop
EOF
}

cmd_status()
{
    local name state
    if [[ ! -f $PORTS_FILE ]]; then
        echo "no cluster in $CLUSTER_DIR"
        return
    fi
    for name in "${INSTANCES[@]}"; do
        state=stopped
        is_running "$name" && state=running
        printf '%-12s 127.0.0.1:%-6s %s\n' "$name" "$(port_of "$name")" "$state"
    done
}

cmd_stop()
{
    local pidfile data
    if [[ ! -d $CLUSTER_DIR ]]; then
        echo "no cluster in $CLUSTER_DIR"
        return
    fi
    # every data directory with a postmaster, the coordinator first
    for pidfile in "$CLUSTER_DIR"/coordinator/postmaster.pid "$CLUSTER_DIR"/*/postmaster.pid; do
        [[ -f $pidfile ]] || continue
        data=${pidfile%/postmaster.pid}
        log "stopping ${data##*/}"
        pg_run "$CLUSTER_DIR" pg_ctl -w -D "$data" -m fast stop >/dev/null || true
    done
    rm -rf "$CLUSTER_DIR"
    log "removed $CLUSTER_DIR"
}

[[ $(id -u) -eq 0 ]] || die "run $0 as root (it installs the extension and runs the servers as postgres)"

case ${1:-start} in
    start) cmd_start ;;
    status) cmd_status ;;
    stop) cmd_stop ;;
    -h | --help) sed -n '/^# Usage/,/^# Environment/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' ;;
    *) die "unknown command \"$1\" (start, status or stop)" ;;
esac
