#!/usr/bin/env bash
# scripts/test.sh: THE test command.  Builds and installs shardexec, runs the
# pg_regress tests and the TAP tests, and ends with one line
# "N passed, N failed" (pg_regress tests plus TAP test files).  Exits
# non-zero if anything failed.  `.ci/run` calls exactly `bash scripts/test.sh`.
#
# Usage (as root):
#   bash scripts/test.sh            build, then pg_regress and TAP
#   bash scripts/test.sh regress    build, then pg_regress only
#   bash scripts/test.sh tap        build, then TAP only
# Environment:
#   TESTS="a b"       run only these pg_regress tests (sql/a.sql, sql/b.sql)
#   TAP_TESTS="001_x" run only these TAP files (test/t/001_x.pl)
#   PROVE_FLAGS=...   extra flags for prove (e.g. -v)
#   SKIP_BUILD=1      do not run scripts/build.sh (use what is installed)
#   KEEP_SCRATCH=1    keep the scratch directory even when everything passed
#
# Why it looks like this:
#   - PostgreSQL refuses to run as root, so pg_regress, prove and every server
#     they start run as the postgres OS user (scripts/common.sh: pg_run).
#   - The checkout may be root-owned and unreadable by postgres (a fresh clone
#     in CI), so sql/, expected/ and test/ are copied into a scratch directory
#     under /tmp owned by postgres; results/, regression.diffs, tmp_check/ and
#     all logs are written there.  The scratch directory is removed when
#     everything passed and kept (its path printed) otherwise.
#   - The summary line is always the last line of output.
#   - Ports are never assumed.  pg_regress gets a free port on 127.0.0.1
#     picked just before it starts (--temp-instance, --host=127.0.0.1: TCP
#     only, so the instance can also serve as its own nodes at
#     127.0.0.1:$PGPORT).  TAP tests get theirs from PostgreSQL::Test::Cluster,
#     which reserves ports in tmp_check/portlock.
#   - The pg_regress instance is configured by test/regress.conf
#     (shared_preload_libraries = 'shardexec', prepared transactions, ...).
#   - Both parts always run, so one failing does not hide the other's result.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$REPO_ROOT/scripts/common.sh"

usage()
{
    sed -n '/^# Usage/,/^# Why/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

mode=${1:-all}
case $mode in
    all | regress | tap) ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac
run_regress=0
run_tap=0
[[ $mode == all || $mode == regress ]] && run_regress=1
[[ $mode == all || $mode == tap ]] && run_tap=1

[[ $(id -u) -eq 0 ]] || die "run $0 as root (it installs the extension and runs tests as postgres)"

# ---------------------------------------------------------------------------
# The plan: which pg_regress tests and TAP files will run.

schedule=""
regress_tests=()
if [[ $run_regress -eq 1 ]]; then
    if [[ -n ${TESTS:-} ]]; then
        read -ra regress_tests <<<"$TESTS"
        for t in "${regress_tests[@]}"; do
            [[ -f $REPO_ROOT/sql/$t.sql ]] || die "TESTS names \"$t\", but sql/$t.sql does not exist"
        done
    elif [[ -f $REPO_ROOT/test/schedule ]]; then
        schedule=$REPO_ROOT/test/schedule
        # "test: a b c" lines; everything else is a comment or blank
        read -ra regress_tests <<<"$(sed -n 's/^[[:space:]]*test:[[:space:]]*//p' "$schedule" | tr '\n' ' ')"
    else
        for f in "$REPO_ROOT"/sql/*.sql; do
            [[ -e $f ]] || continue
            t=${f##*/}
            regress_tests+=("${t%.sql}")
        done
    fi
fi

tap_tests=()
if [[ $run_tap -eq 1 ]]; then
    if [[ -n ${TAP_TESTS:-} ]]; then
        read -ra names <<<"$TAP_TESTS"
        for t in "${names[@]}"; do
            t=${t##*/}
            t=${t%.pl}.pl
            [[ -f $REPO_ROOT/test/t/$t ]] || die "TAP_TESTS names \"$t\", but test/t/$t does not exist"
            tap_tests+=("$t")
        done
    else
        for f in "$REPO_ROOT"/test/t/*.pl; do
            [[ -e $f ]] || continue
            tap_tests+=("${f##*/}")
        done
    fi
fi

passed=0
failed=0
scratch=""

# summary_and_exit: remove the scratch directory if everything passed (keep it
# and say where otherwise), then print the summary line last and exit.
summary_and_exit()
{
    trap - EXIT
    if [[ -n $scratch ]]; then
        if [[ $failed -eq 0 && ${KEEP_SCRATCH:-0} != 1 ]]; then
            rm -rf "$scratch"
        else
            echo "test files, results and logs kept in $scratch" >&2
        fi
    fi
    echo
    echo "$passed passed, $failed failed"
    if [[ $failed -ne 0 ]]; then
        exit 1
    fi
    exit 0
}

# ---------------------------------------------------------------------------
# Build and install.  A failed build fails every planned test.

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    if ! bash "$REPO_ROOT/scripts/build.sh"; then
        echo "BUILD FAILED: no tests were run" >&2
        failed=$((${#regress_tests[@]} + ${#tap_tests[@]}))
        [[ $failed -gt 0 ]] || failed=1
        summary_and_exit
    fi
fi

scratch=$(make_scratch test)
trap 'echo "test.sh stopped early; files and logs kept in $scratch" >&2' EXIT

# copy_for_postgres SRC... DEST: copy into a postgres-owned scratch subdir.
copy_for_postgres()
{
    local dest=${*: -1}
    mkdir -p "$dest"
    cp -R "${@:1:$#-1}" "$dest/"
    chown -R "$PG_OS_USER:" "$dest"
}

# ---------------------------------------------------------------------------
# pg_regress

regress()
{
    local dir=$scratch/regress out=$scratch/regress.out
    local total=${#regress_tests[@]} ok rc=0 port src
    local -a srcs=() args

    if [[ $total -eq 0 ]]; then
        log "pg_regress: no tests (sql/*.sql is empty)"
        return
    fi

    for src in sql expected input output data; do
        [[ -d $REPO_ROOT/$src ]] && srcs+=("$REPO_ROOT/$src")
    done
    srcs+=("$REPO_ROOT/test/regress.conf")
    [[ -n $schedule ]] && srcs+=("$schedule")
    copy_for_postgres "${srcs[@]}" "$dir"

    # shellcheck disable=SC2119 # no ports to exclude
    port=$(pick_free_port)
    args=(
        --temp-instance="$dir/tmp_check"
        --temp-config="$dir/regress.conf"
        --host=127.0.0.1
        --port="$port"
        --bindir="$PG_BINDIR"
        --inputdir="$dir"
        --outputdir="$dir"
        --dbname=regression
    )
    if [[ -n $schedule ]]; then
        args+=(--schedule="$dir/schedule")
    else
        args+=("${regress_tests[@]}")
    fi

    log "pg_regress: $total tests, temporary instance on 127.0.0.1:$port"
    pg_run "$dir" "$PG_REGRESS" "${args[@]}" 2>&1 | tee "$out" || rc=$?

    # PG 15 prints "test NAME ... ok" (or "     NAME ... ok" in a parallel
    # group) per passing test.  Anything not reported ok failed, including
    # tests that never ran because the instance did not start.
    ok=$(grep -cE '\.\.\. ok( |$)' "$out" || true)
    [[ $ok -le $total ]] || ok=$total
    passed=$((passed + ok))
    failed=$((failed + total - ok))
    if [[ $rc -ne 0 && $ok -eq $total ]]; then
        failed=$((failed + 1)) # pg_regress itself failed after the tests
    fi

    if [[ $rc -ne 0 || $ok -ne $total ]]; then
        echo "pg_regress FAILED (exit code $rc)" >&2
        if [[ -s $dir/regression.diffs ]]; then
            echo "----- regression.diffs (first 300 lines) -----"
            head -n 300 "$dir/regression.diffs"
        fi
        if [[ -f $dir/log/postmaster.log ]]; then
            echo "----- log/postmaster.log (last 40 lines) -----"
            tail -n 40 "$dir/log/postmaster.log"
        fi
        if [[ -f $dir/log/initdb.log && ! -f $dir/log/postmaster.log ]]; then
            echo "----- log/initdb.log (last 40 lines) -----"
            tail -n 40 "$dir/log/initdb.log"
        fi
        echo "-----"
    fi
}

# ---------------------------------------------------------------------------
# TAP (prove), one run per test file so each file counts once.

tap()
{
    local dir=$scratch/tap t name rc f
    local -a flags=()

    if [[ ${#tap_tests[@]} -eq 0 ]]; then
        log "TAP: no tests (test/t/*.pl is empty)"
        return
    fi
    read -ra flags <<<"${PROVE_FLAGS:-}"

    # a copy of test/: t/, perl/ and anything the tests read next to them;
    # PostgreSQL::Test::Utils writes tmp_check/ under $TESTDIR
    copy_for_postgres "$REPO_ROOT/test/." "$dir"

    for t in "${tap_tests[@]}"; do
        name=${t%.pl}
        log "TAP: t/$t"
        rc=0
        pg_run "$dir" \
            PG_REGRESS="$PG_REGRESS" \
            TESTDIR="$dir" \
            PG_TEST_PORT_DIR="$dir/tmp_check/portlock" \
            prove "${flags[@]}" -I "$PG_PERL_LIB" -I "$dir/perl" "t/$t" || rc=$?
        if [[ $rc -eq 0 ]]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "TAP t/$t FAILED (exit code $rc)" >&2
            f=$dir/tmp_check/log/regress_log_$name
            if [[ -f $f ]]; then
                echo "----- tmp_check/log/regress_log_$name (last 80 lines) -----"
                tail -n 80 "$f"
            fi
            for f in "$dir/tmp_check/log/${name}"_*.log; do
                [[ -f $f ]] || continue
                echo "----- tmp_check/log/${f##*/} (last 30 lines) -----"
                tail -n 30 "$f"
            done
            echo "-----"
        fi
    done
}

if [[ $run_regress -eq 1 ]]; then
    regress
fi
if [[ $run_tap -eq 1 ]]; then
    tap
fi
summary_and_exit
