/*-------------------------------------------------------------------------
 *
 * shardexec.c
 *		  Module load: settings and the hooks of every subsystem.
 *
 * shardexec keeps shared state (the per-node connection counts of the
 * pool), registers a background worker (the recovery of prepared
 * transactions) and installs planner, executor and utility hooks, so it
 * must be loaded by the postmaster through shared_preload_libraries;
 * loading it any other way is refused with a hint.
 *
 * Every shardexec.* setting is defined here, in alphabetical order, and
 * then the prefix is reserved so that a misspelt setting is reported.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "shardexec/planner.h"
#include "shardexec/plugin.h"
#include "shardexec/shardexec.h"

PG_MODULE_MAGIC;

/* GUC variables */
bool		ShardexecBinaryTransfer = true;
int			ShardexecConnectTimeout = 10;
int			ShardexecConnectionIdleTimeout = 300;
bool		ShardexecEnablePushdown = true;
bool		ShardexecLogRemoteSql = false;
int			ShardexecMaxConnectionsPerQuery = 8;
int			ShardexecMaxIdleConnectionsPerNode = 8;
int			ShardexecMaxSharedPoolSize = 0;
int			ShardexecNodeResponseTimeout = 0;
char	   *ShardexecPlugins = NULL;
int			ShardexecPoolWaitTimeout = 30000;
int			ShardexecRecoveryInterval = 10;
int			ShardexecRecoveryStepTimeout = 60000;
int			ShardexecRemoteLockTimeout = 30000;
int			ShardexecTest2pcFault = SHARDEXEC_FAULT_NONE;
int			ShardexecUse2pc = SHARDEXEC_2PC_AUTO;
bool		ShardexecUsePipeline = true;

static const struct config_enum_entry use_2pc_options[] = {
	{"off", SHARDEXEC_2PC_OFF, false},
	{"auto", SHARDEXEC_2PC_AUTO, false},
	{"on", SHARDEXEC_2PC_ON, false},
	{NULL, 0, false}
};

static const struct config_enum_entry test_fault_options[] = {
	{"none", SHARDEXEC_FAULT_NONE, false},
	{"error_after_prepare", SHARDEXEC_FAULT_ERROR_AFTER_PREPARE, false},
	{"sleep_after_prepare", SHARDEXEC_FAULT_SLEEP_AFTER_PREPARE, false},
	{"sleep_before_commit_prepared", SHARDEXEC_FAULT_SLEEP_BEFORE_COMMIT_PREPARED, false},
	{NULL, 0, false}
};

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
	InitPlugins();
	InitSharedPool();
	InitRecoveryWorker();
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

	DefineCustomIntVariable("shardexec.connection_idle_timeout",
							"Closes pooled connections that have not been used for this long.",
							"Checked at the end of every transaction of the backend; 0 keeps idle "
							"connections until the backend exits (within "
							"shardexec.max_idle_connections_per_node).",
							&ShardexecConnectionIdleTimeout,
							300, 0, INT_MAX / 1000,
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

	DefineCustomIntVariable("shardexec.max_idle_connections_per_node",
							"Maximum number of idle connections a backend keeps to one node.",
							"Checked at the end of every transaction: the least recently used idle "
							"connections beyond this number are closed.  A node at "
							"shardexec.max_shared_pool_size keeps none.",
							&ShardexecMaxIdleConnectionsPerNode,
							8, 0, 1024,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("shardexec.max_shared_pool_size",
							"Maximum number of connections all backends together open to one node.",
							"0 means no cap.  At the cap a statement uses the connections it can "
							"get (at least one per node, waiting up to shardexec.pool_wait_timeout "
							"for it).",
							&ShardexecMaxSharedPoolSize,
							0, 0, 100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("shardexec.node_response_timeout",
							"How long a shard query may wait for its node without receiving "
							"anything.",
							"A node that sends nothing for this long while a shard query of the "
							"statement waits for it is taken for gone: the statement fails naming "
							"it, or, with the failover plugin, a read is sent again.  0 waits "
							"without limit (statement_timeout still applies).",
							&ShardexecNodeResponseTimeout,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("shardexec.plugins",
							   "The active plugins: registered plugin names, separated by commas.",
							   "They form a chain ordered by weight (lower runs outermost), ties "
							   "by their order here; see the view shardexec.plugins.",
							   &ShardexecPlugins,
							   "",
							   PGC_USERSET,
							   GUC_LIST_INPUT,
							   CheckPluginsSetting, AssignPluginsSetting, NULL);

	DefineCustomIntVariable("shardexec.pool_wait_timeout",
							"How long a statement waits for a connection to a node at "
							"shardexec.max_shared_pool_size.",
							"When the time is up the statement fails; 0 fails at once.",
							&ShardexecPoolWaitTimeout,
							30000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("shardexec.recovery_interval",
							"Time between two runs of the recovery of prepared transactions "
							"on the nodes, in every database with shardexec.",
							"0 turns the background recovery off; "
							"shardexec.recover_prepared_transactions() still works.",
							&ShardexecRecoveryInterval,
							10, 0, INT_MAX / 1000,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("shardexec.recovery_step_timeout",
							"Time the recovery of prepared transactions waits for a node to answer "
							"one command.",
							"A node that does not answer in time is skipped until the next run; "
							"0 waits without limit.",
							&ShardexecRecoveryStepTimeout,
							60000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("shardexec.remote_lock_timeout",
							"lock_timeout of the remote transactions on the nodes.",
							"A statement that waits longer than this for a lock on a node fails, "
							"which ends deadlocks across nodes; 0 leaves the node's own setting.",
							&ShardexecRemoteLockTimeout,
							30000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("shardexec.test_2pc_fault",
							 "For tests: stops a two-phase commit at a chosen point.",
							 NULL,
							 &ShardexecTest2pcFault,
							 SHARDEXEC_FAULT_NONE,
							 test_fault_options,
							 PGC_SUSET,
							 GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL | GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("shardexec.use_2pc",
							 "When a commit uses two-phase commit on the nodes.",
							 "auto: when the transaction wrote through more than one remote "
							 "transaction (several nodes, or several connections to one node); "
							 "on: whenever it wrote on a node; off: never.",
							 &ShardexecUse2pc,
							 SHARDEXEC_2PC_AUTO,
							 use_2pc_options,
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
