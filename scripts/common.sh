# shellcheck shell=bash
# scripts/common.sh: helpers shared by build.sh, test.sh and demo.sh.
#
# Sourced, never run.  It holds the few things every script needs to agree on:
#
#   - where the repository and the PostgreSQL 15 binaries are;
#   - how to run a command as the `postgres` OS user.  PostgreSQL refuses to
#     run as root, and the scripts are run as root (CI, a fresh clone), so
#     every server, pg_regress and prove run goes through pg_run, which starts
#     the command with a small, explicit environment (no PGHOST/PGPORT/
#     TEMP_CONFIG leaking in from the caller) in a directory postgres owns;
#   - how to pick a free TCP port on 127.0.0.1.  Ports are never assumed:
#     pick_free_port tries random ports below the kernel's ephemeral range
#     (so that a remembered port is not later taken as the source port of an
#     outgoing connection) and keeps the first one it can bind and listen on.
#
# The checkout itself may be root-owned and unreadable by postgres: callers
# copy what postgres needs into scratch directories made by make_scratch.

REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PG_PKGLIBDIR=${PG_PKGLIBDIR:-/usr/lib/postgresql/15/lib}
PG_REGRESS=${PG_REGRESS:-$PG_PKGLIBDIR/pgxs/src/test/regress/pg_regress}
PG_PERL_LIB=${PG_PERL_LIB:-$PG_PKGLIBDIR/pgxs/src/test/perl}
PG_OS_USER=postgres

# log MESSAGE...: print a progress line on stderr.
log()
{
    printf '==> %s\n' "$*" >&2
}

# die MESSAGE...: print an error on stderr and exit 1.
die()
{
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# pg_run DIR [VAR=value...] COMMAND [ARG...]: run COMMAND as the postgres OS
# user, with DIR as working directory and a clean environment: PATH starts
# with the PostgreSQL 15 binaries, LANG is C.UTF-8 (deterministic messages
# and collation), plus the VAR=value pairs given.  DIR must be reachable by
# postgres.
pg_run()
{
    local dir=$1
    shift
    (
        cd "$dir" || exit 1
        runuser -u "$PG_OS_USER" -- env -i \
            HOME="$(getent passwd "$PG_OS_USER" | cut -d: -f6)" \
            USER="$PG_OS_USER" LOGNAME="$PG_OS_USER" \
            PATH="$PG_BINDIR:/usr/local/bin:/usr/bin:/bin" \
            LANG=C.UTF-8 TZ="${TZ:-UTC}" \
            "$@"
    )
}

# pg_can_write DIR: true if the postgres OS user can create files in DIR.
pg_can_write()
{
    runuser -u "$PG_OS_USER" -- test -w "$1" -a -x "$1"
}

# make_scratch TAG: create a fresh directory owned by postgres under $TMPDIR
# (default /tmp) and print its path.
make_scratch()
{
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/shardexec-$1.XXXXXX")
    chown "$PG_OS_USER:" "$dir"
    chmod 755 "$dir"
    if ! pg_can_write "$dir"; then
        rm -rf "$dir"
        die "the postgres OS user cannot reach $dir; set TMPDIR to a directory it can (default /tmp)"
    fi
    printf '%s\n' "$dir"
}

# pick_free_port [EXCLUDED_PORT...]: print a TCP port in 20000-32767 that is
# free on 127.0.0.1 right now and not among the excluded ports.
pick_free_port()
{
    perl -MSocket -e '
        my %excluded = map { $_ => 1 } @ARGV;
        for (1 .. 500)
        {
            my $port = 20000 + int(rand(12768));
            next if $excluded{$port};
            socket(my $s, PF_INET, SOCK_STREAM, getprotobyname("tcp")) or die "socket: $!";
            # no SO_REUSEADDR: a port with connections in TIME_WAIT is skipped too
            if (bind($s, sockaddr_in($port, inet_aton("127.0.0.1"))) && listen($s, 1))
            {
                close $s;
                print "$port\n";
                exit 0;
            }
            close $s;
        }
        die "no free TCP port found on 127.0.0.1\n";
    ' "$@"
}
