/*-------------------------------------------------------------------------
 *
 * shard_scan.c
 *		  The CustomScan that reads a distributed or reference table.
 *
 * The planner's set_rel_pathlist hook (src/planner/planner.c) replaces
 * every path of a distributed table's empty local shell with one
 * "ShardexecScan" path.  At execution the scan runs one query per shard
 * (for a reference table, one query on one of its nodes) and returns the
 * rows as tuples of the table's row type; the local executor applies the
 * quals and does the rest of the query.  That is always correct, whatever
 * the query, and is the ground the pushdown planner builds on.
 *
 * The shard queries are execution units run by the distributed executor
 * (distributed_executor.c): all at once, over as many connections per
 * node as shardexec.max_connections_per_query allows, streamed or read
 * into tuplestores depending on the node's connection mode, and merged
 * unordered.  The execution starts at the first row asked for, and
 * EXPLAIN ANALYZE shows its per-node figures.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/restrictinfo.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "shardexec/connection.h"
#include "shardexec/executor.h"
#include "shardexec/fdw.h"
#include "shardexec/metadata.h"
#include "shardexec/shardexec.h"

typedef struct ShardScanState
{
	CustomScanState css;
	DistTableEntry *entry;
	List	   *units;			/* ExecutionUnit, one per shard query */
	DistributedExecution *execution;	/* NULL until the first row */
	bool		done;
} ShardScanState;

static Plan *plan_shard_scan(PlannerInfo *root, RelOptInfo *rel,
							 CustomPath *best_path, List *tlist,
							 List *clauses, List *custom_plans);
static Node *create_scan_state(CustomScan *cscan);
static void begin_scan(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *exec_scan(CustomScanState *node);
static TupleTableSlot *scan_next(ScanState *ss);
static bool scan_recheck(ScanState *ss, TupleTableSlot *slot);
static void end_scan(CustomScanState *node);
static void rescan_scan(CustomScanState *node);
static void explain_scan(CustomScanState *node, List *ancestors,
						 ExplainState *es);
static List *build_units(ShardScanState *state);

static CustomPathMethods scan_path_methods = {
	.CustomName = "ShardexecScan",
	.PlanCustomPath = plan_shard_scan
};

static CustomScanMethods scan_plan_methods = {
	"ShardexecScan",
	create_scan_state
};

static CustomExecMethods scan_exec_methods = {
	.CustomName = "ShardexecScan",
	.BeginCustomScan = begin_scan,
	.ExecCustomScan = exec_scan,
	.EndCustomScan = end_scan,
	.ReScanCustomScan = rescan_scan,
	.ExplainCustomScan = explain_scan
};

/*
 * RegisterShardexecCustomScans makes shardexec's CustomScan providers
 * known, so that their plans can be copied and read back.
 */
void
RegisterShardexecCustomScans(void)
{
	RegisterCustomScanMethods(&scan_plan_methods);
	RegisterShardModifyMethods();
}

/*
 * MakeRemoteRowConverter prepares to read remote rows into tuples of
 * tupdesc.  The remote result has one column per attribute that is not
 * dropped (nor, unless includeGenerated, generated), in attribute order.
 */
RemoteRowConverter *
MakeRemoteRowConverter(TupleDesc tupdesc, bool includeGenerated)
{
	RemoteRowConverter *converter = palloc0(sizeof(RemoteRowConverter));
	int			i;

	converter->tupdesc = tupdesc;
	converter->attnums = palloc(sizeof(AttrNumber) * tupdesc->natts);
	converter->inputFunctions = palloc0(sizeof(FmgrInfo) * tupdesc->natts);
	converter->typioparams = palloc0(sizeof(Oid) * tupdesc->natts);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		Oid			inputFunction;

		if (attr->attisdropped || (attr->attgenerated && !includeGenerated))
			continue;
		getTypeInputInfo(attr->atttypid, &inputFunction, &converter->typioparams[i]);
		fmgr_info(inputFunction, &converter->inputFunctions[i]);
		converter->attnums[converter->ncolumns++] = attr->attnum;
	}
	return converter;
}

/*
 * StoreRemoteRow stores row number row of res in slot: as a virtual tuple
 * in a virtual slot, whose values are allocated in the current memory
 * context, or else as a heap tuple (copied into a slot of another kind).
 */
void
StoreRemoteRow(RemoteRowConverter *converter, PGresult *res, int row,
			   TupleTableSlot *slot)
{
	TupleDesc	tupdesc = converter->tupdesc;
	bool		isVirtual = TTS_IS_VIRTUAL(slot);
	Datum	   *values;
	bool	   *nulls;
	int			nestlevel;
	int			c;

	if (PQnfields(res) != converter->ncolumns)
		elog(ERROR, "remote result has %d columns, %d were expected",
			 PQnfields(res), converter->ncolumns);

	ExecClearTuple(slot);
	if (isVirtual)
	{
		values = slot->tts_values;
		nulls = slot->tts_isnull;
	}
	else
	{
		values = palloc(sizeof(Datum) * tupdesc->natts);
		nulls = palloc(sizeof(bool) * tupdesc->natts);
	}

	memset(nulls, true, sizeof(bool) * tupdesc->natts);
	nestlevel = SetTransmissionModes();
	for (c = 0; c < converter->ncolumns; c++)
	{
		int			i = converter->attnums[c] - 1;

		if (PQgetisnull(res, row, c))
			values[i] = (Datum) 0;
		else
		{
			values[i] = InputFunctionCall(&converter->inputFunctions[i],
										  PQgetvalue(res, row, c),
										  converter->typioparams[i],
										  TupleDescAttr(tupdesc, i)->atttypmod);
			nulls[i] = false;
		}
	}
	ResetTransmissionModes(nestlevel);

	if (isVirtual)
		ExecStoreVirtualTuple(slot);
	else
	{
		ExecForceStoreHeapTuple(heap_form_tuple(tupdesc, values, nulls), slot, true);
		pfree(values);
		pfree(nulls);
	}
}

/*
 * CreateShardScanPath returns the path that reads the distributed or
 * reference table rel through its shards.
 */
CustomPath *
CreateShardScanPath(PlannerInfo *root, RelOptInfo *rel, RangeTblEntry *rte)
{
	CustomPath *path = makeNode(CustomPath);
	DistTableEntry *entry = LookupDistTable(rte->relid);
	double		rows = Max(rel->rows, 1000.0);
	int			queries = (entry != NULL && entry->kind == DIST_KIND_HASH) ?
		entry->shardCount : 1;

	path->path.pathtype = T_CustomScan;
	path->path.parent = rel;
	path->path.pathtarget = rel->reltarget;
	path->path.param_info = NULL;
	path->path.parallel_aware = false;
	path->path.parallel_safe = false;
	path->path.parallel_workers = 0;
	path->path.rows = rows;
	/* a round trip per shard query, then the rows */
	path->path.startup_cost = 100.0 * queries;
	path->path.total_cost = path->path.startup_cost + rows * (cpu_tuple_cost * 10);
	path->path.pathkeys = NIL;
	path->flags = 0;
	path->custom_paths = NIL;
	path->custom_private = NIL;
	path->methods = &scan_path_methods;
	return path;
}

static Plan *
plan_shard_scan(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
				List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = extract_actual_clauses(clauses, false);
	cscan->scan.scanrelid = rel->relid;
	cscan->flags = best_path->flags;
	cscan->custom_plans = NIL;
	cscan->custom_private = NIL;
	cscan->custom_scan_tlist = NIL;
	cscan->methods = &scan_plan_methods;
	return &cscan->scan.plan;
}

static Node *
create_scan_state(CustomScan *cscan)
{
	ShardScanState *state = (ShardScanState *) newNode(sizeof(ShardScanState),
													   T_CustomScanState);

	state->css.methods = &scan_exec_methods;
	return (Node *) state;
}

static void
begin_scan(CustomScanState *node, EState *estate, int eflags)
{
	ShardScanState *state = (ShardScanState *) node;
	Relation	rel = node->ss.ss_currentRelation;

	state->entry = LookupDistTable(RelationGetRelid(rel));
	if (state->entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is no longer distributed", RelationGetRelationName(rel))));
	state->units = build_units(state);
	state->execution = NULL;
	state->done = false;
}

/*
 * build_units returns the scan's execution units: one per shard of a
 * distributed table, one on the first node holding a reference table.
 */
static List *
build_units(ShardScanState *state)
{
	Relation	rel = state->css.ss.ss_currentRelation;
	DistTableEntry *entry = state->entry;
	List	   *units = NIL;
	int			i;

	for (i = 0; i < entry->shardCount; i++)
	{
		ShardInterval *shard = &entry->shards[i];
		ShardexecNode *node = linitial(ShardPlacementNodes(entry, shard));
		ExecutionUnit *unit = palloc0(sizeof(ExecutionUnit));

		unit->nodeId = node->nodeId;
		unit->shardId = shard->shardId;
		unit->sql = DeparseShardSelect(rel, shard->shardId);
		units = lappend(units, unit);
	}
	return units;
}

static TupleTableSlot *
exec_scan(CustomScanState *node)
{
	return ExecScan(&node->ss, scan_next, scan_recheck);
}

/*
 * scan_next returns the next row of the table, from whichever shard has
 * one ready; the first call starts the execution.
 */
static TupleTableSlot *
scan_next(ScanState *ss)
{
	ShardScanState *state = (ShardScanState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;

	if (state->done)
		return ExecClearTuple(slot);
	if (state->execution == NULL)
	{
		MemoryContext oldContext =
			MemoryContextSwitchTo(ss->ps.state->es_query_cxt);

		state->execution = BeginDistributedExecution(state->units,
													 RelationGetDescr(ss->ss_currentRelation),
													 NULL, 0, NULL, NULL);
		MemoryContextSwitchTo(oldContext);
	}
	if (DistributedExecutionNextRow(state->execution, slot))
		return slot;
	state->done = true;
	return ExecClearTuple(slot);
}

static bool
scan_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static void
end_scan(CustomScanState *node)
{
	ShardScanState *state = (ShardScanState *) node;

	if (state->execution != NULL)
		EndDistributedExecution(state->execution);
	state->execution = NULL;
}

static void
rescan_scan(CustomScanState *node)
{
	ShardScanState *state = (ShardScanState *) node;

	end_scan(node);
	state->done = false;
}

static void
explain_scan(CustomScanState *node, List *ancestors, ExplainState *es)
{
	ShardScanState *state = (ShardScanState *) node;

	if (state->entry != NULL)
		ExplainPropertyInteger("Shard Queries", NULL,
							   state->entry->shardCount, es);
	if (es->analyze && state->execution != NULL)
		ExplainDistributedExecution(state->execution, es);
}
