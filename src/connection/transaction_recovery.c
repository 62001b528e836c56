/*-------------------------------------------------------------------------
 *
 * transaction_recovery.c
 *		  Commit records of two-phase commits, and the recovery of prepared
 *		  transactions left on the nodes: a function and a background
 *		  worker.
 *
 * A two-phase commit (connection.c) prepares a remote transaction on
 * every node that was written, under a name of its own,
 *
 *	   shardexec_<system identifier>_<database oid>_<full xid>_<node id>_<n>
 *
 * (the coordinator's system identifier and database, the local
 * transaction's full id, the node and a number), after inserting one row
 * per transaction to prepare into shardexec.transaction_record in the
 * local transaction and flushing it to the WAL (so that the local
 * transaction id is never reused after a crash: recovery would take a
 * transaction id the coordinator has not reached yet for one still in
 * progress).  The local commit is the decision: a prepared transaction
 * with a visible record must be committed, one without a record whose
 * local transaction is over must be rolled back.  After the local commit
 * the committing backend sends COMMIT PREPARED itself; what it could not
 * do (a node or the coordinator went down in between) is left for
 * recovery, which also deletes the records that are no longer needed.
 *
 * ResolvePreparedTransactions makes one pass.  A transaction being
 * committed right now must neither be rolled back (it is prepared, but
 * its record is not visible yet) nor lose its record (it is committed,
 * but not prepared yet when we look), so the pass reads in this order:
 *
 *	 1. P: the node's prepared transactions with this coordinator's prefix;
 *	 2. A: which of their local transactions are still in progress;
 *	 3. T: the records, with a snapshot taken after 2;
 *	 4. Q: the node's prepared transactions again;
 *
 * and then, per node, commits every transaction of Q that has a record
 * (a record is visible only once its transaction committed, which was
 * after every PREPARE), rolls back every transaction of P and Q that has
 * no record and whose local transaction was not in progress in 2 (it
 * ended before 2, so a commit would be visible in 3), and deletes the
 * records of transactions not in Q (a record visible in 3 was committed
 * after its PREPARE, so one missing from Q was resolved).  Transactions
 * that appear in Q only are left for the next pass.  A node that cannot
 * be reached, or that does not answer a command within
 * shardexec.recovery_step_timeout, is skipped, its records kept (a
 * frozen node must not stall the recovery of the others); a command that
 * fails is logged and retried next time.  Records of nodes that no longer exist
 * are deleted.  One pass at a time runs per database (a lock on
 * transaction_record that ordinary commits do not conflict with).
 *
 * Recovery connects to the nodes as the extension's owner, outside the
 * pool, with application_name "shardexec recovery"; on the nodes that
 * role must be a superuser or the role that prepared the transactions.
 *
 * The background worker.  A launcher (one background worker, started
 * with the server when shardexec is in shared_preload_libraries) wakes
 * every shardexec.recovery_interval, lists the databases that accept
 * connections and are not templates, and starts for each, one after the
 * other, a short-lived worker that connects to it, runs one pass if the
 * extension exists there, and exits.  This needs no configuration, sees
 * new databases by itself, and runs right after a crash restart, when no
 * client has touched the database yet; the cost is a connection per
 * database per interval.  0 turns it off.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "shardexec/connection.h"
#include "shardexec/metadata.h"
#include "shardexec/shardexec.h"

#define RECOVERY_APPLICATION_NAME "shardexec recovery"

/* one prepared transaction of a node */
typedef struct PreparedXact
{
	char	   *gid;
	bool		inProgress;		/* its local transaction, at step 2 */
} PreparedXact;

/* one node during a pass */
typedef struct NodeRecovery
{
	ShardexecNode *node;
	PGconn	   *conn;
	bool		reachable;
	List	   *before;			/* P: PreparedXact */
	List	   *after;			/* Q: gids */
} NodeRecovery;

/* one commit record */
typedef struct TransactionRecord
{
	char	   *gid;
	int32		nodeId;
	bool		resolved;		/* may be deleted */
} TransactionRecord;

/* the argument of the guarded steps */
typedef struct RecoveryStep
{
	NodeRecovery *node;
	const char *prefix;
	const char *sql;
} RecoveryStep;

PGDLLEXPORT void ShardexecRecoveryLauncherMain(Datum arg);
PGDLLEXPORT void ShardexecRecoveryWorkerMain(Datum arg);

static bool run_guarded(void (*step) (RecoveryStep *), RecoveryStep *arg,
						const char *nodeName);
static void step_timeout_handler(void);
static void connect_and_list(RecoveryStep *step);
static void list_again(RecoveryStep *step);
static void run_command(RecoveryStep *step);
static List *list_prepared(PGconn *conn, const char *nodeName, const char *prefix);
static List *read_records(void);
static bool parse_gid(const char *gid, const char *prefix, FullTransactionId *fxid);
static void delete_records(List *records);
static bool gid_in(List *gids, const char *gid);
static void run_recovery_workers(void);

PG_FUNCTION_INFO_V1(shardexec_recover_prepared_transactions);

/*
 * PreparedTransactionGidPrefix returns the prefix of the names of the
 * transactions this coordinator database prepares on the nodes.
 */
char *
PreparedTransactionGidPrefix(void)
{
	static char prefix[64];
	static Oid	prefixDatabase = InvalidOid;

	if (prefixDatabase != MyDatabaseId)
	{
		snprintf(prefix, sizeof(prefix), "shardexec_" UINT64_FORMAT "_%u_",
				 GetSystemIdentifier(), MyDatabaseId);
		prefixDatabase = MyDatabaseId;
	}
	return prefix;
}

/*
 * InsertTransactionRecords inserts the commit records of the n prepared
 * transactions gids (on nodes nodeIds) in the current transaction, as
 * the extension's owner.
 */
void
InsertTransactionRecords(int n, char **gids, int32 *nodeIds)
{
	Datum	   *gidDatums;
	Datum	   *nodeDatums;
	Oid			argtypes[2] = {TEXTARRAYOID, INT4ARRAYOID};
	Datum		values[2];
	bool		pushed = false;
	int			i;

	if (n == 0)
		return;
	gidDatums = palloc(sizeof(Datum) * n);
	nodeDatums = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		gidDatums[i] = CStringGetTextDatum(gids[i]);
		nodeDatums[i] = Int32GetDatum(nodeIds[i]);
	}
	values[0] = PointerGetDatum(construct_array(gidDatums, n, TEXTOID, -1, false,
												TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(nodeDatums, n, INT4OID, 4, true,
												TYPALIGN_INT));
	/* at pre-commit, the portals and their snapshots are gone */
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	ExecuteCatalogWrite("INSERT INTO shardexec.transaction_record (gid, node_id) "
						"SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), "
						"pg_catalog.unnest($2::pg_catalog.int4[]))",
						2, argtypes, values);
	if (pushed)
		PopActiveSnapshot();
}

/*
 * ResolvePreparedTransactions makes one recovery pass (see the file
 * header) and returns how many prepared transactions it committed or
 * rolled back.  With wait false, it returns -1 at once if another pass
 * is running in this database.
 */
int
ResolvePreparedTransactions(bool wait)
{
	Oid			recordRel = get_relname_relid("transaction_record", ShardexecSchemaId());
	const char *prefix = PreparedTransactionGidPrefix();
	List	   *volatile nodes = NIL;
	List	   *records;
	List	   *obsolete = NIL;
	ListCell   *lc;
	Oid			savedUserId;
	int			savedSecContext;
	int			resolved = 0;

	if (!OidIsValid(recordRel))
		elog(ERROR, "shardexec.transaction_record does not exist");
	if (wait)
		LockRelationOid(recordRel, ShareUpdateExclusiveLock);
	else if (!ConditionalLockRelationOid(recordRel, ShareUpdateExclusiveLock))
		return -1;

	GetUserIdAndSecContext(&savedUserId, &savedSecContext);
	SetUserIdAndSecContext(ShardexecExtensionOwner(),
						   savedSecContext | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		/* a copy: the node cache may be rebuilt meanwhile */
		foreach(lc, ShardexecNodeList())
		{
			ShardexecNode *node = lfirst(lc);
			NodeRecovery *n = palloc0(sizeof(NodeRecovery));

			n->node = palloc(sizeof(ShardexecNode));
			n->node->nodeId = node->nodeId;
			n->node->nodeName = pstrdup(node->nodeName);
			n->node->serverId = node->serverId;
			nodes = lappend(nodes, n);
		}

		/* 1. P, on every node that answers */
		foreach(lc, nodes)
		{
			NodeRecovery *n = lfirst(lc);
			RecoveryStep step = {n, prefix, NULL};

			n->reachable = run_guarded(connect_and_list, &step, n->node->nodeName);
		}

		/* 2. A */
		foreach(lc, nodes)
		{
			NodeRecovery *n = lfirst(lc);
			ListCell   *pc;

			foreach(pc, n->before)
			{
				PreparedXact *p = lfirst(pc);
				FullTransactionId fxid;

				/* a name we cannot read is not ours to roll back */
				p->inProgress = !parse_gid(p->gid, prefix, &fxid) ||
					TransactionIdIsInProgress(XidFromFullTransactionId(fxid));
			}
		}

		/* 3. T */
		records = read_records();

		/* 4. Q, and the decisions */
		foreach(lc, nodes)
		{
			NodeRecovery *n = lfirst(lc);
			RecoveryStep step = {n, prefix, NULL};
			ListCell   *qc;
			ListCell   *rc;

			if (!n->reachable ||
				!run_guarded(list_again, &step, n->node->nodeName))
				continue;

			foreach(qc, n->after)
			{
				char	   *gid = lfirst(qc);
				TransactionRecord *record = NULL;
				PreparedXact *before = NULL;
				ListCell   *pc;

				foreach(rc, records)
				{
					if (strcmp(((TransactionRecord *) lfirst(rc))->gid, gid) == 0)
						record = lfirst(rc);
				}
				foreach(pc, n->before)
				{
					if (strcmp(((PreparedXact *) lfirst(pc))->gid, gid) == 0)
						before = lfirst(pc);
				}
				if (record != NULL)
				{
					step.sql = psprintf("COMMIT PREPARED '%s'", gid);
					if (run_guarded(run_command, &step, n->node->nodeName))
					{
						record->resolved = true;
						resolved++;
						ereport(LOG,
								(errmsg("shardexec: committed prepared transaction \"%s\" on node \"%s\"",
										gid, n->node->nodeName)));
					}
				}
				else if (before != NULL && !before->inProgress)
				{
					step.sql = psprintf("ROLLBACK PREPARED '%s'", gid);
					if (run_guarded(run_command, &step, n->node->nodeName))
					{
						resolved++;
						ereport(LOG,
								(errmsg("shardexec: rolled back prepared transaction \"%s\" on node \"%s\"",
										gid, n->node->nodeName)));
					}
				}
			}

			/* records of this node whose transaction is no longer prepared */
			foreach(rc, records)
			{
				TransactionRecord *record = lfirst(rc);

				if (record->nodeId == n->node->nodeId && !gid_in(n->after, record->gid))
					record->resolved = true;
			}
		}

		/* records of nodes that are gone */
		foreach(lc, records)
		{
			TransactionRecord *record = lfirst(lc);
			bool		known = false;
			ListCell   *nc;

			foreach(nc, nodes)
				known |= ((NodeRecovery *) lfirst(nc))->node->nodeId == record->nodeId;
			if (!known)
				record->resolved = true;
			if (record->resolved)
				obsolete = lappend(obsolete, record);
		}
		delete_records(obsolete);
	}
	PG_FINALLY();
	{
		foreach(lc, nodes)
		{
			NodeRecovery *n = lfirst(lc);

			if (n->conn != NULL)
				PQfinish(n->conn);
			n->conn = NULL;
		}
		SetUserIdAndSecContext(savedUserId, savedSecContext);
	}
	PG_END_TRY();

	return resolved;
}

/* the timeout of one step, and whether it fired */
static TimeoutId stepTimeout = MAX_TIMEOUTS;
static volatile sig_atomic_t stepTimedOut = false;

/*
 * step_timeout_handler ends a step that waited too long for its node: it
 * asks for a query cancel, which the node's wait loop raises as an error.
 */
static void
step_timeout_handler(void)
{
	stepTimedOut = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * run_guarded runs step(arg) in a subtransaction, for at most
 * shardexec.recovery_step_timeout: an error is reported as a WARNING
 * naming the node, and false returned.  A node that did not answer in
 * time loses its connection and is skipped for the rest of the pass.  A
 * cancel or an exit request of our own is not the node's fault: it is
 * raised.
 */
static bool
run_guarded(void (*step) (RecoveryStep *), RecoveryStep *arg, const char *nodeName)
{
	MemoryContext oldContext = CurrentMemoryContext;
	ResourceOwner oldOwner = CurrentResourceOwner;
	volatile bool ok = false;

	if (step != connect_and_list && !arg->node->reachable)
		return false;
	if (stepTimeout == MAX_TIMEOUTS)
		stepTimeout = RegisterTimeout(USER_TIMEOUT, step_timeout_handler);
	stepTimedOut = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldContext);
	PG_TRY();
	{
		if (ShardexecRecoveryStepTimeout > 0)
			enable_timeout_after(stepTimeout, ShardexecRecoveryStepTimeout);
		step(arg);
		disable_timeout(stepTimeout, false);
		if (stepTimedOut)
		{
			/* it fired as the step ended: nothing is to be cancelled */
			stepTimedOut = false;
			QueryCancelPending = false;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldContext);
		CurrentResourceOwner = oldOwner;
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		timedOut;

		disable_timeout(stepTimeout, false);
		timedOut = stepTimedOut;
		stepTimedOut = false;
		MemoryContextSwitchTo(oldContext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldContext);
		CurrentResourceOwner = oldOwner;
		/*
		 * A cancel of our own (a user's, statement_timeout) comes from
		 * ProcessInterrupts; a node's errors, whatever their SQLSTATE, come
		 * from the remote command functions and only skip the node.
		 */
		if (!timedOut && edata->sqlerrcode == ERRCODE_QUERY_CANCELED &&
			edata->funcname != NULL && strcmp(edata->funcname, "ProcessInterrupts") == 0)
			ReThrowError(edata);
		if (timedOut)
		{
			/* fired after the step failed otherwise: nothing to cancel */
			QueryCancelPending = false;
			if (arg->node->conn != NULL)
				PQfinish(arg->node->conn);
			arg->node->conn = NULL;
			arg->node->reachable = false;
			ereport(WARNING,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("shardexec recovery on node \"%s\": no answer within %d ms",
							nodeName, ShardexecRecoveryStepTimeout),
					 errdetail("The node is skipped until the next recovery run; its prepared transactions are kept.")));
		}
		else
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("shardexec recovery on node \"%s\": %s", nodeName, edata->message),
					 edata->detail ? errdetail_internal("%s", edata->detail) : 0));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return ok;
}

/* step 1 for one node: connect, then list */
static void
connect_and_list(RecoveryStep *step)
{
	NodeRecovery *n = step->node;
	List	   *gids;
	ListCell   *lc;

	n->conn = ConnectToNodeWithName(n->node, RECOVERY_APPLICATION_NAME);
	gids = list_prepared(n->conn, n->node->nodeName, step->prefix);
	foreach(lc, gids)
	{
		PreparedXact *p = palloc0(sizeof(PreparedXact));

		p->gid = lfirst(lc);
		n->before = lappend(n->before, p);
	}
}

/* step 4 for one node */
static void
list_again(RecoveryStep *step)
{
	step->node->after = list_prepared(step->node->conn, step->node->node->nodeName,
									  step->prefix);
}

/* a COMMIT PREPARED or ROLLBACK PREPARED */
static void
run_command(RecoveryStep *step)
{
	ExecuteRemoteCommand(step->node->conn, step->node->node->nodeName, step->sql);
}

/*
 * list_prepared returns the names of the transactions prepared on conn's
 * node, in its database, whose names start with prefix.
 */
static List *
list_prepared(PGconn *conn, const char *nodeName, const char *prefix)
{
	const char *params[1] = {prefix};
	PGresult   *volatile res;
	List	   *volatile gids = NIL;

	res = ExecuteRemoteQuery(conn, nodeName,
							 "SELECT gid FROM pg_catalog.pg_prepared_xacts "
							 "WHERE database = pg_catalog.current_database() "
							 "AND pg_catalog.starts_with(gid, $1) ORDER BY gid",
							 1, params, PGRES_TUPLES_OK);
	PG_TRY();
	{
		int			i;

		for (i = 0; i < PQntuples(res); i++)
			gids = lappend(gids, pstrdup(PQgetvalue(res, i, 0)));
	}
	PG_FINALLY();
	{
		PQclear(res);
	}
	PG_END_TRY();
	return gids;
}

/*
 * read_records returns every commit record, read with a snapshot taken
 * now (not the transaction's, which may be older than step 2).
 */
static List *
read_records(void)
{
	MemoryContext context = CurrentMemoryContext;
	List	   *records = NIL;
	SPIPlanPtr	plan;
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare("SELECT gid, node_id FROM shardexec.transaction_record", 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read shardexec.transaction_record");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		nodeId = SPI_getbinval(tuple, tupdesc, 2, &isnull);
		TransactionRecord *record = MemoryContextAllocZero(context,
														   sizeof(TransactionRecord));

		MemoryContext spiContext;

		record->gid = MemoryContextStrdup(context, SPI_getvalue(tuple, tupdesc, 1));
		record->nodeId = isnull ? 0 : DatumGetInt32(nodeId);
		/* the list must outlive SPI's memory */
		spiContext = MemoryContextSwitchTo(context);
		records = lappend(records, record);
		MemoryContextSwitchTo(spiContext);
	}
	SPI_finish();
	return records;
}

/*
 * parse_gid reads the local transaction's full id from gid, which must
 * start with prefix; false if it does not have our form.
 */
static bool
parse_gid(const char *gid, const char *prefix, FullTransactionId *fxid)
{
	size_t		len = strlen(prefix);
	char	   *end;
	uint64		value;

	if (strncmp(gid, prefix, len) != 0)
		return false;
	errno = 0;
	value = strtou64(gid + len, &end, 10);
	if (errno != 0 || end == gid + len || *end != '_')
		return false;
	*fxid = FullTransactionIdFromU64(value);
	return true;
}

/*
 * delete_records deletes records (TransactionRecord) from the catalog.
 */
static void
delete_records(List *records)
{
	Datum	   *gids;
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		values[1];
	ListCell   *lc;
	int			n = 0;

	if (records == NIL)
		return;
	gids = palloc(sizeof(Datum) * list_length(records));
	foreach(lc, records)
		gids[n++] = CStringGetTextDatum(((TransactionRecord *) lfirst(lc))->gid);
	values[0] = PointerGetDatum(construct_array(gids, n, TEXTOID, -1, false,
												TYPALIGN_INT));
	ExecuteCatalogWrite("DELETE FROM shardexec.transaction_record "
						"WHERE gid = ANY ($1::pg_catalog.text[])",
						1, argtypes, values);
}

static bool
gid_in(List *gids, const char *gid)
{
	ListCell   *lc;

	foreach(lc, gids)
	{
		if (strcmp(lfirst(lc), gid) == 0)
			return true;
	}
	return false;
}

/*
 * shardexec_recover_prepared_transactions runs one recovery pass, waiting
 * for one already running, and returns how many prepared transactions it
 * committed or rolled back.
 */
Datum
shardexec_recover_prepared_transactions(PG_FUNCTION_ARGS)
{
	if (!ShardexecExtensionLoaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"shardexec\" is not created in this database")));
	PG_RETURN_INT32(ResolvePreparedTransactions(true));
}

/*
 * InitRecoveryWorker registers the recovery launcher.  Called once from
 * _PG_init, in the postmaster.
 */
void
InitRecoveryWorker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "shardexec");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "ShardexecRecoveryLauncherMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "shardexec recovery launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "shardexec recovery launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * ShardexecRecoveryLauncherMain is the launcher: every
 * shardexec.recovery_interval it has every database recovered, one after
 * the other (run_recovery_workers).
 */
void
ShardexecRecoveryLauncherMain(Datum arg)
{
	TimestampTz nextRun = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	for (;;)
	{
		long		timeout = 60000;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (ShardexecRecoveryInterval > 0)
		{
			TimestampTz now = GetCurrentTimestamp();

			if (now >= nextRun)
			{
				run_recovery_workers();
				now = GetCurrentTimestamp();
				nextRun = TimestampTzPlusMilliseconds(now,
													  ShardexecRecoveryInterval * 1000L);
			}
			timeout = Max(TimestampDifferenceMilliseconds(now, nextRun), 1);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * run_recovery_workers starts a worker for every database that accepts
 * connections and is not a template, one at a time, and waits for each.
 */
static void
run_recovery_workers(void)
{
	MemoryContext context = CurrentMemoryContext;
	List	   *databases = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	ListCell   *lc;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(context);

			databases = lappend_oid(databases, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	foreach(lc, databases)
	{
		BackgroundWorker worker;
		BackgroundWorkerHandle *handle;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = BGW_NEVER_RESTART;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "shardexec");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "ShardexecRecoveryWorkerMain");
		snprintf(worker.bgw_name, BGW_MAXLEN, "shardexec recovery worker");
		snprintf(worker.bgw_type, BGW_MAXLEN, "shardexec recovery worker");
		worker.bgw_main_arg = ObjectIdGetDatum(lfirst_oid(lc));
		worker.bgw_notify_pid = MyProcPid;

		if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		{
			ereport(LOG,
					(errmsg("shardexec: no background worker slot free for the recovery of prepared transactions"),
					 errhint("Raise max_worker_processes.")));
			break;
		}
		if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
			proc_exit(1);
		pfree(handle);
	}
	list_free(databases);
}

/*
 * ShardexecRecoveryWorkerMain runs one recovery pass in the database
 * whose OID is arg, if shardexec is created there, and exits.
 */
void
ShardexecRecoveryWorkerMain(Datum arg)
{
	Oid			databaseId = DatumGetObjectId(arg);
	int			n = 0;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(databaseId, InvalidOid, 0);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "shardexec: recovering prepared transactions");
	if (ShardexecExtensionLoaded())
		n = ResolvePreparedTransactions(false);
	if (n > 0)
		ereport(LOG,
				(errmsg("shardexec: recovery resolved %d prepared transactions in database \"%s\"",
						n, get_database_name(databaseId))));
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
