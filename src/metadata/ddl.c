/*-------------------------------------------------------------------------
 *
 * ddl.c
 *		  Utility commands on distributed tables: the ProcessUtility hook
 *		  and the sql_drop event trigger.
 *
 * The local table of a distributed table is an empty shell; utility
 * commands that would read or write its rows, or change its shape, must
 * reach the shards too:
 *  - COPY FROM parses the rows once on the coordinator (with every COPY
 *    option PostgreSQL supports) and routes them to the shards
 *    (shard_modify.c); COPY TO becomes COPY (SELECT ...) TO, which reads
 *    the shards through the planner hook.
 *  - TRUNCATE runs locally (privileges, locks) and on every shard.
 *  - DROP TABLE, DROP SCHEMA ... CASCADE and DROP OWNED: the sql_drop
 *    event trigger drops the shards and the metadata.
 * All of it runs inside the remote transactions that follow the local
 * one, so a failure on any node fails the statement and leaves every
 * node as it was.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/event_trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "shardexec/connection.h"
#include "shardexec/executor.h"
#include "shardexec/fdw.h"
#include "shardexec/metadata.h"
#include "shardexec/shardexec.h"

PG_FUNCTION_INFO_V1(shardexec_drop_trigger);

static ProcessUtility_hook_type prev_utility_hook = NULL;

static void shardexec_utility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc);
static void call_next_utility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc);
static bool copy_from_distributed(CopyStmt *stmt, const char *queryString,
								  QueryCompletion *qc);
static CopyStmt *copy_to_as_query(CopyStmt *stmt, Oid relid);
static void truncate_shards(TruncateStmt *stmt);

/*
 * InitUtilityHook installs the ProcessUtility hook, chained to the
 * previous one.  Called once from _PG_init.
 */
void
InitUtilityHook(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = shardexec_utility;
}

static void
call_next_utility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params,
						  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * shardexec_utility is the ProcessUtility hook.
 */
static void
shardexec_utility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (!ShardexecExtensionLoaded())
	{
		call_next_utility(pstmt, queryString, readOnlyTree, context, params,
						  queryEnv, dest, qc);
		return;
	}

	if (IsA(parsetree, CopyStmt))
	{
		CopyStmt   *stmt = (CopyStmt *) parsetree;

		if (stmt->relation != NULL)
		{
			Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

			if (OidIsValid(relid) && IsDistributedTable(relid))
			{
				if (stmt->is_from)
				{
					if (copy_from_distributed(stmt, queryString, qc))
						return;
				}
				else
				{
					PlannedStmt *copy = copyObject(pstmt);

					copy->utilityStmt = (Node *) copy_to_as_query(stmt, relid);
					call_next_utility(copy, queryString, false, context, params,
									  queryEnv, dest, qc);
					return;
				}
			}
		}
	}

	call_next_utility(pstmt, queryString, readOnlyTree, context, params,
					  queryEnv, dest, qc);

	if (IsA(parsetree, TruncateStmt))
		truncate_shards((TruncateStmt *) parsetree);
}

/*
 * copy_from_distributed runs COPY ... FROM into a distributed table:
 * PostgreSQL's COPY parser reads the rows (from the client, a file or a
 * program, in any format), and each row is routed to its shard.  Returns
 * false if stmt is not for a distributed table after all.
 */
static bool
copy_from_distributed(CopyStmt *stmt, const char *queryString,
					  QueryCompletion *qc)
{
	Relation	rel;
	DistTableEntry *entry;
	ParseState *pstate;
	CopyFromState cstate;
	ShardCopyState *copy;
	EState	   *estate;
	ExprContext *econtext;
	TupleDesc	tupdesc;
	Datum	   *values;
	bool	   *nulls;
	TupleTableSlot *slot;
	ErrorContextCallback errcallback;
	uint64		processed;
	bool		pipe = (stmt->filename == NULL);
	AclResult	aclresult;

	/* the same checks DoCopy makes */
	if (!pipe && !has_privs_of_role(GetUserId(), stmt->is_program ?
									ROLE_PG_EXECUTE_SERVER_PROGRAM :
									ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 stmt->is_program ?
				 errmsg("must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an external program") :
				 errmsg("must be superuser or have privileges of the pg_read_server_files role to COPY from a file"),
				 errhint("Anyone can COPY to stdout or from stdin. psql's \\copy command also works for anyone.")));
	if (stmt->whereClause != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("COPY FROM ... WHERE into a distributed table is not supported yet"),
				 errhint("Load into a local table and use INSERT ... SELECT with a WHERE clause.")));

	rel = table_openrv(stmt->relation, RowExclusiveLock);
	entry = LookupDistTable(RelationGetRelid(rel));
	if (entry == NULL)
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}
	aclresult = pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	PreventCommandIfReadOnly("COPY FROM");

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = queryString;
	cstate = BeginCopyFrom(pstate, rel, NULL, stmt->filename, stmt->is_program,
						   NULL, stmt->attlist, stmt->options);

	estate = CreateExecutorState();
	econtext = GetPerTupleExprContext(estate);
	tupdesc = RelationGetDescr(rel);
	values = palloc(sizeof(Datum) * tupdesc->natts);
	nulls = palloc(sizeof(bool) * tupdesc->natts);
	slot = table_slot_create(rel, NULL);
	copy = ShardCopyBegin(rel, entry);

	errcallback.callback = CopyFromErrorCallback;
	errcallback.arg = (void *) cstate;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (;;)
	{
		MemoryContext oldContext;

		CHECK_FOR_INTERRUPTS();
		ResetPerTupleExprContext(estate);
		oldContext = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
		if (!NextCopyFrom(cstate, econtext, values, nulls))
		{
			MemoryContextSwitchTo(oldContext);
			break;
		}
		ExecStoreHeapTuple(heap_form_tuple(tupdesc, values, nulls), slot, false);
		ShardCopyAppend(copy, slot);
		ExecClearTuple(slot);
		MemoryContextSwitchTo(oldContext);
	}

	error_context_stack = errcallback.previous;
	processed = ShardCopyFinish(copy);

	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	EndCopyFrom(cstate);
	free_parsestate(pstate);
	table_close(rel, NoLock);

	if (qc != NULL)
		SetQueryCompletion(qc, CMDTAG_COPY, processed);
	return true;
}

/*
 * copy_to_as_query turns COPY table [(columns)] TO into COPY (SELECT
 * columns FROM table) TO, which the planner hook answers from the shards.
 */
static CopyStmt *
copy_to_as_query(CopyStmt *stmt, Oid relid)
{
	CopyStmt   *result = copyObject(stmt);
	StringInfoData sql;
	List	   *parsed;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	if (stmt->attlist == NIL)
		appendStringInfoChar(&sql, '*');
	foreach(lc, stmt->attlist)
	{
		if (lc != list_head(stmt->attlist))
			appendStringInfoString(&sql, ", ");
		appendStringInfoString(&sql, quote_identifier(strVal(lfirst(lc))));
	}
	appendStringInfo(&sql, " FROM ONLY %s",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid)));

	parsed = raw_parser(sql.data, RAW_PARSE_DEFAULT);
	result->relation = NULL;
	result->attlist = NIL;
	result->query = ((RawStmt *) linitial(parsed))->stmt;
	return result;
}

/*
 * truncate_shards truncates the shards of the distributed tables among
 * the relations of a TRUNCATE that has just run locally.
 */
static void
truncate_shards(TruncateStmt *stmt)
{
	List	   *commands = NIL;
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst(lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, false);
		DistTableEntry *entry = LookupDistTable(relid);
		int			i;

		if (entry == NULL)
			continue;
		for (i = 0; i < entry->shardCount; i++)
		{
			ShardInterval *shard = &entry->shards[i];
			ListCell   *nc;

			foreach(nc, ShardPlacementNodes(entry, shard))
			{
				NodeCommand *command = palloc(sizeof(NodeCommand));

				command->node = lfirst(nc);
				command->sql = psprintf("TRUNCATE TABLE %s",
										ShardQualifiedName(relid, shard->shardId));
				commands = lappend(commands, command);
			}
		}
	}
	if (commands != NIL)
		ExecuteOnNodesInParallel(commands);
}

/*
 * shardexec_drop_trigger is the sql_drop event trigger: for every
 * distributed or reference table dropped by the command, it drops the
 * shards on the nodes and removes the metadata.
 */
Datum
shardexec_drop_trigger(PG_FUNCTION_ARGS)
{
	List	   *commands = NIL;
	List	   *dropped = NIL;
	ListCell   *lc;
	uint64		i;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("shardexec_drop_trigger must be called as an event trigger")));

	if (!ShardexecExtensionLoaded())
		PG_RETURN_NULL();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT s.table_id::oid, o.schema_name, o.object_name, "
					"       s.shard_id, p.node_id "
					"FROM pg_catalog.pg_event_trigger_dropped_objects() o "
					"JOIN shardexec.shard s ON s.table_id::oid = o.objid "
					"JOIN shardexec.placement p USING (shard_id) "
					"WHERE o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
					"AND o.objsubid = 0 ORDER BY s.shard_id, p.node_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the dropped distributed tables");

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tuple, tupdesc, 1, &isnull));
		char	   *nspname = SPI_getvalue(tuple, tupdesc, 2);
		char	   *relname = SPI_getvalue(tuple, tupdesc, 3);
		int64		shardId = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 4, &isnull));
		int32		nodeId = DatumGetInt32(SPI_getbinval(tuple, tupdesc, 5, &isnull));
		NodeCommand *command = palloc(sizeof(NodeCommand));
		MemoryContext oldContext = MemoryContextSwitchTo(TopTransactionContext);

		command->node = LookupNodeById(nodeId, false);
		command->sql = psprintf("DROP TABLE IF EXISTS %s",
								ShardQualifiedNameFromParts(nspname, relname, shardId));
		commands = lappend(commands, command);
		dropped = list_append_unique_oid(dropped, relid);
		MemoryContextSwitchTo(oldContext);
	}
	SPI_finish();

	if (commands != NIL)
		ExecuteOnNodesInParallel(commands);

	foreach(lc, dropped)
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1];

		values[0] = ObjectIdGetDatum(lfirst_oid(lc));
		ExecuteCatalogWrite("DELETE FROM shardexec.dist_table WHERE table_id = $1",
							1, argtypes, values);
		InvalidateDistTableCache(lfirst_oid(lc));
	}
	if (dropped != NIL)
		ExecuteCatalogWrite("DELETE FROM shardexec.colocation c WHERE c.distribution_type IS NOT NULL "
							"AND NOT EXISTS (SELECT 1 FROM shardexec.dist_table d "
							"WHERE d.colocation_id = c.colocation_id)", 0, NULL, NULL);

	PG_RETURN_NULL();
}
