# shellcheck shell=bash disable=SC2153
# bench/lib.sh: the functions of bench/run.sh: instances, data loading, the
# workloads of every arm, and the report.
#
# Sourced by run.sh, never run.  run.sh sets the parameters (SCALE, NROWS,
# DURATION, CLIENTS, SHARDS, NODES, SLOW_*, TPCB_SCALE, FDW_COPY_ROWS,
# SCRATCH, PGMULTI) before calling anything here.
#
# Conventions:
#   - every measurement ends in exactly one call of `record` (a figure) or
#     `record_na` (n/a and the first line of the error); nothing that fails
#     inside an arm stops the run, only a failure of the set-up common to
#     every arm does (die);
#   - the instances are addressed by name (coordinator, node1..node4); each
#     has a database "bench"; clients connect over TCP to 127.0.0.1 as the
#     postgres role (trust), from root;
#   - what each arm stores on the nodes has its own names, so that the arms
#     never share a table: shardexec's shards (kv_<shardid>, slow_<shardid>),
#     direct's node_kv, postgres_fdw's fdw_kv_<i> and fdw_slow_<i>, PL/Proxy's
#     schemas px_p<i> (one per PL/Proxy partition), and one schema per arm
#     for the pgbench tables.

INSTANCES=(coordinator node1 node2 node3 node4)
NODE_NAMES=(node1 node2 node3 node4)
declare -A PORT=()
RESULTS_TSV=""

# Clients must not pick up the caller's libpq settings.
while read -r var; do
    unset "$var"
done < <(compgen -e | grep '^PG' || true)

# ---------------------------------------------------------------------------
# Small helpers

# psql_to NAME [ARG...]: psql on the bench database of instance NAME.
psql_to()
{
    local name=$1
    shift
    "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORT[$name]}" \
        -U postgres -d bench "$@"
}

# sql NAME SQL: run SQL on NAME, print the result unaligned without headers.
sql()
{
    psql_to "$1" -At -c "$2"
}

# conninfo NAME [APPLICATION_NAME]: a libpq connection string for NAME.
conninfo()
{
    printf 'host=127.0.0.1 port=%s user=postgres dbname=bench application_name=%s' \
        "${PORT[$1]}" "${2:-bench}"
}

# now: seconds since the epoch, with nanoseconds.
now()
{
    date +%s.%N
}

# seconds_since START: elapsed seconds since START (from now), 3 decimals.
seconds_since()
{
    awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.3f", e - s }'
}

# kv KEY LINE: the value of KEY in a "k=v k=v" line (empty if absent).
kv()
{
    local key=$1 line=$2
    sed -n "s/.*\\(^\\| \\)$key=\\([^ ]*\\).*/\\2/p" <<<"$line" | head -n 1
}

# first_error TEXT: the most telling line of an error output, one line,
# without tabs or table pipes.
first_error()
{
    local text=$1 line
    line=$(grep -m1 -E 'ERROR|error=|FATAL|error:' <<<"$text" || true)
    [[ -n $line ]] || line=$(grep -m1 -v '^[[:space:]]*$' <<<"$text" || true)
    [[ -n $line ]] || line="failed without a message"
    line=${line#error=}
    line=$(sed -E 's/^.*(ERROR|FATAL): +//; s/^pgbench: error: //; s/\t/ /g; s/\|/\//g' <<<"$line")
    printf '%.160s' "$line"
}

# fmt_num VALUE [DECIMALS]: VALUE with thousands separators.
fmt_num()
{
    LC_ALL=C.UTF-8 awk -v v="$1" -v d="${2:-0}" 'BEGIN {
        s = sprintf("%." d "f", v); split(s, p, ".");
        n = p[1]; neg = (n ~ /^-/); if (neg) n = substr(n, 2);
        out = ""; while (length(n) > 3) { out = "," substr(n, length(n) - 2) out; n = substr(n, 1, length(n) - 3) }
        out = n out; if (neg) out = "-" out; if (d > 0) out = out "." p[2]; print out }'
}

# record WORKLOAD ARM VALUE UNIT DISPLAY [RESULT] [NOTE]: one figure.
# WORKLOAD starts with its number (the table is sorted by it); VALUE is the
# number the ratio is computed from; RESULT is the answer the arm computed
# (compared with direct's); NOTE goes to the notes column.
record()
{
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" "${7:-}" >>"$RESULTS_TSV"
    log "$1 | $2 | $5${7:+ ($7)}"
}

# record_na WORKLOAD ARM REASON: a figure that could not be measured.  If
# a coordinator backend crashed meanwhile, says so and waits for the
# coordinator to be back.
record_na()
{
    check_crash
    record "$1" "$2" "" "" "n/a" "" "${CRASH_NOTE:+$CRASH_NOTE; }$3"
}

# check_crash: set CRASH_NOTE if the coordinator's log shows a backend crash
# since the last call (and then wait until it accepts connections again),
# else empty it.
CRASHES_SEEN=0
CRASH_NOTE=""
check_crash()
{
    local log=$SCRATCH/coordinator.log n
    CRASH_NOTE=""
    n=$(grep -c 'was terminated by signal' "$log" 2>/dev/null || true)
    if [[ ${n:-0} -gt $CRASHES_SEEN ]]; then
        CRASH_NOTE="the coordinator backend crashed ($(grep 'was terminated by signal' "$log" |
            tail -n 1 | sed 's/.*was terminated by //'))"
        CRASHES_SEEN=$n
        log "warning: $CRASH_NOTE; waiting for the coordinator to recover"
        wait_ready coordinator
    fi
}

# wait_ready NAME: wait (up to 60 s) until NAME accepts connections.
wait_ready()
{
    local i
    for ((i = 0; i < 120; i++)); do
        "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "${PORT[$1]}" -d bench && return 0
        sleep 0.5
    done
    die "$1 does not accept connections any more (log: $SCRATCH/$1.log)"
}

# wait_all PID...: wait for every PID; false if any failed.
wait_all()
{
    local pid rc=0
    for pid in "$@"; do
        wait "$pid" || rc=1
    done
    return $rc
}

# ---------------------------------------------------------------------------
# Instances

# start_cluster: pick ports, initdb, configure and start the five instances,
# and create the bench database on each.
start_cluster()
{
    local name port pids=()
    local -a taken=()

    for name in "${INSTANCES[@]}"; do
        port=$(pick_free_port "${taken[@]}")
        taken+=("$port")
        PORT[$name]=$port
    done
    printf '%s %s\n' coordinator "${PORT[coordinator]}" node1 "${PORT[node1]}" \
        node2 "${PORT[node2]}" node3 "${PORT[node3]}" node4 "${PORT[node4]}" >"$SCRATCH/ports"
    RESULTS_TSV=$SCRATCH/results.tsv
    : >"$RESULTS_TSV"

    log "initdb of 5 instances in $SCRATCH (ports: $(tr '\n' ' ' <"$SCRATCH/ports"))"
    for name in "${INSTANCES[@]}"; do
        init_instance "$name" &
        pids+=($!)
    done
    wait_all "${pids[@]}" || die "initdb failed (logs in $SCRATCH/*.initdb.log)"

    for name in "${INSTANCES[@]}"; do
        if ! pg_run "$SCRATCH" pg_ctl -w -D "$SCRATCH/$name" -l "$SCRATCH/$name.log" start >/dev/null; then
            tail -n 20 "$SCRATCH/$name.log" >&2 || true
            die "could not start $name"
        fi
        psql_to "$name" -d postgres -c 'CREATE DATABASE bench' >/dev/null
    done
}

# init_instance NAME: initdb and configure instance NAME.
init_instance()
{
    local name=$1 data=$SCRATCH/$1
    if ! pg_run "$SCRATCH" initdb -D "$data" -U postgres -A trust --no-instructions \
        >"$SCRATCH/$name.initdb.log" 2>&1; then
        cat "$SCRATCH/$name.initdb.log" >&2
        return 1
    fi
    {
        printf '\n# Added by bench/run.sh (see bench/README.md, "Settings")\n'
        printf "port = %s\n" "${PORT[$name]}"
        printf "listen_addresses = '127.0.0.1'\n"
        printf "unix_socket_directories = ''\n"
        printf "max_connections = 200\n"
        printf "max_prepared_transactions = 100\n"
        printf "shared_buffers = 256MB\n"
        printf "work_mem = 4MB\n"
        printf "synchronous_commit = off\n"
        printf "autovacuum = off\n"
        printf "jit = off\n"
        printf "max_wal_size = 8GB\n"
        printf "checkpoint_timeout = 30min\n"
        printf "log_line_prefix = '%%m [%%p] '\n"
        if [[ $name == coordinator ]]; then
            printf "shared_preload_libraries = 'shardexec'\n"
        fi
    } | pg_run "$SCRATCH" tee -a "$data/postgresql.conf" >/dev/null
    printf '%s\n' '# Written by bench/run.sh: TCP from 127.0.0.1 only, trusted.' \
        'host    all       all   127.0.0.1/32  trust' |
        pg_run "$SCRATCH" tee "$data/pg_hba.conf" >/dev/null
}

# cleanup: the EXIT trap.  Stops the instances and removes the scratch
# directory, unless KEEP_CLUSTER=1; on failure shows the ends of the logs.
cleanup()
{
    local rc=$? name
    local -a pids=()
    trap - EXIT
    mapfile -t pids < <(jobs -p)
    [[ ${#pids[@]} -eq 0 ]] || kill "${pids[@]}" 2>/dev/null || true
    if [[ -z ${SCRATCH:-} || ! -d $SCRATCH ]]; then
        exit $rc
    fi
    if [[ $rc -ne 0 ]]; then
        for name in "${INSTANCES[@]}"; do
            [[ -f $SCRATCH/$name.log ]] || continue
            echo "----- $name.log (last 15 lines) -----" >&2
            tail -n 15 "$SCRATCH/$name.log" >&2
        done
    fi
    if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
        log "KEEP_CLUSTER=1: instances left running in $SCRATCH (ports in $SCRATCH/ports); stop them with:"
        for name in "${INSTANCES[@]}"; do
            echo "    runuser -u postgres -- $PG_BINDIR/pg_ctl -D $SCRATCH/$name -m fast stop" >&2
        done
        exit $rc
    fi
    log "stopping the instances and removing $SCRATCH"
    for name in "${INSTANCES[@]}"; do
        if [[ -f $SCRATCH/$name/postmaster.pid ]]; then
            pg_run "$SCRATCH" pg_ctl -w -D "$SCRATCH/$name" -m immediate stop >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$SCRATCH"
    exit $rc
}

# ---------------------------------------------------------------------------
# Data

# load_all: the same rows into every arm, and the COPY figures on the way.
load_all()
{
    local t0
    t0=$(now)
    load_coordinator_setup
    load_stage
    load_copy_workload # loads shardexec's kv too
    load_direct
    load_fdw
    load_plproxy
    load_slow
    load_tpcb
    log "analyzing"
    for name in "${INSTANCES[@]}"; do
        psql_to "$name" -c 'VACUUM ANALYZE' >/dev/null 2>&1 ||
            log "warning: VACUUM ANALYZE failed on $name"
    done
    # postgres_fdw has no statistics of its foreign tables until they are
    # analyzed (which reads them through the foreign server)
    psql_to coordinator -c 'ANALYZE fdw_kv; ANALYZE fdw_slow' >/dev/null 2>&1 ||
        log "warning: ANALYZE of the postgres_fdw tables failed"
    LOAD_SECONDS=$(printf '%.0f' "$(seconds_since "$t0")")
    log "data loaded in $LOAD_SECONDS s"
}

# load_coordinator_setup: the extensions and the nodes of every arm.
load_coordinator_setup()
{
    local name
    log "coordinator: extensions, shardexec nodes, postgres_fdw servers, PL/Proxy cluster"
    psql_to coordinator -c 'CREATE EXTENSION shardexec' >/dev/null
    psql_to coordinator -c 'CREATE EXTENSION postgres_fdw' >/dev/null
    psql_to coordinator -c 'CREATE EXTENSION plproxy' >/dev/null
    for name in "${NODE_NAMES[@]}"; do
        sql coordinator "SELECT shardexec.add_node('$name', '127.0.0.1', ${PORT[$name]}, 'bench')" >/dev/null
        # postgres_fdw: one server per node; async_capable lets an Append run
        # the foreign scans of different servers at the same time; a large
        # fetch_size and batch_size are what a tuned set-up uses
        psql_to coordinator >/dev/null <<SQL
CREATE SERVER fdw_$name FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '127.0.0.1', port '${PORT[$name]}', dbname 'bench',
             async_capable 'true', fetch_size '10000', batch_size '1000',
             application_name 'postgres_fdw');
CREATE USER MAPPING FOR postgres SERVER fdw_$name OPTIONS (user 'postgres');
SQL
        psql_to "$name" >/dev/null <<'SQL'
-- bench_delay(seconds): sleeps, then true; the views of the 200 ms workload
-- call it once per query, in an uncorrelated sub-select (an InitPlan).
CREATE FUNCTION bench_delay(float8) RETURNS bool
    LANGUAGE sql VOLATILE AS $$ SELECT true FROM pg_sleep($1) $$;
SQL
    done
}

# load_stage: the rows every arm gets, in plain local tables of the
# coordinator, and as a COPY file.
load_stage()
{
    log "generating $(fmt_num "$NROWS") kv rows and the $SLOW_ROWS slow rows (coordinator, local)"
    psql_to coordinator >/dev/null <<SQL
CREATE TABLE stage_kv (k bigint PRIMARY KEY, v bigint NOT NULL, grp int NOT NULL, pad text NOT NULL);
INSERT INTO stage_kv
SELECT g, (g * 7919) % 10007, g % 1000, left(md5(g::text), 16)
  FROM generate_series(1::bigint, $NROWS) AS g;
CREATE TABLE stage_slow (k bigint PRIMARY KEY, x int NOT NULL);
INSERT INTO stage_slow SELECT g, g % 7 FROM generate_series(1::bigint, $SLOW_ROWS) AS g;
-- the same rows split the way PostgreSQL's hash partitioning splits them,
-- so that each postgres_fdw partition is loaded with one COPY
CREATE TABLE stage_hp (LIKE stage_kv) PARTITION BY HASH (k);
SELECT format('CREATE TABLE stage_hp_%s PARTITION OF stage_hp FOR VALUES WITH (MODULUS $SHARDS, REMAINDER %s)', i, i)
  FROM generate_series(0, $SHARDS - 1) AS i \gexec
INSERT INTO stage_hp SELECT * FROM stage_kv;
SQL
    psql_to coordinator -c "\\copy stage_kv TO '$SCRATCH/kv.copy'"
}

# load_copy_workload: workload 8 (COPY rows/s into one local table, into
# shardexec, into postgres_fdw), which also loads shardexec's kv.
load_copy_workload()
{
    local w="8. COPY load" t0 secs out
    local ddl="(k bigint PRIMARY KEY, v bigint NOT NULL, grp int NOT NULL, pad text NOT NULL)"

    log "COPY $(fmt_num "$NROWS") rows into one local table (coordinator)"
    psql_to coordinator -c "CREATE TABLE copy_local $ddl" >/dev/null
    t0=$(now)
    if out=$(psql_to coordinator -c "\\copy copy_local FROM '$SCRATCH/kv.copy'" 2>&1); then
        secs=$(seconds_since "$t0")
        record "$w" "direct (one local table)" "$(awk -v n="$NROWS" -v s="$secs" 'BEGIN { print n / s }')" \
            rows/s "$(fmt_num "$(awk -v n="$NROWS" -v s="$secs" 'BEGIN { print n / s }')") rows/s" "" \
            "$(fmt_num "$NROWS") rows in $secs s"
    else
        record_na "$w" "direct (one local table)" "$(first_error "$out")"
    fi
    psql_to coordinator -c "DROP TABLE copy_local" >/dev/null

    log "shardexec: create_distributed_table('kv', 'k', $SHARDS), then COPY $(fmt_num "$NROWS") rows"
    if ! out=$(psql_to coordinator 2>&1 <<SQL
CREATE TABLE kv $ddl;
SELECT shardexec.create_distributed_table('kv', 'k', $SHARDS);
SQL
    ); then
        record_na "$w" "shardexec" "create_distributed_table: $(first_error "$out")"
        return
    fi
    t0=$(now)
    if out=$(psql_to coordinator -c "\\copy kv FROM '$SCRATCH/kv.copy'" 2>&1); then
        secs=$(seconds_since "$t0")
        record "$w" "shardexec" "$(awk -v n="$NROWS" -v s="$secs" 'BEGIN { print n / s }')" rows/s \
            "$(fmt_num "$(awk -v n="$NROWS" -v s="$secs" 'BEGIN { print n / s }')") rows/s" "" \
            "$(fmt_num "$NROWS") rows in $secs s"
    else
        record_na "$w" "shardexec" "$(first_error "$out")"
        log "COPY into shardexec failed; loading kv with INSERT ... SELECT instead"
        check_crash
        psql_to coordinator -c "TRUNCATE kv" >/dev/null 2>&1 || true
        if ! out=$(psql_to coordinator -c "INSERT INTO kv SELECT * FROM stage_kv" 2>&1); then
            check_crash
            log "warning: could not load shardexec's kv (${CRASH_NOTE:+$CRASH_NOTE; }$(first_error "$out")); its figures will be n/a or wrong"
        fi
    fi

    # postgres_fdw routes COPY rows to foreign partitions one INSERT at a
    # time (PostgreSQL 15 does not batch COPY into foreign tables), so only
    # a slice is copied, into tables used for nothing else
    log "postgres_fdw: COPY $(fmt_num "$FDW_COPY_ROWS") rows through a hash-partitioned table of foreign tables"
    make_fdw_table fdw_copy "$ddl" "(k bigint NOT NULL, v bigint NOT NULL, grp int NOT NULL, pad text NOT NULL)"
    t0=$(now)
    if out=$(head -n "$FDW_COPY_ROWS" "$SCRATCH/kv.copy" |
        psql_to coordinator -c "\\copy fdw_copy FROM pstdin" 2>&1); then
        secs=$(seconds_since "$t0")
        record "$w" "postgres_fdw" "$(awk -v n="$FDW_COPY_ROWS" -v s="$secs" 'BEGIN { print n / s }')" rows/s \
            "$(fmt_num "$(awk -v n="$FDW_COPY_ROWS" -v s="$secs" 'BEGIN { print n / s }')") rows/s" "" \
            "$(fmt_num "$FDW_COPY_ROWS") rows in $secs s (row by row into the foreign partitions)"
    else
        record_na "$w" "postgres_fdw" "$(first_error "$out")"
    fi
    record_na "$w" "plproxy" "PL/Proxy has no COPY: it calls functions"
}

# make_fdw_table NAME NODE_DDL COORD_DDL: NAME on the coordinator, PARTITION
# BY HASH (k) with $SHARDS postgres_fdw foreign partitions NAME_<i>, i on
# node (i mod 4) + 1, each a plain table NAME_<i> (NODE_DDL) on its node.
make_fdw_table()
{
    local name=$1 node_ddl=$2 coord_ddl=$3 i node
    for ((i = 0; i < SHARDS; i++)); do
        node=${NODE_NAMES[$((i % NODES))]}
        sql "$node" "CREATE TABLE ${name}_$i $node_ddl" >/dev/null
    done
    {
        echo "CREATE TABLE $name $coord_ddl PARTITION BY HASH (k);"
        for ((i = 0; i < SHARDS; i++)); do
            node=${NODE_NAMES[$((i % NODES))]}
            echo "CREATE FOREIGN TABLE ${name}_$i PARTITION OF $name FOR VALUES WITH (MODULUS $SHARDS, REMAINDER $i)"
            echo "    SERVER fdw_$node OPTIONS (table_name '${name}_$i');"
        done
    } | psql_to coordinator >/dev/null
}

# load_direct: node_kv on every node, a quarter of the rows each (those with
# hashint8(k) & 3 = node index), numbered 1..n by rn so that a pgbench
# client can pick a random row of its node.
load_direct()
{
    local j node pids=()
    log "direct: node_kv on each node"
    for ((j = 0; j < NODES; j++)); do
        node=${NODE_NAMES[$j]}
        (
            sql "$node" "CREATE TABLE node_kv (rn int NOT NULL, k bigint NOT NULL, v bigint NOT NULL, grp int NOT NULL, pad text NOT NULL)" >/dev/null
            psql_to coordinator -c "COPY (SELECT row_number() OVER (ORDER BY k), k, v, grp, pad FROM stage_kv WHERE hashint8(k) & 3 = $j) TO STDOUT" |
                psql_to "$node" -c "\\copy node_kv FROM pstdin"
            psql_to "$node" -c "ALTER TABLE node_kv ADD PRIMARY KEY (rn); CREATE UNIQUE INDEX node_kv_k ON node_kv (k)" >/dev/null
        ) &
        pids+=($!)
    done
    wait_all "${pids[@]}" || die "loading node_kv failed"
}

# load_fdw: postgres_fdw's fdw_kv, one partition per shard.
load_fdw()
{
    local i node pids=()
    local ddl="(k bigint NOT NULL, v bigint NOT NULL, grp int NOT NULL, pad text NOT NULL)"
    log "postgres_fdw: fdw_kv, $SHARDS foreign partitions"
    make_fdw_table fdw_kv "$ddl" "$ddl"
    for ((i = 0; i < SHARDS; i++)); do
        node=${NODE_NAMES[$((i % NODES))]}
        (
            psql_to coordinator -c "COPY stage_hp_$i TO STDOUT" |
                psql_to "$node" -c "\\copy fdw_kv_$i FROM pstdin"
            sql "$node" "ALTER TABLE fdw_kv_$i ADD PRIMARY KEY (k)" >/dev/null
        ) &
        pids+=($!)
        if [[ ${#pids[@]} -ge $NODES ]]; then
            wait_all "${pids[@]}" || die "loading fdw_kv failed"
            pids=()
        fi
    done
    wait_all "${pids[@]}" || die "loading fdw_kv failed"
}

# load_plproxy: a PL/Proxy cluster of $SHARDS partitions (a power of 2), 8 on
# each node.  Each partition is a schema px_p<i> on its node, holding the
# rows with hashint8(k) & ($SHARDS - 1) = i; its connection string selects
# the schema (options=-csearch_path=...), so the node functions, which live
# in public and name their tables unqualified, see that partition's rows.
# Every partition has its own connection, as every shard of shardexec can.
load_plproxy()
{
    local i node opts="" pids=()
    log "PL/Proxy: $SHARDS partitions, node functions, proxy functions"
    for ((i = 0; i < SHARDS; i++)); do
        node=${NODE_NAMES[$((i % NODES))]}
        opts+="${opts:+, }p$i 'host=127.0.0.1 port=${PORT[$node]} dbname=bench user=postgres application_name=plproxy options=-csearch_path=px_p$i'"
    done
    psql_to coordinator >/dev/null <<SQL
CREATE SERVER px_cluster FOREIGN DATA WRAPPER plproxy OPTIONS (connection_lifetime '3600', $opts);
CREATE USER MAPPING FOR PUBLIC SERVER px_cluster;
CREATE FUNCTION px_get(i_k bigint, OUT k bigint, OUT v bigint, OUT grp int, OUT pad text)
    RETURNS SETOF record LANGUAGE plproxy AS \$\$ CLUSTER 'px_cluster'; RUN ON hashint8(i_k); \$\$;
CREATE FUNCTION px_upd(i_k bigint) RETURNS bigint
    LANGUAGE plproxy AS \$\$ CLUSTER 'px_cluster'; RUN ON hashint8(i_k); \$\$;
CREATE FUNCTION px_count(OUT n bigint, OUT s numeric) RETURNS SETOF record
    LANGUAGE plproxy AS \$\$ CLUSTER 'px_cluster'; RUN ON ALL; \$\$;
CREATE FUNCTION px_group(OUT grp int, OUT s numeric, OUT n bigint) RETURNS SETOF record
    LANGUAGE plproxy AS \$\$ CLUSTER 'px_cluster'; RUN ON ALL; \$\$;
CREATE FUNCTION px_scan(OUT k bigint, OUT v bigint) RETURNS SETOF record
    LANGUAGE plproxy AS \$\$ CLUSTER 'px_cluster'; RUN ON ALL; \$\$;
CREATE FUNCTION px_slow(OUT n bigint, OUT s numeric) RETURNS SETOF record
    LANGUAGE plproxy AS \$\$ CLUSTER 'px_cluster'; RUN ON ALL; \$\$;
SQL
    for node in "${NODE_NAMES[@]}"; do
        psql_to "$node" >/dev/null <<'SQL'
-- PL/Proxy's node functions: they read px_kv and px_slow of the schema
-- their connection's search_path names (one PL/Proxy partition), which
-- public does not have, hence no body check here.
SET check_function_bodies = off;
CREATE FUNCTION public.px_get(i_k bigint, OUT k bigint, OUT v bigint, OUT grp int, OUT pad text)
    RETURNS SETOF record LANGUAGE sql STABLE
    AS $$ SELECT t.k, t.v, t.grp, t.pad FROM px_kv t WHERE t.k = i_k $$;
CREATE FUNCTION public.px_upd(i_k bigint) RETURNS bigint LANGUAGE sql
    AS $$ UPDATE px_kv SET v = v + 1 WHERE k = i_k RETURNING v $$;
CREATE FUNCTION public.px_count(OUT n bigint, OUT s numeric) RETURNS SETOF record
    LANGUAGE sql STABLE AS $$ SELECT count(*), sum(v) FROM px_kv $$;
CREATE FUNCTION public.px_group(OUT grp int, OUT s numeric, OUT n bigint) RETURNS SETOF record
    LANGUAGE sql STABLE AS $$ SELECT grp, sum(v), count(*) FROM px_kv GROUP BY grp $$;
CREATE FUNCTION public.px_scan(OUT k bigint, OUT v bigint) RETURNS SETOF record
    LANGUAGE sql STABLE AS $$ SELECT k, v FROM px_kv $$;
CREATE FUNCTION public.px_slow(OUT n bigint, OUT s numeric) RETURNS SETOF record
    LANGUAGE sql VOLATILE AS $$ SELECT count(*), sum(x) FROM px_slow_view $$;
SQL
    done
    for ((i = 0; i < SHARDS; i++)); do
        node=${NODE_NAMES[$((i % NODES))]}
        (
            psql_to "$node" >/dev/null <<SQL
CREATE SCHEMA px_p$i;
CREATE TABLE px_p$i.px_kv (k bigint NOT NULL, v bigint NOT NULL, grp int NOT NULL, pad text NOT NULL);
CREATE TABLE px_p$i.px_slow (k bigint PRIMARY KEY, x int NOT NULL);
CREATE VIEW px_p$i.px_slow_view AS
    SELECT * FROM px_p$i.px_slow WHERE (SELECT bench_delay($SLOW_SECONDS));
SQL
            psql_to coordinator -c "COPY (SELECT * FROM stage_kv WHERE hashint8(k) & $((SHARDS - 1)) = $i) TO STDOUT" |
                psql_to "$node" -c "\\copy px_p$i.px_kv FROM pstdin"
            psql_to coordinator -c "COPY (SELECT * FROM stage_slow WHERE hashint8(k) & $((SHARDS - 1)) = $i) TO STDOUT" |
                psql_to "$node" -c "\\copy px_p$i.px_slow FROM pstdin"
            sql "$node" "ALTER TABLE px_p$i.px_kv ADD PRIMARY KEY (k)" >/dev/null
        ) &
        pids+=($!)
        if [[ ${#pids[@]} -ge $NODES ]]; then
            wait_all "${pids[@]}" || die "loading the PL/Proxy partitions failed"
            pids=()
        fi
    done
    wait_all "${pids[@]}" || die "loading the PL/Proxy partitions failed"
}

# load_slow: the 200 ms workload's table in shardexec and postgres_fdw.
# On the nodes, each shard (or partition) table is renamed <name>_data and
# replaced by a view of the same name that returns its rows after
# bench_delay($SLOW_SECONDS): the query each arm sends for one shard then
# takes 200 ms on its node whatever its plan, without using any CPU, so the
# figure shows how many shard queries run at once.
load_slow()
{
    local out line node table base i
    log "slow: $SLOW_ROWS rows, every shard query waits $SLOW_SECONDS s on its node"
    if out=$(psql_to coordinator 2>&1 <<SQL
CREATE TABLE slow (k bigint PRIMARY KEY, x int NOT NULL);
SELECT shardexec.create_distributed_table('slow', 'k', $SHARDS);
INSERT INTO slow SELECT * FROM stage_slow;
SQL
    ); then
        SLOW_SHARDS=$(sql coordinator "SELECT node_name || ' ' || shard_table FROM shardexec.shards WHERE table_name = 'slow'::regclass ORDER BY shard_index")
        while read -r node table; do
            [[ -n $node ]] || continue
            base=${table##*.}
            sql "$node" "ALTER TABLE $table RENAME TO ${base}_data;
                         CREATE VIEW $table AS SELECT * FROM ${table}_data WHERE (SELECT bench_delay($SLOW_SECONDS))" >/dev/null
        done <<<"$SLOW_SHARDS"
    else
        SLOW_SHARDS=""
        check_crash
        log "warning: shardexec's slow table: ${CRASH_NOTE:+$CRASH_NOTE; }$(first_error "$out")"
    fi

    make_fdw_table fdw_slow "(k bigint PRIMARY KEY, x int NOT NULL)" "(k bigint NOT NULL, x int NOT NULL)"
    for ((i = 0; i < SHARDS; i++)); do
        node=${NODE_NAMES[$((i % NODES))]}
        psql_to coordinator -c "COPY (SELECT * FROM stage_slow WHERE satisfies_hash_partition('fdw_slow'::regclass, $SHARDS, $i, k)) TO STDOUT" |
            psql_to "$node" -c "\\copy fdw_slow_$i FROM pstdin"
        sql "$node" "ALTER TABLE fdw_slow_$i RENAME TO fdw_slow_${i}_data;
                     CREATE VIEW fdw_slow_$i AS SELECT * FROM fdw_slow_${i}_data WHERE (SELECT bench_delay($SLOW_SECONDS))" >/dev/null
    done
}

# load_tpcb: pgbench's tables at scale $TPCB_SCALE: generated once on the
# coordinator (schema tpcb_stage), then: direct = a plain pgbench database
# on node1 (schema tpcb_direct, pgbench -i, the same deterministic rows);
# shardexec = schema tpcb_se, every table distributed ($SHARDS shards) on
# its key; postgres_fdw = schema tpcb_fdw, every table PARTITION BY HASH on
# its key with one foreign partition per node.
load_tpcb()
{
    local out t key node r
    local -A keys=([pgbench_accounts]=aid [pgbench_branches]=bid [pgbench_tellers]=tid [pgbench_history]=aid)
    log "pgbench tables, scale $TPCB_SCALE: stage, direct (node1), shardexec, postgres_fdw"
    sql coordinator "CREATE SCHEMA tpcb_stage; CREATE SCHEMA tpcb_se; CREATE SCHEMA tpcb_fdw" >/dev/null
    PGOPTIONS="-c search_path=tpcb_stage" "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "${PORT[coordinator]}" \
        -U postgres -i -q -s "$TPCB_SCALE" -I dtgp bench >/dev/null 2>&1 || die "pgbench -i on the coordinator failed"

    sql node1 "CREATE SCHEMA tpcb_direct" >/dev/null
    PGOPTIONS="-c search_path=tpcb_direct" "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "${PORT[node1]}" \
        -U postgres -i -q -s "$TPCB_SCALE" -I dtgvp bench >/dev/null 2>&1 || die "pgbench -i on node1 failed"

    TPCB_SE_ERROR=""
    for t in pgbench_branches pgbench_tellers pgbench_accounts pgbench_history; do
        if ! out=$(psql_to coordinator 2>&1 <<SQL
CREATE TABLE tpcb_se.$t (LIKE tpcb_stage.$t INCLUDING ALL);
SELECT shardexec.create_distributed_table('tpcb_se.$t', '${keys[$t]}', $SHARDS);
INSERT INTO tpcb_se.$t SELECT * FROM tpcb_stage.$t;
SQL
        ); then
            check_crash
            TPCB_SE_ERROR="$t: ${CRASH_NOTE:+$CRASH_NOTE; }$(first_error "$out")"
            log "warning: shardexec's pgbench tables: $TPCB_SE_ERROR"
            break
        fi
    done

    for node in "${NODE_NAMES[@]}"; do
        sql "$node" "CREATE SCHEMA tpcb_fdw" >/dev/null
    done
    for t in pgbench_branches pgbench_tellers pgbench_accounts pgbench_history; do
        key=${keys[$t]}
        sql coordinator "CREATE TABLE tpcb_fdw.$t (LIKE tpcb_stage.$t) PARTITION BY HASH ($key)" >/dev/null
        for ((r = 0; r < NODES; r++)); do
            node=${NODE_NAMES[$r]}
            # the node table: the same columns (copied from the stage's
            # definition), with the primary key pgbench -i gives
            sql "$node" "$(sql coordinator "SELECT 'CREATE TABLE IF NOT EXISTS tpcb_fdw.${t}_$r (' ||
                string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) || ')'
                FROM pg_attribute WHERE attrelid = 'tpcb_stage.$t'::regclass AND attnum > 0 AND NOT attisdropped")" >/dev/null
            sql coordinator "CREATE FOREIGN TABLE tpcb_fdw.${t}_$r PARTITION OF tpcb_fdw.$t
                FOR VALUES WITH (MODULUS $NODES, REMAINDER $r)
                SERVER fdw_$node OPTIONS (schema_name 'tpcb_fdw', table_name '${t}_$r')" >/dev/null
            psql_to coordinator -c "COPY (SELECT * FROM tpcb_stage.$t WHERE satisfies_hash_partition('tpcb_fdw.$t'::regclass, $NODES, $r, $key)) TO STDOUT" |
                psql_to "$node" -c "\\copy tpcb_fdw.${t}_$r FROM pstdin"
            if [[ $t != pgbench_history ]]; then
                sql "$node" "ALTER TABLE tpcb_fdw.${t}_$r ADD PRIMARY KEY ($key)" >/dev/null
            fi
        done
    done
}

# ---------------------------------------------------------------------------
# pgbench workloads

# write_script NAME TEXT: a pgbench script in the scratch directory.
write_script()
{
    printf '%s\n' "$2" >"$SCRATCH/$1.sql"
    printf '%s' "$SCRATCH/$1.sql"
}

# pgbench_tps NAME CLIENTS SCRIPT [PGOPTIONS] [ARG...]: run pgbench against
# instance NAME for $DURATION s (prepared statements, -n) and print
# "tps=<tps>" or "error=<first error line>".
pgbench_tps()
{
    local name=$1 clients=$2 script=$3 opts=${4:-} out rc=0 tps jobs
    shift 4 || shift $#
    jobs=$((clients < 2 ? 1 : 2))
    out=$(PGOPTIONS=$opts "$PG_BINDIR/pgbench" -h 127.0.0.1 -p "${PORT[$name]}" -U postgres -n \
        -M prepared -c "$clients" -j "$jobs" -T "${PGBENCH_SECONDS:-$DURATION}" "$@" -f "$script" bench 2>&1) || rc=$?
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
    if [[ $rc -ne 0 || -z $tps ]] || grep -q 'aborted' <<<"$out"; then
        printf 'error=%s\n' "$(first_error "$out")"
    else
        printf 'tps=%s\n' "$tps"
    fi
}

# record_tps WORKLOAD ARM OUTPUT [NOTE]: record pgbench_tps's output.
record_tps()
{
    local tps
    tps=$(kv tps "$3")
    if [[ -n $tps ]]; then
        record "$1" "$2" "$tps" TPS "$(fmt_num "$tps") TPS" "" "${4:-}"
    else
        record_na "$1" "$2" "$(first_error "$3")"
    fi
}

# direct_tps WORKLOAD SCRIPT: the direct arm of a router workload: one
# pgbench per node at once, CLIENTS/NODES clients each, each picking random
# rows of its own node (:nrows = its node_kv row count); TPS summed.
direct_tps()
{
    local w=$1 script=$2 j node nrows pids=() total=0 tps
    for ((j = 0; j < NODES; j++)); do
        node=${NODE_NAMES[$j]}
        nrows=$(sql "$node" "SELECT count(*) FROM node_kv")
        pgbench_tps "$node" $((CLIENTS / NODES)) "$script" "" -D "nrows=$nrows" >"$SCRATCH/direct.$j.out" &
        pids+=($!)
    done
    wait_all "${pids[@]}" || true
    for ((j = 0; j < NODES; j++)); do
        tps=$(kv tps "$(cat "$SCRATCH/direct.$j.out")")
        if [[ -z $tps ]]; then
            record_na "$w" direct "${NODE_NAMES[$j]}: $(first_error "$(cat "$SCRATCH/direct.$j.out")")"
            return
        fi
        total=$(awk -v a="$total" -v b="$tps" 'BEGIN { print a + b }')
    done
    record "$w" direct "$total" TPS "$(fmt_num "$total") TPS" "" \
        "$NODES pgbench x $((CLIENTS / NODES)) clients, one per node, summed"
}

# remote_trace SEARCH_PATH SQL: the commands shardexec sends to the nodes
# for SQL (a statement, or a transaction), taken from
# shardexec.log_remote_sql on its second run in one session (the first
# opens the connections), one word or two per command, comma-separated.
# Empty if SQL fails.
remote_trace()
{
    local out
    out=$(psql_to coordinator 2>&1 >/dev/null <<SQL
SET search_path = $1;
SET shardexec.log_remote_sql = on;
SET client_min_messages = log;
$2
DO \$\$BEGIN RAISE LOG 'bench-trace-mark'; END\$\$;
$2
SQL
    ) || return 0
    sed -n '/bench-trace-mark/,$p' <<<"$out" | sed -n 's/^LOG:  shardexec: sending to node "[^"]*": //p' |
        awk '$1 == "START" || $1 == "COMMIT" || $1 == "PREPARE" || $1 == "ROLLBACK" { printf "%s%s %s", sep, $1, $2; sep = ", "; next }
             $1 == "SET" { printf "%sSET (session settings)", sep; sep = ", "; next }
             { printf "%s%s", sep, $1; sep = ", " }'
}

# trace_note SEARCH_PATH SQL WHAT: a note for the table saying what one
# statement or transaction (WHAT) sends to the nodes.
trace_note()
{
    local trace n
    trace=$(remote_trace "$1" "$2")
    [[ -n $trace ]] || return 0
    n=$(awk -F', ' '{ print NF }' <<<"$trace")
    if [[ $n -le 4 ]]; then
        printf '%s command%s to the nodes per %s: %s' "$n" "$([[ $n -eq 1 ]] || echo s)" "$3" "$trace"
    else
        local starts commits prepares
        starts=$(grep -o 'START TRANSACTION' <<<"$trace" | wc -l)
        commits=$(grep -o 'COMMIT [A-Z]*' <<<"$trace" | wc -l)
        prepares=$(grep -o 'PREPARE TRANSACTION' <<<"$trace" | wc -l)
        printf '%s commands to the nodes per %s: %s START TRANSACTION, %s COMMIT, %s PREPARE TRANSACTION' \
            "$n" "$3" "$starts" "$commits" "$prepares"
        if [[ $prepares -eq 0 && $commits -gt 1 ]]; then
            printf '; the %s remote transactions commit without two-phase commit' "$commits"
        fi
    fi
}

run_router_select()
{
    local w="1. router point select" s
    log "workload 1: router point select, $CLIENTS clients, $DURATION s per arm"
    s=$(write_script direct_select $'\\set r random(1, :nrows)\nSELECT k, v, grp, pad FROM node_kv WHERE rn = :r;')
    direct_tps "$w" "$s"
    s=$(write_script se_select "\\set id random(1, $NROWS)"$'\nSELECT k, v, grp, pad FROM kv WHERE k = :id;')
    record_tps "$w" shardexec "$(pgbench_tps coordinator "$CLIENTS" "$s")" \
        "$(trace_note public "SELECT k, v, grp, pad FROM kv WHERE k = 42;" statement)"
    s=$(write_script fdw_select "\\set id random(1, $NROWS)"$'\nSELECT k, v, grp, pad FROM fdw_kv WHERE k = :id;')
    record_tps "$w" postgres_fdw "$(pgbench_tps coordinator "$CLIENTS" "$s")"
    s=$(write_script px_select "\\set id random(1, $NROWS)"$'\nSELECT * FROM px_get(:id);')
    record_tps "$w" plproxy "$(pgbench_tps coordinator "$CLIENTS" "$s")"
}

run_router_update()
{
    local w="2. router update" s
    log "workload 2: router update, $CLIENTS clients, $DURATION s per arm"
    s=$(write_script direct_update $'\\set r random(1, :nrows)\nUPDATE node_kv SET v = v + 1 WHERE rn = :r;')
    direct_tps "$w" "$s"
    s=$(write_script se_update "\\set id random(1, $NROWS)"$'\nUPDATE kv SET v = v + 1 WHERE k = :id;')
    record_tps "$w" shardexec "$(pgbench_tps coordinator "$CLIENTS" "$s")" \
        "$(trace_note public "UPDATE kv SET v = v + 1 WHERE k = 42;" statement)"
    s=$(write_script fdw_update "\\set id random(1, $NROWS)"$'\nUPDATE fdw_kv SET v = v + 1 WHERE k = :id;')
    record_tps "$w" postgres_fdw "$(pgbench_tps coordinator "$CLIENTS" "$s")"
    s=$(write_script px_update "\\set id random(1, $NROWS)"$'\nSELECT px_upd(:id);')
    record_tps "$w" plproxy "$(pgbench_tps coordinator "$CLIENTS" "$s")"
}

run_tpcb()
{
    local w="3. pgbench TPC-B" s
    log "workload 3: pgbench TPC-B (scale $TPCB_SCALE), $CLIENTS clients, $DURATION s per arm"
    # pgbench's built-in tpcb-like script, written out so that every arm
    # runs the same text; the tables resolve through search_path
    s=$(write_script tpcb "$(cat <<EOF
\\set aid random(1, 100000 * $TPCB_SCALE)
\\set bid random(1, 1 * $TPCB_SCALE)
\\set tid random(1, 10 * $TPCB_SCALE)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
EOF
)")
    record_tps "$w" "direct (one plain database)" \
        "$(pgbench_tps node1 "$CLIENTS" "$s" "-c search_path=tpcb_direct")" "node1 alone, all of pgbench's tables"
    if [[ -n ${TPCB_SE_ERROR:-} ]]; then
        record_na "$w" shardexec "$TPCB_SE_ERROR"
    else
        record_tps "$w" shardexec "$(pgbench_tps coordinator "$CLIENTS" "$s" "-c search_path=tpcb_se")" \
            "$(trace_note tpcb_se "$(sed -n '/^BEGIN/,$p' "$s" | sed 's/:delta/5/g; s/:aid/17/g; s/:tid/3/g; s/:bid/2/g')" transaction)"
    fi
    record_tps "$w" postgres_fdw "$(pgbench_tps coordinator "$CLIENTS" "$s" "-c search_path=tpcb_fdw")" \
        "no two-phase commit: a transaction over several nodes is not atomic"
    record_na "$w" plproxy "a PL/Proxy call runs on one partition, in autocommit; TPC-B's rows span partitions"
}

# ---------------------------------------------------------------------------
# Fan-out workloads (timed by pgmulti)

# fanout WORKLOAD ARM [PGMULTI_ARG...]: run pgmulti, record its median.
# Sets LAST_OUT to pgmulti's output line.
fanout()
{
    local w=$1 arm=$2 out ms
    shift 2
    out=$("$PGMULTI" "$@" 2>&1) || true
    LAST_OUT=$out
    ms=$(kv median_ms "$out")
    if [[ $out == runs=* && -n $ms ]]; then
        record "$w" "$arm" "$ms" ms "$(fmt_num "$ms" 1) ms" "$(kv result "$out")" \
            "median of $(kv runs "$out"), min $(fmt_num "$(kv min_ms "$out")" 1) ms"
    else
        record_na "$w" "$arm" "$(first_error "$out")"
    fi
}

# direct_jobs SQL: one pgmulti job per node running SQL.
direct_jobs()
{
    local node
    for node in "${NODE_NAMES[@]}"; do
        printf '%s@@%s\n' "$(conninfo "$node" bench_direct)" "$1"
    done
}

# se_set M: the session settings of the shardexec arm with m = M.
se_set()
{
    printf 'SET shardexec.max_connections_per_query = %s' "$1"
}

run_fanout_count()
{
    local w="4. fan-out count(*), sum(v)" m runs=(-w 1 -n 7) direct
    local q="SELECT count(*), sum(v) FROM kv"
    log "workload 4: fan-out count/sum over $(fmt_num "$NROWS") rows"
    mapfile -t direct < <(direct_jobs "SELECT count(*), sum(v) FROM node_kv")
    fanout "$w" "direct (4 nodes in parallel)" "${runs[@]}" -c sum "${direct[@]}"
    for m in 1 4 32; do
        fanout "$w" "shardexec m=$m" "${runs[@]}" -c sum -s "$(se_set $m)" -q "$q" "$(conninfo coordinator)"
    done
    fanout "$w" "shardexec m=1, use_pipeline off" "${runs[@]}" -c sum -s "$(se_set 1)" \
        -s "SET shardexec.use_pipeline = off" -q "$q" "$(conninfo coordinator)"
    fanout "$w" postgres_fdw "${runs[@]}" -c sum -q "SELECT count(*), sum(v) FROM fdw_kv" "$(conninfo coordinator)"
    fanout "$w" plproxy "${runs[@]}" -c sum -q "SELECT sum(n), sum(s) FROM px_count()" "$(conninfo coordinator)"
}

run_fanout_group()
{
    local w="5. GROUP BY + ORDER BY + LIMIT" m runs=(-w 1 -n 7) direct
    local q="SELECT grp, sum(v) AS s, count(*) AS n FROM kv GROUP BY grp ORDER BY s DESC, grp LIMIT 10"
    log "workload 5: GROUP BY grp (1,000 groups) ORDER BY sum DESC LIMIT 10"
    mapfile -t direct < <(direct_jobs "SELECT grp, sum(v), count(*) FROM node_kv GROUP BY grp")
    fanout "$w" "direct (4 nodes in parallel)" "${runs[@]}" -c group -l 10 "${direct[@]}"
    for m in 1 4 32; do
        fanout "$w" "shardexec m=$m" "${runs[@]}" -c group -l 10 -s "$(se_set $m)" -q "$q" "$(conninfo coordinator)"
    done
    fanout "$w" postgres_fdw "${runs[@]}" -c group -l 10 -q "${q//FROM kv/FROM fdw_kv}" "$(conninfo coordinator)"
    fanout "$w" plproxy "${runs[@]}" -c group -l 10 \
        -q "SELECT grp, sum(s) AS s, sum(n) AS n FROM px_group() GROUP BY grp ORDER BY s DESC, grp LIMIT 10" \
        "$(conninfo coordinator)"
}

# watchers: pgmulti -W options, one per node.
watchers()
{
    local node
    for node in "${NODE_NAMES[@]}"; do
        printf '%s\n' -W "$(conninfo "$node" bench_watch)"
    done
}

# record_connections ARM: workload 9 from the last pgmulti output's watch=.
record_connections()
{
    local w="9. connections per node during the 200 ms fan-out" arm=$1 watch
    watch=$(kv watch "$LAST_OUT")
    if [[ -n $watch ]]; then
        record "$w" "$arm" "" "" "${watch//,/ \/ }" "" "peak per node (node1 / node2 / node3 / node4), from pg_stat_activity every 5 ms"
    else
        record_na "$w" "$arm" "$(first_error "$LAST_OUT")"
    fi
}

run_fanout_slow()
{
    local w="6. fan-out, 200 ms per shard query" m node table runs=(-w 1 -n 3)
    local -a jobs=() watch=()
    log "workload 6 and 9: $SHARDS shard queries of $SLOW_SECONDS s each; connections per node"
    mapfile -t watch < <(watchers)
    if [[ -n ${SLOW_SHARDS:-} ]]; then
        while read -r node table; do
            jobs+=("$(conninfo "$node" bench_direct)@@SELECT count(*), sum(x) FROM $table")
        done <<<"$SLOW_SHARDS"
        fanout "$w" "direct ($SHARDS shard queries in parallel)" "${runs[@]}" -c sum -A bench_direct "${watch[@]}" "${jobs[@]}"
        record_connections "direct"
    else
        record_na "$w" direct "shardexec's slow table could not be created, so there are no shard views to query"
    fi
    for m in 1 4 32; do
        fanout "$w" "shardexec m=$m" "${runs[@]}" -c sum -s "$(se_set $m)" "${watch[@]}" \
            -q "SELECT count(*), sum(x) FROM slow" "$(conninfo coordinator)"
        record_connections "shardexec m=$m"
    done
    fanout "$w" postgres_fdw "${runs[@]}" -c sum -A postgres_fdw "${watch[@]}" \
        -q "SELECT count(*), sum(x) FROM fdw_slow" "$(conninfo coordinator)"
    record_connections postgres_fdw
    fanout "$w" plproxy "${runs[@]}" -c sum -A plproxy "${watch[@]}" \
        -q "SELECT sum(n), sum(s) FROM px_slow()" "$(conninfo coordinator)"
    record_connections plproxy
}

# streamed WORKLOAD ARM [PGMULTI_ARG...]: like fanout, for workload 7: the
# figure is the median time, and the note gives the coordinator backend's
# peak memory (VmHWM) before and after.
streamed()
{
    local w=$1 arm=$2 out ms hwm0 hwm1 note
    shift 2
    out=$("$PGMULTI" "$@" 2>&1) || true
    ms=$(kv median_ms "$out")
    if [[ $out == runs=* && -n $ms ]]; then
        hwm0=$(kv hwm_before_kb "$out")
        hwm1=$(kv hwm_after_kb "$out")
        note="median of $(kv runs "$out")"
        if [[ -n $hwm1 ]]; then
            note+="; coordinator backend peak RSS $(fmt_num "$((hwm1 / 1024))") MB (was $(fmt_num "$((hwm0 / 1024))") MB before the first run)"
        else
            note+="; memory: n/a (the nodes' backends, one per node)"
        fi
        record "$w" "$arm" "$ms" ms "$(fmt_num "$ms" 0) ms${hwm1:+, peak $((hwm1 / 1024)) MB}" \
            "$(kv rows "$out")_rows_$(kv bytes "$out")_bytes" "$note"
    else
        record_na "$w" "$arm" "$(first_error "$out")"
    fi
}

run_streamed()
{
    local w="7. streamed result, k and v of every row" m runs=(-w 0 -n 3) direct
    log "workload 7: COPY (SELECT k, v ...) TO STDOUT, $(fmt_num "$NROWS") rows, to /dev/null"
    mapfile -t direct < <(direct_jobs "COPY (SELECT k, v FROM node_kv) TO STDOUT")
    streamed "$w" "direct (4 nodes in parallel)" "${runs[@]}" "${direct[@]}"
    for m in 32 4 1; do
        streamed "$w" "shardexec m=$m" "${runs[@]}" -M -s "$(se_set $m)" \
            -q "COPY (SELECT k, v FROM kv) TO STDOUT" "$(conninfo coordinator)"
    done
    streamed "$w" "shardexec m=32, binary_transfer off" "${runs[@]}" -M -s "$(se_set 32)" \
        -s "SET shardexec.binary_transfer = off" -q "COPY (SELECT k, v FROM kv) TO STDOUT" "$(conninfo coordinator)"
    streamed "$w" postgres_fdw "${runs[@]}" -M -q "COPY (SELECT k, v FROM fdw_kv) TO STDOUT" "$(conninfo coordinator)"
    streamed "$w" plproxy "${runs[@]}" -M -q "COPY (SELECT k, v FROM px_scan()) TO STDOUT" "$(conninfo coordinator)"
}

# run_plugins: workload 10 (issue 7): router point select with no plugin
# and with three no-op plugins on the execute pipeline (bench/noop_plugin.c,
# compiled against the installed plugin_api.h), in 4 rounds of (none,
# plugins), a quarter of $DURATION each (at least 2 s), so that drift in
# the machine's load falls on both alike.
run_plugins()
{
    local w="10. router point select, plugins" inc so out i tps none=0 plug=0 quarter active rounds=4
    local list="bench_noop1,bench_noop2,bench_noop3"
    log "workload 10: router point select without plugins and with 3 no-op execute plugins"
    if [[ $(sql coordinator "SELECT count(*) FROM pg_proc WHERE proname = 'register_plugin' AND pronamespace = 'shardexec'::regnamespace" 2>/dev/null || echo 0) == 0 ]]; then
        record_na "$w" "shardexec, 3 no-op execute plugins" "shardexec.register_plugin does not exist yet (issue 7)"
        return
    fi
    inc=$("$PG_BINDIR/pg_config" --includedir-server)
    if [[ ! -f $inc/extension/shardexec/plugin_api.h ]]; then
        record_na "$w" "shardexec, 3 no-op execute plugins" "$inc/extension/shardexec/plugin_api.h is not installed"
        return
    fi
    so=$SCRATCH/bench_noop_plugin.so
    if ! out=$(cc -O2 -fPIC -shared -Wall -I"$inc" -I"$("$PG_BINDIR/pg_config" --includedir)" \
        -o "$so" "$BENCH_DIR/noop_plugin.c" 2>&1); then
        record_na "$w" "shardexec, 3 no-op execute plugins" "bench/noop_plugin.c does not compile: $(first_error "$out")"
        return
    fi
    chmod 755 "$so"
    if ! out=$(psql_to coordinator 2>&1 <<SQL
CREATE FUNCTION bench_noop_handler(internal) RETURNS internal
    AS '$so', 'bench_noop_handler' LANGUAGE C STRICT;
SELECT shardexec.register_plugin('bench_noop' || i, 'bench_noop_handler'::regproc)
  FROM generate_series(1, 3) AS i;
SQL
    ); then
        record_na "$w" "shardexec, 3 no-op execute plugins" "$(first_error "$out")"
        return
    fi
    active=$(PGOPTIONS="-c shardexec.plugins=$list" sql coordinator \
        "SELECT count(*) FROM shardexec.plugins WHERE active AND plugin_name LIKE 'bench_noop%'" 2>&1 || true)
    quarter=$(((DURATION + 3) / 4))
    [[ $quarter -ge 2 ]] || quarter=2
    for ((i = 0; i < rounds; i++)); do
        out=$(PGBENCH_SECONDS=$quarter pgbench_tps coordinator "$CLIENTS" "$SCRATCH/se_select.sql")
        tps=$(kv tps "$out")
        [[ -n $tps ]] || { record_na "$w" "shardexec, no plugin" "$(first_error "$out")"; return; }
        none=$(awk -v a="$none" -v b="$tps" -v n="$rounds" 'BEGIN { print a + b / n }')
        out=$(PGBENCH_SECONDS=$quarter pgbench_tps coordinator "$CLIENTS" "$SCRATCH/se_select.sql" "-c shardexec.plugins=$list")
        tps=$(kv tps "$out")
        [[ -n $tps ]] || { record_na "$w" "shardexec, 3 no-op execute plugins" "$(first_error "$out")"; return; }
        plug=$(awk -v a="$plug" -v b="$tps" -v n="$rounds" 'BEGIN { print a + b / n }')
    done
    record "$w" "shardexec, no plugin" "$none" TPS "$(fmt_num "$none") TPS" "" \
        "mean of $rounds runs of $quarter s, alternating with the next row's"
    record "$w" "shardexec, 3 no-op execute plugins" "$plug" TPS "$(fmt_num "$plug") TPS" "" \
        "$(awk -v a="$plug" -v b="$none" 'BEGIN { printf "%+.1f%%", (a / b - 1) * 100 }') against no plugin; shardexec.plugins = '$list' ($active active in such a session)"
}

# ---------------------------------------------------------------------------
# Report

# figure W ARM: the recorded value of workload number W for ARM ("direct"
# matches the workload's direct arm, whatever its label); empty if n/a.
figure()
{
    awk -F'\t' -v w="$1. " -v a="$2" '
        index($1, w) == 1 && ($2 == a || (a == "direct" && $2 ~ /^direct/)) { print $3; exit }' "$RESULTS_TSV"
}

# goal TEXT VALUE OP LIMIT: one line of the goals list: VALUE (a ratio)
# compared with LIMIT by OP (le or ge).
goal()
{
    local text=$1 value=$2 op=$3 limit=$4 verdict
    if [[ -z $value ]]; then
        verdict="not measured"
    elif awk -v v="$value" -v l="$limit" -v op="$op" 'BEGIN { exit !((op == "ge") ? v >= l : v <= l) }'; then
        verdict="met ($(printf '%.2f' "$value"))"
    else
        verdict="**not met** ($(printf '%.2f' "$value"))"
    fi
    printf -- '- %s: %s\n' "$text" "$verdict"
}

# ratio A B: A / B, empty if either is empty or B is 0.
ratio()
{
    [[ -n $1 && -n $2 ]] || return 0
    awk -v a="$1" -v b="$2" 'BEGIN { if (b != 0) printf "%.4f", a / b }'
}

# goals: the goals of issue 8, checked against this run's figures.
goals()
{
    local d
    d=$(figure 1 direct)
    goal "router point select >= 0.4 x direct" "$(ratio "$(figure 1 shardexec)" "$d")" ge 0.4
    goal "router point select >= 2 x PL/Proxy" "$(ratio "$(figure 1 shardexec)" "$(figure 1 plproxy)")" ge 2
    goal "router update >= 0.5 x direct" "$(ratio "$(figure 2 shardexec)" "$(figure 2 direct)")" ge 0.5
    goal "fan-out count/sum <= 1.5 x direct (m=32)" "$(ratio "$(figure 4 "shardexec m=32")" "$(figure 4 direct)")" le 1.5
    goal "GROUP BY <= 1.5 x direct (m=32)" "$(ratio "$(figure 5 "shardexec m=32")" "$(figure 5 direct)")" le 1.5
    goal "200 ms fan-out <= 1.1 x direct (m=32)" "$(ratio "$(figure 6 "shardexec m=32")" "$(figure 6 direct)")" le 1.1
    goal "200 ms fan-out <= 1.15 x 200 ms (m=32, issue 4)" \
        "$(ratio "$(figure 6 "shardexec m=32")" "$(awk -v s="$SLOW_SECONDS" 'BEGIN { print s * 1000 }')")" le 1.15
    goal "large result <= 3 x direct (m=32; memory: see its row)" "$(ratio "$(figure 7 "shardexec m=32")" "$(figure 7 direct)")" le 3
    goal "COPY >= 0.5 x COPY into one local table" "$(ratio "$(figure 8 shardexec)" "$(figure 8 direct)")" ge 0.5
    goal "3 no-op execute plugins keep >= 0.97 x the router throughput without plugins (issue 7)" \
        "$(ratio "$(figure 10 "shardexec, 3 no-op execute plugins")" "$(figure 10 "shardexec, no plugin")")" ge 0.97
}

# write_report FILE: the table (sorted by workload number, arms in the
# order they ran), ratios against the workload's direct arm, result checks,
# the goals; to the screen and to FILE.
write_report()
{
    local file=$1 table facts
    mkdir -p "$(dirname "$file")"
    table=$(sort -s -t$'\t' -k1,1n "$RESULTS_TSV" | awk -F'\t' '
        BEGIN { OFS = "" }
        { w[NR] = $1; arm[NR] = $2; val[NR] = $3; unit[NR] = $4; disp[NR] = $5; res[NR] = $6; note[NR] = $7
          if (arm[NR] ~ /^direct/ && !(($1) in base) && $3 != "") { base[$1] = $3; bres[$1] = $6 } }
        END {
          print "| workload | arm | figure | vs direct | notes |"
          print "|---|---|---|---|---|"
          for (i = 1; i <= NR; i++) {
            ratio = ""
            if (arm[i] ~ /^direct/) ratio = (val[i] != "" ? "1" : "")
            else if (val[i] != "" && (w[i] in base) && base[w[i]] > 0) ratio = sprintf("%.2f", val[i] / base[w[i]])
            n = note[i]
            if (res[i] != "" && (w[i] in bres) && bres[w[i]] != "" && res[i] != bres[w[i]])
              n = "RESULT DIFFERS from direct (" res[i] " vs " bres[w[i]] "); " n
            wl = (i > 1 && w[i] == w[i - 1]) ? "" : w[i]
            print "| ", wl, " | ", arm[i], " | ", disp[i], " | ", (ratio == "" ? "" : ratio "x"), " | ", n, " |"
          }
        }')
    facts=$(machine_facts)
    {
        echo "# shardexec benchmark: scale $SCALE"
        echo
        echo "$facts"
        echo
        echo "Ratios are the arm's figure divided by the direct figure of the same workload:"
        echo "for TPS and rows/s higher is better, for ms lower is better."
        echo "m is shardexec.max_connections_per_query; with $((SHARDS / NODES)) shards per node, m=32 runs"
        echo "exactly as the default m=8 does (memory-strict), m=1 and m=4 are connection-strict."
        echo "The fan-out answers of every arm are compared with direct's; a difference is flagged in the notes."
        echo
        echo "$table"
        echo
        echo "Goals of issue 8 (goals, not assertions):"
        echo
        goals
    } >"$file"
    echo
    cat "$file"
    echo
    log "written to $file (total run time $(($(date +%s) - START_EPOCH)) s)"
}

# machine_facts: the machine, the software and the run's parameters.
machine_facts()
{
    local cpu mem commit dirty changed=""
    cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
    mem=$(free -g | awk '/^Mem:/ { print $2 " GiB" }')
    commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    dirty=$(git -C "$REPO_ROOT" status --porcelain -- src sql Makefile shardexec--*.sql 2>/dev/null | head -c1)
    if [[ $SO_SUM_START != "$SO_SUM_END" ]]; then
        changed=" **The installed shardexec.so changed during the run ($SO_SUM_START -> $SO_SUM_END): the coordinator kept the library it loaded at start, but figures may be perturbed by the concurrent build.**"
    fi
    cat <<EOF
- date: $(date -u '+%Y-%m-%d %H:%M UTC'); run time $(($(date +%s) - START_EPOCH)) s (loading $LOAD_SECONDS s)
- machine: $(nproc) CPUs ($cpu), $mem RAM, $(uname -sr); load average $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work on the machine shares its CPUs with the benchmark)
- PostgreSQL: $("$PG_BINDIR/postgres" --version | sed 's/^postgres (PostgreSQL) //'); PL/Proxy $(dpkg-query -W -f='${Version}' postgresql-15-plproxy 2>/dev/null || echo '?')
- shardexec: $(if [[ ${SKIP_BUILD:-0} == 1 ]]; then echo "the installed shardexec.so (SKIP_BUILD=1, installed $SO_MTIME_START), working tree at"; else echo "built by this run from"; fi) commit $commit${dirty:+ plus uncommitted changes}; shardexec.so sha256 ${SO_SUM_START}.${changed}
- scale $SCALE: kv $(fmt_num "$NROWS") rows, $SHARDS shards on $NODES nodes; pgbench scale $TPCB_SCALE; $CLIENTS clients x $DURATION s per pgbench run
- every instance: shared_buffers 256MB, work_mem 4MB, synchronous_commit off, autovacuum off, jit off (bench/README.md)
EOF
}
