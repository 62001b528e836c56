/*-------------------------------------------------------------------------
 *
 * bench/noop_plugin.c
 *		  A shardexec plugin that subscribes to the execute pipeline and
 *		  does nothing, for the plugin-overhead figure of bench/run.sh.
 *
 * bench/run.sh compiles it at run time against the installed
 * extension/shardexec/plugin_api.h into the benchmark's scratch
 * directory, declares its handler with CREATE FUNCTION ... AS
 * '<scratch>/bench_noop_plugin.so', registers it three times, and
 * compares router throughput with shardexec.plugins empty and naming the
 * three: what is measured is the cost of the execute pipeline itself
 * (the chain walk and the calls), since the callbacks do nothing.  It is
 * not installed anywhere.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "extension/shardexec/plugin_api.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(bench_noop_handler);

static void
noop_statement(ShardexecPlugin *self, ShardexecStatementInfo *statement)
{
}

static void
noop_unit(ShardexecPlugin *self, ShardexecUnitInfo *unit)
{
}

static const ShardexecPluginRoutine noop_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "bench: subscribes to execute, does nothing",
	.default_weight = 100,
	.execute_statement = noop_statement,
	.execute_begin = noop_unit,
	.execute_end = noop_unit,
};

/*
 * bench_noop_handler returns the routine of the no-op plugin.
 */
Datum
bench_noop_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&noop_routine);
}
