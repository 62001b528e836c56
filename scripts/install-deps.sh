#!/usr/bin/env bash
# scripts/install-deps.sh: install, as root, the Debian 12 packages needed to
# build, test and demo shardexec.
#
#   postgresql-15             server binaries (initdb, pg_ctl, postgres, psql,
#                             pgbench); on Debian 12 the contrib modules are
#                             part of this package, there is no separate
#                             postgresql-contrib-15 to install
#   postgresql-server-dev-15  PGXS, server headers, pg_regress and the TAP
#                             modules (PostgreSQL::Test::Cluster)
#   libpq-dev                 libpq headers: the extension is a libpq client
#   libipc-run-perl           IPC::Run, required by PostgreSQL::Test::Utils
#   perl                      prove and Test::More for the TAP tests
#   build-essential           gcc, make
#   postgresql-15-plproxy     PL/Proxy, for comparison in bench/
#   sqlsmith                  random query generator, for fuzzing
#
# Each package is checked with dpkg-query first; when everything is present
# (the usual case, and always in CI after the first run) apt is not touched at
# all, so this is fast and works offline.  Otherwise it runs apt-get update
# and a non-interactive install of only the missing packages.
#
# Installing postgresql-15 makes Debian create a default cluster "15/main";
# we leave it alone and never depend on it (the tests and the demo start
# their own instances on free ports).  While apt runs, a temporary
# /usr/sbin/policy-rc.d (only if none exists) keeps the package scripts from
# starting that cluster's service.
set -euo pipefail

packages=(
    postgresql-15
    postgresql-server-dev-15
    libpq-dev
    libipc-run-perl
    perl
    build-essential
    postgresql-15-plproxy
    sqlsmith
)

if [[ $(id -u) -ne 0 ]]; then
    echo "error: $0 must run as root (it may call apt-get)" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "==> installing missing packages: ${missing[*]}" >&2

policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from shardexec scripts/install-deps.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
