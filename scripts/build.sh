#!/usr/bin/env bash
# scripts/build.sh: install missing build dependencies, then build shardexec
# with warnings as errors and install it into the system PostgreSQL 15.
#
# Runs as root: `make install` writes into /usr/lib/postgresql/15/lib and
# /usr/share/postgresql/15/extension, where every PostgreSQL instance on the
# machine (including the test and demo instances, which run as postgres)
# loads it from.  The build itself happens in the checkout, as root.
#
# Usage: bash scripts/build.sh
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$repo_root/scripts/install-deps.sh"

cd "$repo_root"
echo "==> make -j2 WERROR=1" >&2
make -j2 WERROR=1
echo "==> make install" >&2
make install
# the third-party example plugin of the tests, built with PGXS against the
# plugin header just installed, as a plugin outside this repository would be
echo "==> make -C test/plugin_example WERROR=1 install" >&2
make -C test/plugin_example WERROR=1 install
