/*-------------------------------------------------------------------------
 *
 * ddl.c
 *		  Utility commands on distributed tables: the ProcessUtility hook
 *		  and the sql_drop event trigger.
 *
 * The local table of a distributed (or reference) table is an empty
 * shell; utility commands that would read or write its rows, or change
 * its shape, must reach the shards too:
 *  - COPY FROM parses the rows once on the coordinator (with every COPY
 *    option PostgreSQL supports) and routes them to the shards
 *    (shard_modify.c); COPY TO becomes COPY (SELECT ...) TO, which reads
 *    the shards through the planner hook.
 *  - TRUNCATE runs locally (privileges, locks) and on every shard.
 *  - DROP TABLE, DROP SCHEMA ... CASCADE and DROP OWNED: the sql_drop
 *    event trigger drops the shards and the metadata.
 *  - DDL that changes a table's shape: CREATE INDEX, DROP INDEX, ALTER
 *    TABLE (ADD / DROP / ALTER COLUMN: TYPE, SET / DROP DEFAULT, SET /
 *    DROP NOT NULL; ADD / DROP / VALIDATE CONSTRAINT), and the renames of
 *    a table, a column, a constraint or an index.
 * All of it runs inside the remote transactions that follow the local
 * one, so a failure on any node fails the statement and leaves the
 * coordinator's catalog and every node as they were.
 *
 * DDL propagation.  Each statement kind has one handler, which
 *   1. refuses, before anything runs, what cannot be done on shards (see
 *      below) and notes what it will need afterwards (the indexes or
 *      constraint names the table has now, a USING expression deparsed
 *      against the columns as they are);
 *   2. runs the statement locally, by standard processing: privileges,
 *      locks, validation, name choice and the catalog change all happen
 *      exactly as for an ordinary table;
 *   3. builds each shard's command from the catalog as the local command
 *      left it, and runs all of them with ExecuteOnNodesInParallel.
 * Deparsing from the catalog rather than re-printing the user's text
 * means names chosen by PostgreSQL (an unnamed index or constraint) are
 * the same on the shards, and expressions (defaults, CHECK constraints,
 * index expressions and predicates) are printed by ruleutils under the
 * nodes' search_path (pg_catalog) and date, interval and float formats,
 * so that every name is qualified where a node needs it and every
 * constant reads back the same there.  The USING expression of
 * ALTER COLUMN TYPE exists only in the statement: it is transformed as
 * ALTER TABLE would transform it, and deparsed the same way, before the
 * command runs.  Functions, types and operators that are not built in
 * must exist on the nodes too, or the statement fails there (and so
 * everywhere).
 *
 * Names on the shards: the shard of table t is t_<shard id>, and every
 * index and constraint c of t is c_<shard id> (ShardObjectName cuts the
 * name so it fits in NAMEDATALEN - 1 bytes); renames on the coordinator
 * rename the shards' objects to follow.
 *
 * ALTER TABLE: its subcommands reach each shard as one ALTER TABLE, in
 * the order given, so the shard does what the coordinator did.  New
 * constraints (ADD CONSTRAINT, and the inline constraints of ADD COLUMN)
 * are found after the local run by name, among the constraints that did
 * not exist before or that the statement dropped, and added after the
 * other subcommands, as PostgreSQL adds them in a later pass too.  Since
 * a column's shard subcommand is printed from the column's final state,
 * one statement may touch a column only once; separate statements may do
 * anything.
 *
 * Refused on distributed tables, each with a hint: foreign keys (either
 * way, also from local tables), exclusion constraints and unique indexes
 * or constraints that lack the distribution column (hash tables only: a
 * shard sees only its own rows), a change of type or the drop of the
 * distribution column, ADD COLUMN with a default the nodes cannot
 * evaluate (a sequence, user-defined objects) or an identity column, as
 * the shards' existing rows could not be filled in, CREATE / DROP INDEX
 * CONCURRENTLY (it cannot run inside the remote transaction block),
 * SET SCHEMA and renaming a schema that holds distributed tables,
 * inheritance and partitions, row-level security, triggers and rules,
 * ALTER INDEX other than RENAME, and every other ALTER TABLE subcommand.
 * OWNER TO and the identity subcommands (the coordinator computes the
 * values of identity columns) only change the coordinator.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/copyfrom_internal.h"
#include "commands/event_trigger.h"
#include "commands/tablecmds.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "shardexec/connection.h"
#include "shardexec/executor.h"
#include "shardexec/fdw.h"
#include "shardexec/metadata.h"
#include "shardexec/shardexec.h"

PG_FUNCTION_INFO_V1(shardexec_drop_trigger);

/*
 * UtilityCall holds the arguments of one ProcessUtility call, so that a
 * statement's handler can run it locally (run_locally) between the checks
 * it makes before and the shard commands it sends after.
 */
typedef struct UtilityCall
{
	PlannedStmt *pstmt;
	const char *queryString;
	bool		readOnlyTree;
	ProcessUtilityContext context;
	ParamListInfo params;
	QueryEnvironment *queryEnv;
	DestReceiver *dest;
	QueryCompletion *qc;
} UtilityCall;

/* one subcommand of ALTER TABLE on a distributed table, before it runs */
typedef struct PlannedSubcommand
{
	AlterTableCmd *cmd;
	bool		existed;		/* ADD / DROP COLUMN, DROP CONSTRAINT: the
								 * object existed before the statement */
	char	   *usingExpr;		/* ALTER COLUMN TYPE: the deparsed USING
								 * expression, or NULL */
} PlannedSubcommand;

/* how a shard's ALTER TABLE subcommand names the shard's objects */
typedef enum ShardActionKind
{
	SHARD_ACTION_TEXT,			/* text as is */
	SHARD_ACTION_ADD_CONSTRAINT,	/* ADD CONSTRAINT name text */
	SHARD_ACTION_ADD_CONSTRAINT_USING_INDEX,	/* ADD CONSTRAINT name text
												 * USING INDEX indexName */
	SHARD_ACTION_DROP_CONSTRAINT,	/* DROP CONSTRAINT name [CASCADE] */
	SHARD_ACTION_VALIDATE_CONSTRAINT	/* VALIDATE CONSTRAINT name */
} ShardActionKind;

/* one subcommand of the ALTER TABLE sent to every shard */
typedef struct ShardAction
{
	ShardActionKind kind;
	char	   *text;
	char	   *name;			/* a constraint's name on the coordinator */
	char	   *indexName;		/* an index's name on the coordinator */
	bool		cascade;
} ShardAction;

/* names of an object renamed, or of an index dropped */
typedef struct ShardObjectNames
{
	DistTableEntry *entry;
	char	   *nspname;
	char	   *oldName;
	char	   *newName;		/* NULL for a drop */
	bool		cascade;
} ShardObjectNames;

static ProcessUtility_hook_type prev_utility_hook = NULL;

static void shardexec_utility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc);
static void run_locally(UtilityCall *call);
static void copy_utility(CopyStmt *stmt, UtilityCall *call);
static bool copy_from_distributed(CopyStmt *stmt, const char *queryString,
								  QueryCompletion *qc);
static CopyStmt *copy_to_as_query(CopyStmt *stmt, Oid relid);
static void truncate_shards(TruncateStmt *stmt);
static DistTableEntry *distributed_table_of(const RangeVar *relation);
static int	set_node_deparse_modes(void);
static void create_index(IndexStmt *stmt, UtilityCall *call);
static char *build_create_index(Oid relid, int64 shardId, void *arg);
static void check_shard_index(DistTableEntry *entry, Oid indexId);
static bool created_in_this_transaction(Oid relid);
static void drop_index(DropStmt *stmt, UtilityCall *call);
static char *build_drop_index(Oid relid, int64 shardId, void *arg);
static void alter_table(AlterTableStmt *stmt, UtilityCall *call);
static void check_alter_local_table(AlterTableStmt *stmt, Oid relid);
static PlannedSubcommand *plan_alter_subcommand(Relation rel,
												DistTableEntry *entry,
												AlterTableCmd *cmd,
												List **columns,
												const char *queryString);
static bool is_distribution_column(DistTableEntry *entry, const char *colname);
static void check_column_once(List **columns, const char *colname,
							  Relation rel);
static char *deparse_using_expression(Relation rel, ColumnDef *def,
									  const char *queryString);
static ShardAction *shard_action_for(Relation rel, List *context,
									 PlannedSubcommand *sub);
static char *deparse_added_column(Relation rel, List *context,
								  const char *colname);
static char *deparse_column_default(Relation rel, List *context,
									const char *colname);
static List *new_constraint_actions(DistTableEntry *entry, List *before,
									List *dropped, List *usingIndex);
static List *constraint_names(Oid relid);
static bool string_list_member(List *list, const char *name);
static ShardAction *make_text_action(char *text);
static char *build_alter_table(Oid relid, int64 shardId, void *arg);
static char *alter_table_subcommand_name(AlterTableType subtype);
static void rename_object(RenameStmt *stmt, UtilityCall *call);
static char *build_rename_table(Oid relid, int64 shardId, void *arg);
static char *build_rename_index(Oid relid, int64 shardId, void *arg);
static char *build_rename_column(Oid relid, int64 shardId, void *arg);
static char *build_rename_constraint(Oid relid, int64 shardId, void *arg);
static void check_rename_schema(RenameStmt *stmt);
static void check_alter_object_schema(AlterObjectSchemaStmt *stmt);
static void check_create_trigger(CreateTrigStmt *stmt);
static void check_create_rule(RuleStmt *stmt);
static void check_create_table(CreateStmt *stmt);
static void check_foreign_key(Constraint *con, DistTableEntry *referencing,
							  const char *relname);

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

/*
 * run_locally runs the statement of call through the next
 * ProcessUtility hook, or standard processing.
 */
static void
run_locally(UtilityCall *call)
{
	if (prev_utility_hook)
		prev_utility_hook(call->pstmt, call->queryString, call->readOnlyTree,
						  call->context, call->params, call->queryEnv,
						  call->dest, call->qc);
	else
		standard_ProcessUtility(call->pstmt, call->queryString,
								call->readOnlyTree, call->context,
								call->params, call->queryEnv, call->dest,
								call->qc);
}

/*
 * shardexec_utility is the ProcessUtility hook: it hands each statement
 * kind that may concern a distributed table to its handler, which runs
 * the statement locally itself.
 */
static void check_drop_node_server(DropStmt *stmt);

static void
shardexec_utility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	UtilityCall call;

	call.pstmt = pstmt;
	call.queryString = queryString;
	call.readOnlyTree = readOnlyTree;
	call.context = context;
	call.params = params;
	call.queryEnv = queryEnv;
	call.dest = dest;
	call.qc = qc;

	if (!ShardexecExtensionLoaded())
	{
		run_locally(&call);
		return;
	}

	switch (nodeTag(parsetree))
	{
		case T_CopyStmt:
			copy_utility((CopyStmt *) parsetree, &call);
			break;
		case T_TruncateStmt:
			run_locally(&call);
			truncate_shards((TruncateStmt *) parsetree);
			break;
		case T_IndexStmt:
			create_index((IndexStmt *) parsetree, &call);
			break;
		case T_DropStmt:
			if (((DropStmt *) parsetree)->removeType == OBJECT_INDEX)
				drop_index((DropStmt *) parsetree, &call);
			else
			{
				check_drop_node_server((DropStmt *) parsetree);
				run_locally(&call);
			}
			break;
		case T_AlterTableStmt:
			alter_table((AlterTableStmt *) parsetree, &call);
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_FOREIGN_SERVER &&
				LookupNodeByName(strVal(((RenameStmt *) parsetree)->object), true) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_IN_USE),
						 errmsg("cannot rename server \"%s\" because it is a shardexec node",
								strVal(((RenameStmt *) parsetree)->object)),
						 errdetail("A node's name is the name of its foreign server.")));
			rename_object((RenameStmt *) parsetree, &call);
			break;
		case T_AlterObjectSchemaStmt:
			check_alter_object_schema((AlterObjectSchemaStmt *) parsetree);
			run_locally(&call);
			break;
		case T_CreateTrigStmt:
			check_create_trigger((CreateTrigStmt *) parsetree);
			run_locally(&call);
			break;
		case T_RuleStmt:
			check_create_rule((RuleStmt *) parsetree);
			run_locally(&call);
			break;
		case T_CreateStmt:
			check_create_table((CreateStmt *) parsetree);
			run_locally(&call);
			break;
		default:
			run_locally(&call);
			break;
	}
}

/*
 * check_drop_node_server refuses DROP SERVER of a node's foreign server
 * and DROP FOREIGN DATA WRAPPER shardexec while nodes exist: the node
 * must be removed with shardexec.remove_node, which checks for shards.
 */
static void
check_drop_node_server(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType == OBJECT_FOREIGN_SERVER)
	{
		foreach(lc, stmt->objects)
		{
			const char *name = strVal(lfirst(lc));

			if (LookupNodeByName(name, true) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
						 errmsg("cannot drop server \"%s\" because it is a shardexec node", name),
						 errhint("Use shardexec.remove_node('%s').", name)));
		}
	}
	else if (stmt->removeType == OBJECT_FDW)
	{
		foreach(lc, stmt->objects)
		{
			if (strcmp(strVal(lfirst(lc)), "shardexec") == 0 && ShardexecNodeList() != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
						 errmsg("cannot drop foreign-data wrapper \"shardexec\" while nodes exist"),
						 errhint("Remove the nodes with shardexec.remove_node(), or drop the extension.")));
		}
	}
}

/*
 * copy_utility runs COPY: into a distributed table, the rows go to the
 * shards; out of one, COPY TO reads it through a query.
 */
static void
copy_utility(CopyStmt *stmt, UtilityCall *call)
{
	if (stmt->relation != NULL)
	{
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

		if (OidIsValid(relid) && IsDistributedTable(relid))
		{
			if (stmt->is_from)
			{
				if (copy_from_distributed(stmt, call->queryString, call->qc))
					return;
			}
			else
			{
				UtilityCall copyTo = *call;

				copyTo.pstmt = copyObject(call->pstmt);
				copyTo.pstmt->utilityStmt = (Node *) copy_to_as_query(stmt, relid);
				copyTo.readOnlyTree = false;
				run_locally(&copyTo);
				return;
			}
		}
	}
	run_locally(call);
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
	slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsHeapTuple);
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
		ExecForceStoreHeapTuple(heap_form_tuple(tupdesc, values, nulls), slot, false);
		ShardCopySetLine(copy, cstate->cur_lineno);
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
static char *
build_truncate(Oid relid, int64 shardId, void *arg)
{
	return psprintf("TRUNCATE TABLE %s", ShardQualifiedName(relid, shardId));
}

static void
truncate_shards(TruncateStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst(lc);
		DistTableEntry *entry = LookupDistTable(RangeVarGetRelid(rv, NoLock, false));

		if (entry != NULL)
			RunOnShards(entry, build_truncate, NULL);
	}
}

/*
 * RunOnShards runs, inside the remote transactions, the command that
 * build returns for each shard of entry's table on every node holding
 * the shard, then invalidates the table's cached metadata.  The caller
 * has run the statement locally already.
 */
void
RunOnShards(DistTableEntry *entry, ShardCommandBuilder build, void *arg)
{
	List	   *commands = NIL;
	int			i;

	for (i = 0; i < entry->shardCount; i++)
	{
		ShardInterval *shard = &entry->shards[i];
		char	   *sql = build(entry->relid, shard->shardId, arg);
		ListCell   *lc;

		if (sql == NULL)
			continue;
		foreach(lc, ShardPlacementNodes(entry, shard))
		{
			NodeCommand *command = palloc(sizeof(NodeCommand));

			command->node = lfirst(lc);
			command->sql = sql;
			commands = lappend(commands, command);
		}
	}
	if (commands != NIL)
		ExecuteOnNodesInParallel(commands);
	InvalidateDistTableCache(entry->relid);
}

/*
 * distributed_table_of returns the metadata of the distributed table
 * relation names, or NULL if it names none (or nothing).  It takes no
 * lock: the statement takes its own when it runs.
 */
static DistTableEntry *
distributed_table_of(const RangeVar *relation)
{
	Oid			relid;

	if (relation == NULL)
		return NULL;
	relid = RangeVarGetRelid(relation, NoLock, true);
	if (!OidIsValid(relid))
		return NULL;
	return LookupDistTable(relid);
}

/*
 * set_node_deparse_modes makes ruleutils print expressions for the nodes:
 * names qualified for their search_path (pg_catalog), constants in the
 * date, interval and float formats their sessions parse, whatever the
 * local session's settings.  Returns the GUC nest level to pass to
 * ResetTransmissionModes, which undoes both.
 */
static int
set_node_deparse_modes(void)
{
	int			nestlevel = SetDeparseSearchPath();

	(void) SetTransmissionModes();	/* nested inside nestlevel */
	return nestlevel;
}

/*
 * create_index runs CREATE INDEX on a distributed table: locally first,
 * then the new index, deparsed from the catalog, on every shard.  The new
 * index is the one the table did not have before and that this
 * transaction created (another backend may create one at the same time:
 * CREATE INDEX does not lock out CREATE INDEX).  CREATE INDEX IF NOT
 * EXISTS that finds the index creates nothing, here or on the shards.
 */
static void
create_index(IndexStmt *stmt, UtilityCall *call)
{
	DistTableEntry *entry = distributed_table_of(stmt->relation);
	Oid			relid;
	Relation	rel;
	List	   *before;
	List	   *created = NIL;
	ListCell   *lc;

	if (entry == NULL)
	{
		run_locally(call);
		return;
	}
	if (stmt->concurrent)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("CREATE INDEX CONCURRENTLY is not supported on distributed table \"%s\"",
						get_rel_name(entry->relid)),
				 errdetail("The shards' indexes are built inside the remote transactions, where CONCURRENTLY cannot run."),
				 errhint("Use CREATE INDEX without CONCURRENTLY.")));

	/* the ownership check and the lock that CREATE INDEX takes */
	relid = RangeVarGetRelidExtended(stmt->relation, ShareLock, 0,
									 RangeVarCallbackOwnsRelation, NULL);
	entry = LookupDistTable(relid);
	if (entry == NULL)
	{
		run_locally(call);
		return;
	}
	rel = table_open(relid, NoLock);
	before = RelationGetIndexList(rel);
	table_close(rel, NoLock);

	run_locally(call);

	rel = table_open(relid, NoLock);
	foreach(lc, RelationGetIndexList(rel))
	{
		Oid			indexId = lfirst_oid(lc);

		if (list_member_oid(before, indexId) || !created_in_this_transaction(indexId))
			continue;
		check_shard_index(entry, indexId);
		created = lappend_oid(created, indexId);
	}
	table_close(rel, NoLock);

	RunOnShards(entry, build_create_index, created);
}

/*
 * build_create_index is the ShardCommandBuilder of create_index: arg is
 * the list of the new indexes.
 */
static char *
build_create_index(Oid relid, int64 shardId, void *arg)
{
	List	   *indexes = (List *) arg;
	StringInfoData sql;
	ListCell   *lc;

	if (indexes == NIL)
		return NULL;
	initStringInfo(&sql);
	foreach(lc, indexes)
	{
		if (sql.len > 0)
			appendStringInfoString(&sql, ";\n");
		appendStringInfoString(&sql, ShardIndexCommand(lfirst_oid(lc), shardId));
	}
	return sql.data;
}

/*
 * check_shard_index refuses an index that the shards of a hash table
 * could not enforce: an exclusion constraint, or a unique index without
 * the distribution column among its key columns (a shard only sees its
 * own rows; rows with equal distribution values share a shard).  For an
 * index that backs a constraint, the index has the constraint's name.
 */
static void
check_shard_index(DistTableEntry *entry, Oid indexId)
{
	Relation	index;
	bool		exclusion;
	bool		unique;
	bool		hasColumn = false;
	int			i;

	if (entry->kind != DIST_KIND_HASH)
		return;

	index = index_open(indexId, AccessShareLock);
	exclusion = index->rd_index->indisexclusion;
	unique = index->rd_index->indisunique;
	for (i = 0; i < index->rd_index->indnkeyatts; i++)
		if (index->rd_index->indkey.values[i] == entry->distAttnum)
			hasColumn = true;
	index_close(index, AccessShareLock);

	if (exclusion)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("exclusion constraints are not supported on distributed table \"%s\"",
						get_rel_name(entry->relid)),
				 errdetail("Each shard could only enforce constraint \"%s\" among its own rows.",
						   get_rel_name(indexId)),
				 errhint("Use a reference table, whose copies hold every row.")));
	if (unique && !hasColumn)
	{
		char	   *column = get_attname(entry->relid, entry->distAttnum, false);

		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unique index \"%s\" on distributed table \"%s\" must include the distribution column \"%s\"",
						get_rel_name(indexId), get_rel_name(entry->relid), column),
				 errdetail("Each shard enforces uniqueness among its own rows only, and only rows with equal values of the distribution column are always on the same shard."),
				 errhint("Add column \"%s\" to the index or constraint.", column)));
	}
}

/*
 * created_in_this_transaction says whether relation relid was created
 * (or its pg_class row last written) by the current transaction.
 */
static bool
created_in_this_transaction(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		result;

	if (!HeapTupleIsValid(tuple))
		return false;
	result = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data));
	ReleaseSysCache(tuple);
	return result;
}

/*
 * drop_index runs DROP INDEX: locally, then on the shards of every
 * distributed table one of the dropped indexes belonged to.  The indexes
 * and their tables are looked up before they are gone.
 */
static void
drop_index(DropStmt *stmt, UtilityCall *call)
{
	List	   *dropped = NIL;
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));
		Oid			indexId = RangeVarGetRelid(rv, NoLock, true);
		Oid			relid;
		DistTableEntry *entry;
		ShardObjectNames *names;

		if (!OidIsValid(indexId) || get_rel_relkind(indexId) != RELKIND_INDEX)
			continue;
		relid = IndexGetRelation(indexId, true);
		if (!OidIsValid(relid) || (entry = LookupDistTable(relid)) == NULL)
			continue;
		if (stmt->concurrent)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("DROP INDEX CONCURRENTLY is not supported on distributed table \"%s\"",
							get_rel_name(relid)),
					 errdetail("The shards' indexes are dropped inside the remote transactions, where CONCURRENTLY cannot run."),
					 errhint("Use DROP INDEX without CONCURRENTLY.")));

		names = palloc0(sizeof(ShardObjectNames));
		names->entry = entry;
		names->nspname = get_namespace_name(get_rel_namespace(indexId));
		names->oldName = get_rel_name(indexId);
		names->cascade = (stmt->behavior == DROP_CASCADE);
		dropped = lappend(dropped, names);
	}

	run_locally(call);

	foreach(lc, dropped)
	{
		ShardObjectNames *names = lfirst(lc);

		RunOnShards(names->entry, build_drop_index, names);
	}
}

/*
 * build_drop_index is the ShardCommandBuilder of drop_index.
 */
static char *
build_drop_index(Oid relid, int64 shardId, void *arg)
{
	ShardObjectNames *names = arg;

	return psprintf("DROP INDEX %s%s",
					quote_qualified_identifier(names->nspname,
											   ShardObjectName(names->oldName, shardId)),
					names->cascade ? " CASCADE" : "");
}

/*
 * alter_table runs ALTER TABLE.  On a distributed table it checks every
 * subcommand and notes what it needs, runs the statement locally, and
 * sends each shard one ALTER TABLE with the shard's form of the
 * subcommands (see the file header).  On another table it only refuses
 * what would tie it to a distributed table.
 */
static void
alter_table(AlterTableStmt *stmt, UtilityCall *call)
{
	DistTableEntry *entry = distributed_table_of(stmt->relation);
	Oid			relid;
	Relation	rel;
	List	   *planned = NIL;
	List	   *columns = NIL;
	List	   *droppedConstraints = NIL;
	List	   *usingIndex = NIL;
	List	   *before;
	List	   *actions = NIL;
	List	   *context;
	int			nestlevel;
	ListCell   *lc;

	if (entry == NULL)
	{
		relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (OidIsValid(relid))
			check_alter_local_table(stmt, relid);
		run_locally(call);
		return;
	}

	/* the ownership check and the lock that ALTER TABLE takes */
	relid = AlterTableLookupRelation(stmt, AlterTableGetLockLevel(stmt->cmds));
	entry = LookupDistTable(relid);
	if (entry == NULL)
	{
		run_locally(call);
		return;
	}

	rel = table_open(relid, NoLock);
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		PlannedSubcommand *sub = plan_alter_subcommand(rel, entry, cmd, &columns,
													   call->queryString);

		if (sub == NULL)
			continue;
		planned = lappend(planned, sub);
		if (cmd->subtype == AT_DropConstraint)
			droppedConstraints = lappend(droppedConstraints, cmd->name);
		if (cmd->subtype == AT_AddConstraint &&
			castNode(Constraint, cmd->def)->indexname != NULL)
			usingIndex = lappend(usingIndex, cmd->def);
	}
	table_close(rel, NoLock);
	before = constraint_names(relid);

	run_locally(call);

	/* the shard's subcommands, from the catalog as the statement left it */
	rel = table_open(relid, NoLock);
	nestlevel = set_node_deparse_modes();
	context = deparse_context_for(RelationGetRelationName(rel), relid);
	foreach(lc, planned)
	{
		ShardAction *action = shard_action_for(rel, context, lfirst(lc));

		if (action != NULL)
			actions = lappend(actions, action);
	}
	actions = list_concat(actions, new_constraint_actions(entry, before,
														  droppedConstraints,
														  usingIndex));
	ResetTransmissionModes(nestlevel);
	table_close(rel, NoLock);

	if (actions != NIL)
		RunOnShards(entry, build_alter_table, actions);
	else
		InvalidateDistTableCache(relid);
}

/*
 * check_alter_local_table refuses ALTER TABLE (or ALTER INDEX) on relid,
 * which is not a distributed table, when it would tie relid to one: a
 * foreign key that references one, inheriting from one, attaching one as
 * a partition; and any ALTER INDEX but RENAME on an index of one.
 */
static void
check_alter_local_table(AlterTableStmt *stmt, Oid relid)
{
	ListCell   *lc;

	if (get_rel_relkind(relid) == RELKIND_INDEX)
	{
		Oid			tableId = IndexGetRelation(relid, true);

		if (OidIsValid(tableId) && IsDistributedTable(tableId))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("ALTER INDEX is not supported on index \"%s\" of distributed table \"%s\"",
							get_rel_name(relid), get_rel_name(tableId)),
					 errhint("Only ALTER INDEX ... RENAME reaches the shards; drop the index and create it again instead.")));
		return;
	}

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_AddConstraint:
				check_foreign_key(castNode(Constraint, cmd->def), NULL, NULL);
				break;
			case AT_AddColumn:
				{
					ListCell   *cc;

					foreach(cc, castNode(ColumnDef, cmd->def)->constraints)
						check_foreign_key(lfirst_node(Constraint, cc), NULL, NULL);
				}
				break;
			case AT_AddInherit:
				{
					RangeVar   *parent = (RangeVar *) cmd->def;

					if (distributed_table_of(parent) != NULL)
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("cannot inherit from distributed table \"%s\"",
										parent->relname),
								 errdetail("The rows of a distributed table are on the nodes, where its children could not be scanned with it."),
								 errhint("Use separate tables.")));
				}
				break;
			case AT_AttachPartition:
				{
					RangeVar   *partition = castNode(PartitionCmd, cmd->def)->name;

					if (distributed_table_of(partition) != NULL)
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("cannot attach distributed table \"%s\" as a partition",
										partition->relname),
								 errdetail("Partitioned tables with distributed partitions are not supported."),
								 errhint("Undistribute the table with shardexec.undistribute_table() first.")));
				}
				break;
			default:
				break;
		}
	}
}

/*
 * plan_alter_subcommand checks one subcommand of ALTER TABLE on
 * distributed table rel before the statement runs, and notes what its
 * shard form will need.  Returns NULL for a subcommand that only changes
 * the coordinator.  columns collects the columns the statement touches.
 */
static PlannedSubcommand *
plan_alter_subcommand(Relation rel, DistTableEntry *entry, AlterTableCmd *cmd,
					  List **columns, const char *queryString)
{
	PlannedSubcommand *sub = palloc0(sizeof(PlannedSubcommand));
	char	   *relname = RelationGetRelationName(rel);
	Oid			relid = RelationGetRelid(rel);

	sub->cmd = cmd;

	switch (cmd->subtype)
	{
		case AT_AddColumn:
			{
				ColumnDef  *def = castNode(ColumnDef, cmd->def);
				ListCell   *lc;

				check_column_once(columns, def->colname, rel);
				foreach(lc, def->constraints)
				{
					Constraint *con = lfirst_node(Constraint, lc);

					check_foreign_key(con, entry, relname);
					if (con->contype == CONSTR_IDENTITY)
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("cannot add identity column \"%s\" to distributed table \"%s\"",
										def->colname, relname),
								 errdetail("The rows already on the shards could not be given values of the coordinator's sequence."),
								 errhint("Add an ordinary column, fill it, then make it an identity column with ALTER TABLE ... ALTER COLUMN ... ADD GENERATED ... AS IDENTITY.")));
				}
				sub->existed = (get_attnum(relid, def->colname) != InvalidAttrNumber);
			}
			break;
		case AT_DropColumn:
			check_column_once(columns, cmd->name, rel);
			if (is_distribution_column(entry, cmd->name))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot drop distribution column \"%s\" of distributed table \"%s\"",
								cmd->name, relname),
						 errhint("Undistribute the table with shardexec.undistribute_table() first.")));
			sub->existed = (get_attnum(relid, cmd->name) != InvalidAttrNumber);
			break;
		case AT_AlterColumnType:
			check_column_once(columns, cmd->name, rel);
			if (is_distribution_column(entry, cmd->name))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot change the type of distribution column \"%s\" of distributed table \"%s\"",
								cmd->name, relname),
						 errdetail("Rows are placed on the shards by the hash of the column's value, which depends on its type."),
						 errhint("Undistribute the table with shardexec.undistribute_table(), alter the column, and distribute the table again.")));
			sub->usingExpr = deparse_using_expression(rel, castNode(ColumnDef, cmd->def),
													  queryString);
			break;
		case AT_ColumnDefault:
		case AT_SetNotNull:
		case AT_DropNotNull:
			check_column_once(columns, cmd->name, rel);
			break;
		case AT_AddConstraint:
			check_foreign_key(castNode(Constraint, cmd->def), entry, relname);
			break;
		case AT_DropConstraint:
			sub->existed = OidIsValid(get_relation_constraint_oid(relid, cmd->name, true));
			break;
		case AT_ValidateConstraint:
			break;

			/* the coordinator's business only */
		case AT_ChangeOwner:
		case AT_AddIdentity:
		case AT_SetIdentity:
		case AT_DropIdentity:
		case AT_DisableRowSecurity:
		case AT_NoForceRowSecurity:
			return NULL;

		case AT_EnableRowSecurity:
		case AT_ForceRowSecurity:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("row-level security is not supported on distributed table \"%s\"",
							relname),
					 errdetail("Queries on distributed tables run on the nodes, where the coordinator's policies do not apply."),
					 errhint("Grant privileges on the table, or undistribute it with shardexec.undistribute_table().")));
			break;
		case AT_AddInherit:
		case AT_DropInherit:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("inheritance is not supported on distributed table \"%s\"",
							relname),
					 errdetail("The rows of a distributed table are on the nodes, where its parents and children could not be scanned with it."),
					 errhint("Use separate tables.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("ALTER TABLE ... %s is not supported on distributed table \"%s\"",
							alter_table_subcommand_name(cmd->subtype), relname),
					 errhint("Undistribute the table with shardexec.undistribute_table(), alter it, and distribute it again.")));
	}
	return sub;
}

/*
 * is_distribution_column says whether colname is the distribution column
 * of entry's table (reference tables have none).
 */
static bool
is_distribution_column(DistTableEntry *entry, const char *colname)
{
	return entry->kind == DIST_KIND_HASH &&
		get_attnum(entry->relid, colname) == entry->distAttnum;
}

/*
 * check_column_once refuses a second subcommand on the same column in
 * one ALTER TABLE: a column's shard subcommand is printed from the
 * column's state after the statement.
 */
static void
check_column_once(List **columns, const char *colname, Relation rel)
{
	if (string_list_member(*columns, colname))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot alter column \"%s\" of distributed table \"%s\" twice in one statement",
						colname, RelationGetRelationName(rel)),
				 errhint("Run the subcommands as separate ALTER TABLE statements.")));
	*columns = lappend(*columns, (char *) colname);
}

/*
 * deparse_using_expression returns the USING expression of ALTER COLUMN
 * ... TYPE, deparsed for the nodes, or NULL if there is none.  It is
 * transformed and coerced to the new type as ALTER TABLE does it, against
 * rel's columns before the statement runs.  If the coercion fails,
 * returns NULL: the local command reports the error.
 */
static char *
deparse_using_expression(Relation rel, ColumnDef *def, const char *queryString)
{
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *expr;
	Oid			targetType;
	int32		targetTypmod;
	char	   *result = NULL;
	int			nestlevel;

	if (def->raw_default == NULL)
		return NULL;

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = queryString;
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock,
										   NULL, false, true);
	addNSItemToQuery(pstate, nsitem, false, true, true);
	expr = transformExpr(pstate, copyObject(def->raw_default),
						 EXPR_KIND_ALTER_COL_TRANSFORM);
	typenameTypeIdAndMod(pstate, def->typeName, &targetType, &targetTypmod);
	expr = coerce_to_target_type(pstate, expr, exprType(expr),
								 targetType, targetTypmod,
								 COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
	if (expr != NULL)
	{
		assign_expr_collations(pstate, expr);
		nestlevel = set_node_deparse_modes();
		result = deparse_expression(expr,
									deparse_context_for(RelationGetRelationName(rel),
														RelationGetRelid(rel)),
									false, false);
		ResetTransmissionModes(nestlevel);
	}
	free_parsestate(pstate);
	return result;
}

/*
 * shard_action_for returns the shard form of a subcommand of ALTER TABLE
 * that has run locally, or NULL if the shards have nothing to do.  rel is
 * the table as the statement left it; context is its deparse context.
 * New constraints are new_constraint_actions' business.
 */
static ShardAction *
shard_action_for(Relation rel, List *context, PlannedSubcommand *sub)
{
	AlterTableCmd *cmd = sub->cmd;
	ShardAction *action;

	switch (cmd->subtype)
	{
		case AT_AddColumn:
			if (sub->existed)
				return NULL;	/* IF NOT EXISTS found it */
			return make_text_action(deparse_added_column(rel, context,
														 castNode(ColumnDef, cmd->def)->colname));
		case AT_DropColumn:
			if (!sub->existed)
				return NULL;	/* IF EXISTS did not find it */
			return make_text_action(psprintf("DROP COLUMN %s%s",
											 quote_identifier(cmd->name),
											 cmd->behavior == DROP_CASCADE ? " CASCADE" : ""));
		case AT_AlterColumnType:
			{
				AttrNumber	attnum = get_attnum(RelationGetRelid(rel), cmd->name);
				Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
				StringInfoData buf;

				initStringInfo(&buf);
				appendStringInfo(&buf, "ALTER COLUMN %s TYPE %s",
								 quote_identifier(cmd->name),
								 format_type_with_typemod(attr->atttypid, attr->atttypmod));
				if (OidIsValid(attr->attcollation) &&
					attr->attcollation != get_typcollation(attr->atttypid))
					appendStringInfo(&buf, " COLLATE %s",
									 generate_collation_name(attr->attcollation));
				if (sub->usingExpr != NULL)
					appendStringInfo(&buf, " USING %s", sub->usingExpr);
				return make_text_action(buf.data);
			}
		case AT_ColumnDefault:
			return make_text_action(deparse_column_default(rel, context, cmd->name));
		case AT_SetNotNull:
			return make_text_action(psprintf("ALTER COLUMN %s SET NOT NULL",
											 quote_identifier(cmd->name)));
		case AT_DropNotNull:
			return make_text_action(psprintf("ALTER COLUMN %s DROP NOT NULL",
											 quote_identifier(cmd->name)));
		case AT_DropConstraint:
			if (!sub->existed)
				return NULL;
			action = palloc0(sizeof(ShardAction));
			action->kind = SHARD_ACTION_DROP_CONSTRAINT;
			action->name = cmd->name;
			action->cascade = (cmd->behavior == DROP_CASCADE);
			return action;
		case AT_ValidateConstraint:
			action = palloc0(sizeof(ShardAction));
			action->kind = SHARD_ACTION_VALIDATE_CONSTRAINT;
			action->name = cmd->name;
			return action;
		default:
			return NULL;
	}
}

/*
 * deparse_added_column returns ADD COLUMN for column colname of rel, as
 * the local command created it: type, collation, NOT NULL, and the
 * default or generation expression, which fills the rows the shards
 * already have.  A default the nodes cannot evaluate is refused, since
 * those rows could not be filled.
 */
static char *
deparse_added_column(Relation rel, List *context, const char *colname)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), colname);
	Form_pg_attribute attr;
	StringInfoData buf;

	if (attnum == InvalidAttrNumber)
		elog(ERROR, "column \"%s\" of relation \"%s\" was not added",
			 colname, RelationGetRelationName(rel));
	attr = TupleDescAttr(RelationGetDescr(rel), attnum - 1);

	initStringInfo(&buf);
	appendStringInfo(&buf, "ADD COLUMN %s %s", quote_identifier(colname),
					 format_type_with_typemod(attr->atttypid, attr->atttypmod));
	if (OidIsValid(attr->attcollation) &&
		attr->attcollation != get_typcollation(attr->atttypid))
		appendStringInfo(&buf, " COLLATE %s", generate_collation_name(attr->attcollation));
	if (attr->attnotnull)
		appendStringInfoString(&buf, " NOT NULL");
	if (attr->atthasdef)
	{
		Node	   *expr = build_column_default(rel, attnum);

		if (attr->attgenerated == ATTRIBUTE_GENERATED_STORED)
			appendStringInfo(&buf, " GENERATED ALWAYS AS (%s) STORED",
							 deparse_expression(expr, context, false, false));
		else if (expr != NULL && IsShippableDefault(expr))
			appendStringInfo(&buf, " DEFAULT %s",
							 deparse_expression(expr, context, false, false));
		else
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot add column \"%s\" with a default the nodes cannot evaluate to distributed table \"%s\"",
							colname, RelationGetRelationName(rel)),
					 errdetail("The default uses a sequence or a function, operator or type that is not built in, so the rows already on the shards could not be filled in."),
					 errhint("Add the column without a default, then set the default with ALTER TABLE ... ALTER COLUMN ... SET DEFAULT.")));
	}
	return buf.data;
}

/*
 * deparse_column_default returns the shard form of SET DEFAULT or DROP
 * DEFAULT on column colname: the column's default as the statement left
 * it, if the nodes can evaluate it, else DROP DEFAULT (the coordinator
 * computes the defaults of the rows it inserts; the shards' defaults only
 * serve ADD COLUMN, as in create_distributed_table).
 */
static char *
deparse_column_default(Relation rel, List *context, const char *colname)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), colname);
	Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel), attnum - 1);

	if (attr->atthasdef && !attr->attgenerated)
	{
		Node	   *expr = build_column_default(rel, attnum);

		if (expr != NULL && IsShippableDefault(expr))
			return psprintf("ALTER COLUMN %s SET DEFAULT %s", quote_identifier(colname),
							deparse_expression(expr, context, false, false));
	}
	return psprintf("ALTER COLUMN %s DROP DEFAULT", quote_identifier(colname));
}

/*
 * new_constraint_actions returns the ADD CONSTRAINT subcommands for the
 * constraints the statement added to entry's table: those whose name was
 * not among before, or was dropped by the statement (dropped).  Their
 * definitions come from pg_get_constraintdef, under the nodes'
 * search_path (the caller sets it).  usingIndex holds the statement's
 * ADD CONSTRAINT ... USING INDEX, which use the shard's copy of the
 * index.  Unique, primary key and exclusion constraints of a hash table
 * are checked as CREATE INDEX checks its indexes.
 */
static List *
new_constraint_actions(DistTableEntry *entry, List *before, List *dropped,
					   List *usingIndex)
{
	List	   *actions = NIL;
	Relation	conrel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;

	conrel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(entry->relid));
	scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true,
							  NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tuple);
		char	   *name = NameStr(con->conname);
		ShardAction *action;
		ListCell   *lc;

		if (string_list_member(before, name) && !string_list_member(dropped, name))
			continue;
		if (OidIsValid(con->conindid))
			check_shard_index(entry, con->conindid);

		action = palloc0(sizeof(ShardAction));
		action->kind = SHARD_ACTION_ADD_CONSTRAINT;
		action->name = pstrdup(name);
		foreach(lc, usingIndex)
		{
			Constraint *stmtCon = lfirst(lc);
			char	   *stmtName = stmtCon->conname ? stmtCon->conname : stmtCon->indexname;

			if (strcmp(stmtName, name) == 0)
			{
				action->kind = SHARD_ACTION_ADD_CONSTRAINT_USING_INDEX;
				action->indexName = stmtCon->indexname;
				action->text = psprintf("%s%s",
										con->contype == CONSTRAINT_PRIMARY ? "PRIMARY KEY" : "UNIQUE",
										!con->condeferrable ? "" :
										con->condeferred ? " DEFERRABLE INITIALLY DEFERRED" :
										" DEFERRABLE");
			}
		}
		if (action->kind == SHARD_ACTION_ADD_CONSTRAINT)
			action->text = TextDatumGetCString(DirectFunctionCall1(pg_get_constraintdef,
																   ObjectIdGetDatum(con->oid)));
		actions = lappend(actions, action);
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	return actions;
}

/*
 * constraint_names returns the names of relid's constraints.
 */
static List *
constraint_names(Oid relid)
{
	List	   *names = NIL;
	Relation	conrel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;

	conrel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true,
							  NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		names = lappend(names,
						pstrdup(NameStr(((Form_pg_constraint) GETSTRUCT(tuple))->conname)));
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
	return names;
}

/*
 * string_list_member says whether list, of C strings, holds name.
 */
static bool
string_list_member(List *list, const char *name)
{
	ListCell   *lc;

	foreach(lc, list)
	{
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	}
	return false;
}

/*
 * make_text_action returns a ShardAction sent as text, the same on every
 * shard.
 */
static ShardAction *
make_text_action(char *text)
{
	ShardAction *action = palloc0(sizeof(ShardAction));

	action->kind = SHARD_ACTION_TEXT;
	action->text = text;
	return action;
}

/*
 * build_alter_table is the ShardCommandBuilder of alter_table: arg is
 * the list of ShardActions, which name the shard's own constraints and
 * indexes.
 */
static char *
build_alter_table(Oid relid, int64 shardId, void *arg)
{
	List	   *actions = (List *) arg;
	StringInfoData sql;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfo(&sql, "ALTER TABLE %s ", ShardQualifiedName(relid, shardId));
	foreach(lc, actions)
	{
		ShardAction *action = lfirst(lc);
		const char *name = action->name ?
			quote_identifier(ShardObjectName(action->name, shardId)) : NULL;

		if (lc != list_head(actions))
			appendStringInfoString(&sql, ", ");
		switch (action->kind)
		{
			case SHARD_ACTION_TEXT:
				appendStringInfoString(&sql, action->text);
				break;
			case SHARD_ACTION_ADD_CONSTRAINT:
				appendStringInfo(&sql, "ADD CONSTRAINT %s %s", name, action->text);
				break;
			case SHARD_ACTION_ADD_CONSTRAINT_USING_INDEX:
				appendStringInfo(&sql, "ADD CONSTRAINT %s %s USING INDEX %s", name,
								 action->text,
								 quote_identifier(ShardObjectName(action->indexName, shardId)));
				break;
			case SHARD_ACTION_DROP_CONSTRAINT:
				appendStringInfo(&sql, "DROP CONSTRAINT %s%s", name,
								 action->cascade ? " CASCADE" : "");
				break;
			case SHARD_ACTION_VALIDATE_CONSTRAINT:
				appendStringInfo(&sql, "VALIDATE CONSTRAINT %s", name);
				break;
		}
	}
	return sql.data;
}

/*
 * alter_table_subcommand_name returns how ALTER TABLE spells subtype, for
 * the error that refuses it.
 */
static char *
alter_table_subcommand_name(AlterTableType subtype)
{
	switch (subtype)
	{
		case AT_DropExpression:
			return "ALTER COLUMN ... DROP EXPRESSION";
		case AT_SetStatistics:
			return "ALTER COLUMN ... SET STATISTICS";
		case AT_SetOptions:
			return "ALTER COLUMN ... SET";
		case AT_ResetOptions:
			return "ALTER COLUMN ... RESET";
		case AT_SetStorage:
			return "ALTER COLUMN ... SET STORAGE";
		case AT_SetCompression:
			return "ALTER COLUMN ... SET COMPRESSION";
		case AT_AlterColumnGenericOptions:
			return "ALTER COLUMN ... OPTIONS";
		case AT_AlterConstraint:
			return "ALTER CONSTRAINT";
		case AT_ClusterOn:
			return "CLUSTER ON";
		case AT_DropCluster:
			return "SET WITHOUT CLUSTER";
		case AT_SetLogged:
			return "SET LOGGED";
		case AT_SetUnLogged:
			return "SET UNLOGGED";
		case AT_DropOids:
			return "SET WITHOUT OIDS";
		case AT_SetAccessMethod:
			return "SET ACCESS METHOD";
		case AT_SetTableSpace:
			return "SET TABLESPACE";
		case AT_SetRelOptions:
			return "SET (...)";
		case AT_ResetRelOptions:
			return "RESET (...)";
		case AT_EnableTrig:
		case AT_EnableAlwaysTrig:
		case AT_EnableReplicaTrig:
		case AT_EnableTrigAll:
		case AT_EnableTrigUser:
			return "ENABLE TRIGGER";
		case AT_DisableTrig:
		case AT_DisableTrigAll:
		case AT_DisableTrigUser:
			return "DISABLE TRIGGER";
		case AT_EnableRule:
		case AT_EnableAlwaysRule:
		case AT_EnableReplicaRule:
			return "ENABLE RULE";
		case AT_DisableRule:
			return "DISABLE RULE";
		case AT_AddOf:
			return "OF";
		case AT_DropOf:
			return "NOT OF";
		case AT_ReplicaIdentity:
			return "REPLICA IDENTITY";
		case AT_GenericOptions:
			return "OPTIONS";
		case AT_AttachPartition:
			return "ATTACH PARTITION";
		case AT_DetachPartition:
		case AT_DetachPartitionFinalize:
			return "DETACH PARTITION";
		default:
			return "(this subcommand)";
	}
}

/*
 * rename_object runs ALTER ... RENAME.  The rename of a distributed
 * table, of one of its columns, constraints or indexes runs locally, then
 * on every shard, whose objects take the new names (with the shard
 * suffix).  Renaming a schema that holds distributed tables is refused.
 */
static void
rename_object(RenameStmt *stmt, UtilityCall *call)
{
	ShardObjectNames names;
	ShardCommandBuilder build = NULL;
	Oid			relid;

	memset(&names, 0, sizeof(names));
	names.newName = stmt->newname;

	switch (stmt->renameType)
	{
		case OBJECT_SCHEMA:
			check_rename_schema(stmt);
			break;
		case OBJECT_TABLE:
		case OBJECT_INDEX:
			/* ALTER TABLE and ALTER INDEX both rename either */
			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
			if (!OidIsValid(relid))
				break;
			if (get_rel_relkind(relid) == RELKIND_INDEX)
			{
				Oid			tableId = IndexGetRelation(relid, true);

				if (OidIsValid(tableId) && (names.entry = LookupDistTable(tableId)) != NULL)
					build = build_rename_index;
			}
			else if ((names.entry = LookupDistTable(relid)) != NULL)
				build = build_rename_table;
			if (build != NULL)
			{
				names.nspname = get_namespace_name(get_rel_namespace(relid));
				names.oldName = get_rel_name(relid);
			}
			break;
		case OBJECT_COLUMN:
			if ((names.entry = distributed_table_of(stmt->relation)) != NULL)
			{
				build = build_rename_column;
				names.oldName = stmt->subname;
			}
			break;
		case OBJECT_TABCONSTRAINT:
			if ((names.entry = distributed_table_of(stmt->relation)) != NULL)
			{
				build = build_rename_constraint;
				names.oldName = stmt->subname;
			}
			break;
		default:
			break;
	}

	run_locally(call);

	if (build != NULL)
		RunOnShards(names.entry, build, &names);
}

/*
 * build_rename_table is the ShardCommandBuilder that renames a shard
 * table after its distributed table.
 */
static char *
build_rename_table(Oid relid, int64 shardId, void *arg)
{
	ShardObjectNames *names = arg;

	return psprintf("ALTER TABLE %s RENAME TO %s",
					ShardQualifiedNameFromParts(names->nspname, names->oldName, shardId),
					quote_identifier(ShardTableName(names->newName, shardId)));
}

/*
 * build_rename_index is the ShardCommandBuilder that renames the shard's
 * copy of an index (and of the constraint it backs, if any).
 */
static char *
build_rename_index(Oid relid, int64 shardId, void *arg)
{
	ShardObjectNames *names = arg;

	return psprintf("ALTER INDEX %s RENAME TO %s",
					quote_qualified_identifier(names->nspname,
											   ShardObjectName(names->oldName, shardId)),
					quote_identifier(ShardObjectName(names->newName, shardId)));
}

/*
 * build_rename_column is the ShardCommandBuilder that renames a column.
 */
static char *
build_rename_column(Oid relid, int64 shardId, void *arg)
{
	ShardObjectNames *names = arg;

	return psprintf("ALTER TABLE %s RENAME COLUMN %s TO %s",
					ShardQualifiedName(relid, shardId),
					quote_identifier(names->oldName),
					quote_identifier(names->newName));
}

/*
 * build_rename_constraint is the ShardCommandBuilder that renames the
 * shard's copy of a constraint (and of the index backing it, if any).
 */
static char *
build_rename_constraint(Oid relid, int64 shardId, void *arg)
{
	ShardObjectNames *names = arg;

	return psprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s",
					ShardQualifiedName(relid, shardId),
					quote_identifier(ShardObjectName(names->oldName, shardId)),
					quote_identifier(ShardObjectName(names->newName, shardId)));
}

/*
 * check_rename_schema refuses ALTER SCHEMA ... RENAME of a schema that
 * holds a distributed table: the shards live in a schema of the same
 * name on the nodes, which may hold other things.
 */
static void
check_rename_schema(RenameStmt *stmt)
{
	Oid			nspid = get_namespace_oid(stmt->subname, true);
	ListCell   *lc;

	if (!OidIsValid(nspid))
		return;
	foreach(lc, DistributedTableList())
	{
		Oid			relid = lfirst_oid(lc);

		if (get_rel_namespace(relid) == nspid)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot rename schema \"%s\" because it contains distributed table \"%s\"",
							stmt->subname, get_rel_name(relid)),
					 errdetail("The shards are in a schema of the same name on the nodes."),
					 errhint("Undistribute the schema's distributed tables with shardexec.undistribute_table() first.")));
	}
}

/*
 * check_alter_object_schema refuses ALTER TABLE ... SET SCHEMA of a
 * distributed table.
 */
static void
check_alter_object_schema(AlterObjectSchemaStmt *stmt)
{
	if (distributed_table_of(stmt->relation) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot move distributed table \"%s\" to another schema",
						stmt->relation->relname),
				 errdetail("The shards are in a schema of the same name on the nodes."),
				 errhint("Undistribute the table with shardexec.undistribute_table(), move it, and distribute it again.")));
}

/*
 * check_create_trigger refuses CREATE TRIGGER on a distributed table.
 */
static void
check_create_trigger(CreateTrigStmt *stmt)
{
	if (distributed_table_of(stmt->relation) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot create trigger \"%s\" on distributed table \"%s\"",
						stmt->trigname, stmt->relation->relname),
				 errdetail("The rows of a distributed table are written on the nodes, where the trigger would not fire."),
				 errhint("Undistribute the table with shardexec.undistribute_table() to use triggers.")));
}

/*
 * check_create_rule refuses CREATE RULE on a distributed table.
 */
static void
check_create_rule(RuleStmt *stmt)
{
	if (distributed_table_of(stmt->relation) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot create rule \"%s\" on distributed table \"%s\"",
						stmt->rulename, stmt->relation->relname),
				 errdetail("Queries on a distributed table are planned for the shards, which rules would not reach."),
				 errhint("Undistribute the table with shardexec.undistribute_table() to use rules.")));
}

/*
 * check_create_table refuses CREATE TABLE that inherits from a
 * distributed table or has a foreign key that references one.
 */
static void
check_create_table(CreateStmt *stmt)
{
	ListCell   *lc;

	if (stmt->partbound == NULL)
	{
		foreach(lc, stmt->inhRelations)
		{
			RangeVar   *parent = lfirst_node(RangeVar, lc);

			if (distributed_table_of(parent) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot inherit from distributed table \"%s\"",
								parent->relname),
						 errdetail("The rows of a distributed table are on the nodes, where its children could not be scanned with it."),
						 errhint("Use separate tables.")));
		}
	}
	foreach(lc, stmt->tableElts)
	{
		Node	   *element = lfirst(lc);

		if (IsA(element, Constraint))
			check_foreign_key((Constraint *) element, NULL, NULL);
		else if (IsA(element, ColumnDef))
		{
			ListCell   *cc;

			foreach(cc, ((ColumnDef *) element)->constraints)
				check_foreign_key(lfirst_node(Constraint, cc), NULL, NULL);
		}
	}
	foreach(lc, stmt->constraints)
		check_foreign_key(lfirst_node(Constraint, lc), NULL, NULL);
}

/*
 * check_foreign_key refuses con if it is a foreign key on distributed
 * table referencing (relname is its name), or, on another table, one
 * that references a distributed table.  Other constraints pass.
 */
static void
check_foreign_key(Constraint *con, DistTableEntry *referencing, const char *relname)
{
	if (con->contype != CONSTR_FOREIGN)
		return;
	if (referencing != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("foreign keys are not supported on distributed table \"%s\"",
						relname),
				 errdetail("The shards of the two tables could not check each other's rows."),
				 errhint("Enforce the relationship in the application, or keep both tables local.")));
	if (distributed_table_of(con->pktable) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot create a foreign key that references distributed table \"%s\"",
						con->pktable->relname),
				 errdetail("The rows of a distributed table are on the nodes, where the coordinator's foreign key could not check them."),
				 errhint("Enforce the relationship in the application, or keep both tables local.")));
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
		/* the DROP itself invalidated the relation's cache entry */
	}
	if (dropped != NIL)
		ExecuteCatalogWrite("DELETE FROM shardexec.colocation c WHERE c.distribution_type IS NOT NULL "
							"AND NOT EXISTS (SELECT 1 FROM shardexec.dist_table d "
							"WHERE d.colocation_id = c.colocation_id)", 0, NULL, NULL);

	PG_RETURN_NULL();
}
