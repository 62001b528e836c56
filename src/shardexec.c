/*-------------------------------------------------------------------------
 *
 * shardexec.c
 *		  Module load: settings and the hooks of every subsystem.
 *
 * shardexec keeps shared state (the per-node connection counts of the
 * pool) and installs planner, executor and utility hooks, so it must be
 * loaded by the postmaster through shared_preload_libraries; loading it
 * any other way is refused with a hint.
 *
 * Every shardexec.* setting is defined here, in alphabetical order, and
 * then the prefix is reserved so that a misspelt setting is reported.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "shardexec/planner.h"
#include "shardexec/shardexec.h"

PG_MODULE_MAGIC;

/* GUC variables */
bool		ShardexecBinaryTransfer = true;
int			ShardexecConnectTimeout = 10;
bool		ShardexecEnablePushdown = true;
bool		ShardexecLogRemoteSql = false;
int			ShardexecMaxConnectionsPerQuery = 8;
bool		ShardexecUsePipeline = true;

void		_PG_init(void);

static void define_gucs(void);

/*
 * _PG_init is called when the library is loaded.  It defines the
 * settings and calls one Init function per subsystem; each of those
 * chains the hooks it installs to the previous ones.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shardexec must be loaded via shared_preload_libraries"),
				 errhint("Add shardexec to shared_preload_libraries in postgresql.conf and restart the server.")));

	define_gucs();

	InitMetadataCache();
	InitConnectionManagement();
	RegisterShardexecCustomScans();
	RegisterDistributedScanMethods();
	InitPlannerHooks();
	InitUtilityHook();
}

/*
 * define_gucs defines every shardexec.* setting, in alphabetical order.
 */
static void
define_gucs(void)
{
	DefineCustomBoolVariable("shardexec.binary_transfer",
							 "Transfers query results from the nodes in binary format when possible.",
							 "Binary is used when every column has a built-in type with a binary "
							 "receive function; otherwise, or when off, results come as text.",
							 &ShardexecBinaryTransfer,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("shardexec.connect_timeout",
							"Seconds to wait for a connection to a node.",
							"A node that does not answer within this time fails the statement.",
							&ShardexecConnectTimeout,
							10, 1, 3600,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("shardexec.enable_pushdown",
							 "Pushes queries down to the nodes where possible.",
							 "When off, every query reads the rows of its distributed tables "
							 "and runs on the coordinator; for testing and comparison.",
							 &ShardexecEnablePushdown,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("shardexec.log_remote_sql",
							 "Logs every statement sent to a node, with the node's name.",
							 NULL,
							 &ShardexecLogRemoteSql,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("shardexec.max_connections_per_query",
							"Maximum number of connections one statement opens to one node.",
							"With at least as many connections as shard queries on a node, "
							"every shard query gets its own connection and its result is streamed; "
							"with fewer, each connection runs several shard queries in turn.",
							&ShardexecMaxConnectionsPerQuery,
							8, 1, 1024,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("shardexec.use_pipeline",
							 "Sends the shard queries that share a connection in one libpq pipeline.",
							 "When off, a connection that runs several shard queries sends each one "
							 "after the previous one's result, a round trip per query.",
							 &ShardexecUsePipeline,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("shardexec");
}
