# shardexec: PGXS build.
#
# EXTVERSION must match default_version in shardexec.control and the
# install script shardexec--$(EXTVERSION).sql.

EXTENSION = shardexec
EXTVERSION = 0.1

MODULE_big = shardexec
OBJS = \
	src/shardexec.o \
	src/metadata/metadata_cache.o \
	src/metadata/node.o \
	src/metadata/distribute.o \
	src/metadata/hashing.o \
	src/metadata/ddl.o \
	src/fdw/shardexec_fdw.o \
	src/fdw/option.o \
	src/fdw/deparse.o \
	src/connection/connection.o \
	src/connection/remote_command.o \
	src/connection/shared_pool.o \
	src/connection/transaction_recovery.o \
	src/planner/planner.o \
	src/planner/router.o \
	src/planner/deparse_query.o \
	src/planner/distributed_scan.o \
	src/planner/multi_shard.o \
	src/planner/insert_planner.o \
	src/executor/distributed_executor.o \
	src/executor/executor_testing.o \
	src/executor/shard_scan.o \
	src/executor/shard_modify.o \
	src/plugin/plugin_cache.o \
	src/plugin/plugin_registry.o \
	src/plugin/pipelines.o \
	src/plugin/builtin_observe.o \
	src/plugin/builtin_hosts.o \
	src/plugin/builtin_failover.o \
	src/plugin/builtin_routing.o \
	src/plugin/builtin_credentials.o \
	src/plugin/builtin_fault_injection.o

DATA = shardexec--$(EXTVERSION).sql

# the plugin interface, for plugins built outside shardexec: installed as
# $(pg_config --includedir-server)/extension/shardexec/plugin_api.h
HEADERS = src/include/shardexec/plugin_api.h

PG_CPPFLAGS = -I$(srcdir)/src/include -I$(libpq_srcdir)
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK_INTERNAL = $(libpq)

# pg_regress tests run through scripts/test.sh, which starts a temporary
# instance with shardexec preloaded; see README.md.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
EXTRA_CLEAN = results regression.diffs regression.out tmp_check log

# no LLVM bitcode: it doubles the build time and nothing uses it
override with_llvm = no
# rebuild objects when a header they include changes
override autodepend = yes

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

ifdef WERROR
override CFLAGS += -Werror
endif
