/*-------------------------------------------------------------------------
 *
 * builtin_observe.c
 *		  The execution_time and log_query plugins.
 *
 * execution_time wraps the connect and force_connect pipelines (the time
 * of the call to next: the rest of the chain and the connection itself)
 * and sees the end of every execution unit (the time from sending the
 * unit to its last result), and adds them up per node and pipeline in
 * this backend: calls, failures, rows, total, minimum and maximum time.
 * The view shardexec.execution_time shows them (execution_time_stats());
 * reset_execution_time() clears them.  Its default weight is low, so that
 * it runs outermost and its connect time includes what the plugins inside
 * it do (a failover, for instance).  The statistics are per backend, like
 * EXPLAIN ANALYZE's, not shared: they cost no lock and no shared memory.
 *
 * log_query logs every execution unit when it ends: node, host, time,
 * rows and SQL (or the error).  Options:
 *	 level				log (default), info, notice, debug1 .. debug5
 *	 elapsed			include the time (default true)
 *	 host				include the host and port (default true)
 *	 min_duration_ms	log only units that took at least this long (0)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "shardexec/plugin.h"

PG_FUNCTION_INFO_V1(shardexec_execution_time_handler);
PG_FUNCTION_INFO_V1(shardexec_execution_time_stats);
PG_FUNCTION_INFO_V1(shardexec_reset_execution_time);
PG_FUNCTION_INFO_V1(shardexec_log_query_handler);

/* ----------------------------------------------------------------
 * execution_time
 * ----------------------------------------------------------------
 */

typedef struct TimingKey
{
	char		nodeName[NAMEDATALEN];
	char		pipeline[32];
} TimingKey;

typedef struct TimingEntry
{
	TimingKey	key;			/* hash key, must be first */
	int64		calls;
	int64		failures;
	int64		rows;
	double		totalMs;
	double		minMs;
	double		maxMs;
} TimingEntry;

static HTAB *timings = NULL;

/*
 * record_timing adds one call of pipeline on nodeName, which took ms, to
 * this backend's figures.
 */
static void
record_timing(const char *nodeName, const char *pipeline, double ms, bool failed,
			  uint64 rows)
{
	TimingKey	key;
	TimingEntry *entry;
	bool		found;

	if (timings == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TimingKey);
		ctl.entrysize = sizeof(TimingEntry);
		timings = hash_create("shardexec execution_time", 32, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	memset(&key, 0, sizeof(key));
	strlcpy(key.nodeName, nodeName, sizeof(key.nodeName));
	strlcpy(key.pipeline, pipeline, sizeof(key.pipeline));
	entry = hash_search(timings, &key, HASH_ENTER, &found);
	if (!found)
	{
		entry->calls = entry->failures = entry->rows = 0;
		entry->totalMs = 0;
		entry->minMs = ms;
		entry->maxMs = ms;
	}
	entry->calls++;
	entry->failures += failed ? 1 : 0;
	entry->rows += rows;
	entry->totalMs += ms;
	entry->minMs = Min(entry->minMs, ms);
	entry->maxMs = Max(entry->maxMs, ms);
}

/*
 * timed_connect times the call to next, as pipeline.
 */
static PGconn *
timed_connect(const char *pipeline, ShardexecConnectInfo *info, ShardexecConnectChain *chain)
{
	instr_time	start;
	instr_time	elapsed;
	PGconn	   *conn;

	INSTR_TIME_SET_CURRENT(start);
	conn = chain->next(chain, info);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	record_timing(info->node_name, pipeline, INSTR_TIME_GET_MILLISEC(elapsed),
				  conn == NULL, 0);
	return conn;
}

/*
 * execution_time_connect times the connect pipeline inside it.
 */
static PGconn *
execution_time_connect(ShardexecPlugin *self, ShardexecConnectInfo *info,
					   ShardexecConnectChain *chain)
{
	/* a forced connection is timed by force_connect */
	if (info->forced)
		return chain->next(chain, info);
	return timed_connect("connect", info, chain);
}

/*
 * execution_time_force_connect times the force_connect pipeline inside it.
 */
static PGconn *
execution_time_force_connect(ShardexecPlugin *self, ShardexecConnectInfo *info,
							 ShardexecConnectChain *chain)
{
	return timed_connect("force_connect", info, chain);
}

/*
 * execution_time_execute_end records a unit's time and rows.
 */
static void
execution_time_execute_end(ShardexecPlugin *self, ShardexecUnitInfo *unit)
{
	record_timing(unit->node_name, "execute", unit->elapsed_ms, unit->failed, unit->rows);
}

static const ShardexecPluginRoutine execution_time_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "per node and pipeline timings of this backend, in shardexec.execution_time",
	.default_weight = 10,
	.connect = execution_time_connect,
	.force_connect = execution_time_force_connect,
	.execute_end = execution_time_execute_end,
};

/*
 * shardexec_execution_time_handler is the handler of the execution_time
 * plugin.
 */
Datum
shardexec_execution_time_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&execution_time_routine);
}

/*
 * shardexec_execution_time_stats returns the timings of this backend,
 * one row per node and pipeline.
 */
Datum
shardexec_execution_time_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS scan;
	TimingEntry *entry;

	InitMaterializedSRF(fcinfo, 0);
	if (timings == NULL)
		return (Datum) 0;
	hash_seq_init(&scan, timings);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(entry->key.nodeName);
		values[1] = CStringGetTextDatum(entry->key.pipeline);
		values[2] = Int64GetDatum(entry->calls);
		values[3] = Int64GetDatum(entry->failures);
		values[4] = Int64GetDatum(entry->rows);
		values[5] = Float8GetDatum(entry->totalMs);
		values[6] = Float8GetDatum(entry->minMs);
		values[7] = Float8GetDatum(entry->maxMs);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * shardexec_reset_execution_time clears this backend's timings.
 */
Datum
shardexec_reset_execution_time(PG_FUNCTION_ARGS)
{
	if (timings != NULL)
	{
		hash_destroy(timings);
		timings = NULL;
	}
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * log_query
 * ----------------------------------------------------------------
 */

typedef struct LogQueryOptions
{
	int			level;
	bool		elapsed;
	bool		host;
	double		minDurationMs;
} LogQueryOptions;

static const char *const log_query_keys[] = {"level", "elapsed", "host", "min_duration_ms", NULL};

/* log_level_from_name: the elevel of a level name, or -1 */
static int
log_level_from_name(const char *name)
{
	static const struct
	{
		const char *name;
		int			level;
	}			levels[] = {
		{"debug5", DEBUG5}, {"debug4", DEBUG4}, {"debug3", DEBUG3}, {"debug2", DEBUG2},
		{"debug1", DEBUG1}, {"debug", DEBUG2}, {"log", LOG}, {"info", INFO},
		{"notice", NOTICE}, {"warning", WARNING}
	};
	int			i;

	for (i = 0; i < lengthof(levels); i++)
	{
		if (pg_strcasecmp(levels[i].name, name) == 0)
			return levels[i].level;
	}
	return -1;
}

/*
 * log_query_parse reads options into parsed.
 */
static void
log_query_parse(Jsonb *options, LogQueryOptions *parsed)
{
	char	   *level = PluginOptionString(options, "level");

	PluginCheckOptionKeys(options, "log_query", log_query_keys);
	parsed->level = LOG;
	parsed->elapsed = true;
	parsed->host = true;
	parsed->minDurationMs = 0;
	if (level != NULL && (parsed->level = log_level_from_name(level)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid log level \"%s\"", level),
				 errhint("Use log, info, notice, warning or debug1 to debug5.")));
	(void) PluginOptionBool(options, "elapsed", &parsed->elapsed);
	(void) PluginOptionBool(options, "host", &parsed->host);
	(void) PluginOptionNumber(options, "min_duration_ms", &parsed->minDurationMs);
}

/*
 * log_query_validate is the options validator of log_query.
 */
static void
log_query_validate(Jsonb *options)
{
	LogQueryOptions parsed;

	log_query_parse(options, &parsed);
}

/*
 * log_query_init parses the options once per chain.
 */
static void *
log_query_init(const char *pluginName, Jsonb *options)
{
	LogQueryOptions *parsed = palloc(sizeof(LogQueryOptions));

	log_query_parse(options, parsed);
	return parsed;
}

/*
 * log_query_execute_end logs a unit that ended.
 */
static void
log_query_execute_end(ShardexecPlugin *self, ShardexecUnitInfo *unit)
{
	LogQueryOptions *options = (LogQueryOptions *) self->private_data;
	StringInfoData where;

	if (unit->elapsed_ms < options->minDurationMs)
		return;
	initStringInfo(&where);
	appendStringInfo(&where, "node \"%s\"", unit->node_name);
	if (options->host && unit->host != NULL)
		appendStringInfo(&where, " (%s:%d)", unit->host, unit->port);
	if (options->elapsed)
		appendStringInfo(&where, ", %.3f ms", unit->elapsed_ms);
	if (unit->failed)
		ereport(options->level,
				(errmsg("shardexec: %s, failed: %s: %s", where.data,
						unit->error_message != NULL ? unit->error_message : "",
						unit->sql),
				 errhidestmt(true)));
	else if (unit->rows == 0 && unit->rows_affected > 0)
		ereport(options->level,
				(errmsg("shardexec: %s, " UINT64_FORMAT " row%s affected: %s", where.data,
						unit->rows_affected, unit->rows_affected == 1 ? "" : "s", unit->sql),
				 errhidestmt(true)));
	else
		ereport(options->level,
				(errmsg("shardexec: %s, " UINT64_FORMAT " row%s: %s", where.data,
						unit->rows, unit->rows == 1 ? "" : "s", unit->sql),
				 errhidestmt(true)));
	pfree(where.data);
}

static const ShardexecPluginRoutine log_query_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "logs every execution unit's SQL with its node and time",
	.default_weight = 20,
	.validate_options = log_query_validate,
	.init = log_query_init,
	.execute_end = log_query_execute_end,
};

/*
 * shardexec_log_query_handler is the handler of the log_query plugin.
 */
Datum
shardexec_log_query_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&log_query_routine);
}
