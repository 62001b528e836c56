/*-------------------------------------------------------------------------
 *
 * shard_modify.c
 *		  Routing rows to their shards: INSERT, COPY FROM and the row move
 *		  of create_distributed_table.
 *
 * Rows are converted once on the coordinator to COPY text format (under
 * the transmission settings, so that every value reads back the same on
 * the node), appended to a buffer per shard, and a shard's buffer is
 * sent with one COPY ... FROM STDIN when it is full and at the end.  A
 * reference table's rows go to every node holding it.  All of it happens
 * inside the remote transactions that follow the local one, so a failure
 * anywhere leaves nothing behind.
 *
 * INSERT: the planner hook lets the standard planner plan the INSERT and
 * then replaces its ModifyTable with a CustomScan ("ShardexecInsert")
 * whose child is the ModifyTable's source plan.  The rewriter has already
 * filled in column defaults, so sequences and identities are evaluated
 * once, on the coordinator, and are unique across shards.  Since a shard
 * stores exactly the row it is sent, RETURNING is computed on the
 * coordinator from that row; stored generated columns, which the shards
 * compute themselves, are computed on the coordinator too when RETURNING
 * needs them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "shardexec/connection.h"
#include "shardexec/executor.h"
#include "shardexec/fdw.h"
#include "shardexec/metadata.h"

/* the buffered rows of all shards together stay under this many bytes */
#define SHARD_COPY_TOTAL_BUFFER (8 * 1024 * 1024)

struct ShardCopyState
{
	Relation	rel;
	DistTableEntry *entry;
	FmgrInfo   *outputFunctions;	/* per attribute */
	StringInfoData *buffers;	/* per shard index */
	uint64	  **lines;			/* per shard: input line of each buffered row */
	int		   *lineCounts;
	int		   *lineSpace;
	uint64		currentLine;	/* input line of the next row, or 0 */
	Size		buffered;		/* bytes in all buffers */
	uint64		rowCount;
	MemoryContext context;		/* of the whole routing: buffers, line numbers */
	MemoryContext rowContext;	/* reset after each row */
};

/* one connection's share of a flush: its shards, one after another */
typedef struct NodeFlush
{
	ShardexecNode *node;
	PGconn	   *conn;
	List	   *shardIndexes;
	int			shardIndex;		/* the one in flight */
	char	   *sql;
} NodeFlush;

typedef struct ShardInsertState
{
	CustomScanState css;
	ShardCopyState *copy;
	ResultRelInfo *generated;	/* computes stored generated columns for
								 * RETURNING, or NULL */
	bool		done;
} ShardInsertState;

static void flush_all(ShardCopyState *state);
static void report_copy_error(ShardCopyState *state, NodeFlush *flush, PGresult *res);
static void append_copy_value(StringInfo buf, const char *value);

static Node *create_insert_state(CustomScan *cscan);
static void begin_insert(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *exec_insert(CustomScanState *node);
static void end_insert(CustomScanState *node);
static void rescan_insert(CustomScanState *node);
static void explain_insert(CustomScanState *node, List *ancestors,
						   ExplainState *es);

static CustomScanMethods insert_scan_methods = {
	"ShardexecInsert",
	create_insert_state
};

static CustomExecMethods insert_exec_methods = {
	.CustomName = "ShardexecInsert",
	.BeginCustomScan = begin_insert,
	.ExecCustomScan = exec_insert,
	.EndCustomScan = end_insert,
	.ReScanCustomScan = rescan_insert,
	.ExplainCustomScan = explain_insert
};

/*
 * RegisterShardModifyMethods makes the insert CustomScan known, so that
 * plans containing it can be copied and read back.
 */
void
RegisterShardModifyMethods(void)
{
	RegisterCustomScanMethods(&insert_scan_methods);
}

/*
 * ShardCopyBegin prepares to route rows of rel, described by entry, to
 * their shards.  rel must stay open until ShardCopyFinish.
 */
ShardCopyState *
ShardCopyBegin(Relation rel, DistTableEntry *entry)
{
	ShardCopyState *state = palloc0(sizeof(ShardCopyState));
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	state->rel = rel;
	state->entry = entry;
	state->context = CurrentMemoryContext;
	state->outputFunctions = palloc0(sizeof(FmgrInfo) * tupdesc->natts);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		Oid			outFunc;
		bool		isVarlena;

		if (attr->attisdropped)
			continue;
		getTypeOutputInfo(attr->atttypid, &outFunc, &isVarlena);
		fmgr_info(outFunc, &state->outputFunctions[i]);
	}
	state->buffers = palloc0(sizeof(StringInfoData) * entry->shardCount);
	state->lines = palloc0(sizeof(uint64 *) * entry->shardCount);
	state->lineCounts = palloc0(sizeof(int) * entry->shardCount);
	state->lineSpace = palloc0(sizeof(int) * entry->shardCount);
	for (i = 0; i < entry->shardCount; i++)
		initStringInfo(&state->buffers[i]);
	state->rowContext = AllocSetContextCreate(CurrentMemoryContext,
											  "shardexec row routing",
											  ALLOCSET_DEFAULT_SIZES);
	return state;
}

/*
 * ShardCopyAppend routes the row in slot (of the relation's row type) to
 * its shard's buffer, sending the buffer when it is full.
 */
void
ShardCopyAppend(ShardCopyState *state, TupleTableSlot *slot)
{
	TupleDesc	tupdesc = RelationGetDescr(state->rel);
	DistTableEntry *entry = state->entry;
	int			shardIndex = 0;
	StringInfo	buf;
	int			lengthBefore;
	MemoryContext oldContext;
	int			nestlevel;
	bool		first = true;
	int			i;

	slot_getallattrs(slot);

	if (entry->kind == DIST_KIND_HASH)
	{
		AttrNumber	attnum = entry->distAttnum;

		if (slot->tts_isnull[attnum - 1])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in distribution column \"%s\" of relation \"%s\"",
							NameStr(TupleDescAttr(tupdesc, attnum - 1)->attname),
							RelationGetRelationName(state->rel)),
					 errdetail("Every row of a distributed table needs a distribution value to choose its shard.")));
		shardIndex = FindShardForValue(entry, slot->tts_values[attnum - 1])->shardIndex;
	}

	buf = &state->buffers[shardIndex];
	lengthBefore = buf->len;
	oldContext = MemoryContextSwitchTo(state->rowContext);
	nestlevel = SetTransmissionModes();
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);

		if (attr->attisdropped || attr->attgenerated)
			continue;
		if (!first)
			appendStringInfoChar(buf, '\t');
		first = false;
		if (slot->tts_isnull[i])
			appendStringInfoString(buf, "\\N");
		else
			append_copy_value(buf, OutputFunctionCall(&state->outputFunctions[i],
													  slot->tts_values[i]));
	}
	appendStringInfoChar(buf, '\n');
	ResetTransmissionModes(nestlevel);
	MemoryContextSwitchTo(oldContext);
	MemoryContextReset(state->rowContext);

	/* remember the input line of the row, to name it if a node rejects it */
	if (state->currentLine > 0)
	{
		if (state->lineCounts[shardIndex] >= state->lineSpace[shardIndex])
		{
			int			space = Max(64, state->lineSpace[shardIndex] * 2);

			state->lines[shardIndex] = state->lines[shardIndex] == NULL ?
				MemoryContextAlloc(state->context, sizeof(uint64) * space) :
				repalloc(state->lines[shardIndex], sizeof(uint64) * space);
			state->lineSpace[shardIndex] = space;
		}
		state->lines[shardIndex][state->lineCounts[shardIndex]++] = state->currentLine;
	}

	state->rowCount++;
	state->buffered += buf->len - lengthBefore;
	if (state->buffered >= SHARD_COPY_TOTAL_BUFFER)
		flush_all(state);
}

/*
 * ShardCopySetLine tells which input line the next appended row comes
 * from (COPY FROM), so that a row a node rejects is reported by it.
 */
void
ShardCopySetLine(ShardCopyState *state, uint64 line)
{
	state->currentLine = line;
}

/*
 * ShardCopyFinish sends what is still buffered and returns the number of
 * rows routed.
 */
uint64
ShardCopyFinish(ShardCopyState *state)
{
	flush_all(state);
	MemoryContextDelete(state->rowContext);
	return state->rowCount;
}

/*
 * append_copy_value appends value escaped for COPY's text format.
 */
static void
append_copy_value(StringInfo buf, const char *value)
{
	const char *c;
	const char *start = value;

	for (c = value; *c; c++)
	{
		char		escaped = 0;

		switch (*c)
		{
			case '\\':
				escaped = '\\';
				break;
			case '\n':
				escaped = 'n';
				break;
			case '\r':
				escaped = 'r';
				break;
			case '\t':
				escaped = 't';
				break;
			default:
				continue;
		}
		appendBinaryStringInfo(buf, start, c - start);
		appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, escaped);
		start = c + 1;
	}
	appendBinaryStringInfo(buf, start, c - start);
}

/*
 * flush_all sends every buffered row with COPY FROM STDIN, all nodes at
 * once: in each round every connection that still has shards to load
 * starts the COPY of its next shard, gets its rows and ends it, and only
 * then are the round's results read, so the nodes load in parallel.  A
 * shard goes through the connection the transaction writes it with
 * (GetShardConnection).  Buffers are emptied at the end.
 */
static void
flush_all(ShardCopyState *state)
{
	DistTableEntry *entry = state->entry;
	List	   *flushes = NIL;
	ListCell   *lc;
	int			i;
	bool		more;

	if (state->buffered == 0)
		return;

	for (i = 0; i < entry->shardCount; i++)
	{
		if (state->buffers[i].len == 0)
			continue;
		foreach(lc, ShardPlacementNodes(entry, &entry->shards[i]))
		{
			ShardexecNode *node = lfirst(lc);
			PGconn	   *conn = GetShardConnection(node, entry->shards[i].shardId);
			NodeFlush  *flush = NULL;
			ListCell   *fc;

			/* the shard's writes stay on this connection for the transaction */
			MarkShardModified(conn, entry->shards[i].shardId);
			foreach(fc, flushes)
			{
				if (((NodeFlush *) lfirst(fc))->conn == conn)
					flush = lfirst(fc);
			}
			if (flush == NULL)
			{
				flush = palloc0(sizeof(NodeFlush));
				flush->node = node;
				flush->conn = conn;
				flushes = lappend(flushes, flush);
			}
			flush->shardIndexes = lappend_int(flush->shardIndexes, i);
		}
	}

	do
	{
		more = false;

		/* start the next COPY on every node */
		foreach(lc, flushes)
		{
			NodeFlush  *flush = lfirst(lc);

			flush->sql = NULL;
			if (flush->shardIndexes == NIL)
				continue;
			flush->shardIndex = linitial_int(flush->shardIndexes);
			flush->shardIndexes = list_delete_first(flush->shardIndexes);
			flush->sql = DeparseShardInsertPrefix(state->rel,
												  entry->shards[flush->shardIndex].shardId);
			SendRemoteQuery(flush->conn, flush->node->nodeName, flush->sql, 0, NULL);
			more = true;
		}

		/* send each its rows */
		foreach(lc, flushes)
		{
			NodeFlush  *flush = lfirst(lc);
			StringInfo	buf;
			PGresult   *res;
			size_t		pending;

			if (flush->sql == NULL)
				continue;
			buf = &state->buffers[flush->shardIndex];
			res = GetRemoteResult(flush->conn, flush->node->nodeName);
			if (PQresultStatus(res) != PGRES_COPY_IN)
			{
				DrainRemoteResults(flush->conn, flush->node->nodeName);
				ReportRemoteError(res, flush->conn, flush->node->nodeName, flush->sql);
			}
			PQclear(res);
			/* never blocks: a node that stops reading cannot hold the backend */
			pending = 0;
			PutCopyData(flush->conn, flush->node->nodeName, flush->sql,
						buf->data, buf->len, &pending);
			EndCopyData(flush->conn, flush->node->nodeName, flush->sql);
		}

		/* and read how it went */
		foreach(lc, flushes)
		{
			NodeFlush  *flush = lfirst(lc);
			PGresult   *res;

			if (flush->sql == NULL)
				continue;
			while ((res = GetRemoteResult(flush->conn, flush->node->nodeName)) != NULL)
			{
				if (PQresultStatus(res) != PGRES_COMMAND_OK)
				{
					DrainRemoteResults(flush->conn, flush->node->nodeName);
					report_copy_error(state, flush, res);
				}
				PQclear(res);
			}
		}
	} while (more);

	for (i = 0; i < entry->shardCount; i++)
	{
		resetStringInfo(&state->buffers[i]);
		state->lineCounts[i] = 0;
	}
	state->buffered = 0;
	foreach(lc, flushes)
		ReleaseNodeConnection(((NodeFlush *) lfirst(lc))->conn);
}

/*
 * report_copy_error raises a node's error about a shard's COPY.  When the
 * node names the line of its COPY and the rows came from COPY FROM, the
 * error names the input line the row came from instead.
 */
static void
report_copy_error(ShardCopyState *state, NodeFlush *flush, PGresult *res)
{
	const char *context = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *marker = context != NULL ? strstr(context, ", line ") : NULL;
	int			shardIndex = flush->shardIndex;
	long		line;

	if (marker != NULL && state->lineCounts[shardIndex] > 0 &&
		(line = strtol(marker + strlen(", line "), NULL, 10)) >= 1 &&
		line <= state->lineCounts[shardIndex])
	{
		const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		char	   *message = pstrdup(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		char	   *detailCopy = detail != NULL ? pstrdup(detail) : NULL;
		uint64		inputLine = state->lines[shardIndex][line - 1];

		PQclear(res);
		ereport(ERROR,
				(errcode(sqlstate != NULL ?
						 MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
									   sqlstate[3], sqlstate[4]) :
						 ERRCODE_DATA_EXCEPTION),
				 errmsg_internal("%s", message),
				 detailCopy != NULL ? errdetail_internal("%s", detailCopy) : 0,
				 errcontext("COPY %s, line " UINT64_FORMAT " (rejected by node \"%s\")",
							RelationGetRelationName(state->rel), inputLine,
							flush->node->nodeName)));
	}
	ReportRemoteError(res, flush->conn, flush->node->nodeName, flush->sql);
}

/*
 * CreateShardInsertPlan returns the CustomScan that replaces the
 * ModifyTable of an INSERT into a distributed table: sourcePlan yields
 * the new rows in the table's attribute order; returningList, if any, is
 * the finished RETURNING target list, whose Vars of resultRelation refer
 * to the inserted row.
 */
Plan *
CreateShardInsertPlan(Plan *sourcePlan, Index resultRelation,
					  List *returningList, Oid relid)
{
	CustomScan *cscan = makeNode(CustomScan);

	cscan->scan.plan.targetlist = returningList;
	cscan->scan.plan.startup_cost = sourcePlan->startup_cost;
	cscan->scan.plan.total_cost = sourcePlan->total_cost;
	cscan->scan.plan.plan_rows = sourcePlan->plan_rows;
	cscan->scan.plan.plan_width = sourcePlan->plan_width;
	cscan->scan.scanrelid = resultRelation;
	cscan->custom_plans = list_make1(sourcePlan);
	cscan->custom_private = list_make1(makeInteger((int) relid));
	cscan->methods = &insert_scan_methods;
	return (Plan *) cscan;
}

static Node *
create_insert_state(CustomScan *cscan)
{
	ShardInsertState *state = (ShardInsertState *) newNode(sizeof(ShardInsertState),
														   T_CustomScanState);

	state->css.methods = &insert_exec_methods;
	return (Node *) state;
}

static void
begin_insert(CustomScanState *node, EState *estate, int eflags)
{
	ShardInsertState *state = (ShardInsertState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	DistTableEntry *entry = LookupDistTable(RelationGetRelid(rel));
	Plan	   *sourcePlan = linitial(cscan->custom_plans);

	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is no longer distributed", RelationGetRelationName(rel))));

	node->custom_ps = list_make1(ExecInitNode(sourcePlan, estate, eflags));
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	state->copy = ShardCopyBegin(rel, entry);

	if (cscan->scan.plan.targetlist != NIL && rel->rd_att->constr != NULL &&
		rel->rd_att->constr->has_generated_stored)
	{
		state->generated = makeNode(ResultRelInfo);
		InitResultRelInfo(state->generated, rel, cscan->scan.scanrelid, NULL, 0);
		ExecInitStoredGenerated(state->generated, estate, CMD_INSERT);
	}
}

static TupleTableSlot *
exec_insert(CustomScanState *node)
{
	ShardInsertState *state = (ShardInsertState *) node;
	PlanState  *source = linitial(node->custom_ps);
	TupleTableSlot *scanSlot = node->ss.ss_ScanTupleSlot;
	EState	   *estate = node->ss.ps.state;
	ProjectionInfo *projection = node->ss.ps.ps_ProjInfo;
	bool		returning = node->ss.ps.plan->targetlist != NIL;

	while (!state->done)
	{
		TupleTableSlot *sourceSlot = ExecProcNode(source);
		int			natts = scanSlot->tts_tupleDescriptor->natts;
		if (TupIsNull(sourceSlot))
		{
			state->done = true;
			(void) ShardCopyFinish(state->copy);
			break;
		}

		/* the source yields the row in attribute order */
		slot_getallattrs(sourceSlot);
		if (sourceSlot->tts_tupleDescriptor->natts < natts)
			elog(ERROR, "INSERT source yields %d columns, the table has %d",
				 sourceSlot->tts_tupleDescriptor->natts, natts);
		ExecClearTuple(scanSlot);
		memcpy(scanSlot->tts_values, sourceSlot->tts_values, sizeof(Datum) * natts);
		memcpy(scanSlot->tts_isnull, sourceSlot->tts_isnull, sizeof(bool) * natts);
		ExecStoreVirtualTuple(scanSlot);

		/* the shard computes generated columns itself; RETURNING needs them here */
		if (state->generated != NULL)
		{
			ResetPerTupleExprContext(estate);
			ExecComputeStoredGenerated(state->generated, estate, scanSlot, CMD_INSERT);
		}

		ShardCopyAppend(state->copy, scanSlot);
		estate->es_processed++;

		if (returning)
		{
			ExprContext *econtext = node->ss.ps.ps_ExprContext;

			ResetExprContext(econtext);
			if (projection == NULL)
				return scanSlot;
			econtext->ecxt_scantuple = scanSlot;
			return ExecProject(projection);
		}
	}
	return NULL;
}

static void
end_insert(CustomScanState *node)
{
	ExecEndNode(linitial(node->custom_ps));
}

static void
rescan_insert(CustomScanState *node)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("an INSERT into a distributed table cannot be rescanned")));
}

static void
explain_insert(CustomScanState *node, List *ancestors, ExplainState *es)
{
	/* the target table is shown by EXPLAIN's own scan description */
}
