/*-------------------------------------------------------------------------
 *
 * distributed_scan.c
 *		  The "ShardexecQuery" CustomScan: a statement, or a multi-shard
 *		  query's worker part, run on the shards through the executor.
 *
 * Its kinds (DistributedPlanKind):
 *  - router: a query pinned to one shard group (router.c) becomes a
 *    PlannedStmt whose only node is this scan, keeping the analyzed
 *    query.  The standard planner is not run at all, which keeps the
 *    coordinator's share of a distribution-key lookup small: the plan is
 *    built from the query's target list, and the range table is flattened
 *    only for permission checks, locks and plan invalidation, as the
 *    standard planner would.
 *  - every shard group: the worker query of a multi-shard SELECT
 *    (multi_shard.c; the scan then stands for the placeholder
 *    shardexec.remote_scan() of the coordinator query, and merges sorted
 *    streams when the shards sort), a co-partitioned UPDATE or DELETE, or
 *    a colocated INSERT ... SELECT; only the shard groups the WHERE clause
 *    leaves are run.
 *  - every copy of a reference table: a write; the first copy (lowest
 *    node id) is written alone before the others, so two writers of the
 *    same rows queue there instead of deadlocking across copies, and only
 *    it returns RETURNING rows and the row count.
 *  - INSERT ... VALUES by shard: the rows are evaluated and grouped by
 *    shard at execution (insert_planner.c).
 *
 * The SQL is written at execution, not at planning: the shard group
 * depends on parameters in a generic plan, and parameters and stable
 * functions (now(), current_user, ...) are folded on the coordinator
 * first, so that the node computes with the coordinator's values.  A
 * router statement whose parameters travel with it and that calls no
 * stable or volatile function has the same SQL for a shard group at every
 * execution: it is written once per plan and shard group and kept in a
 * backend-local cache (by a plan id the planner gives each such plan, so
 * a plan made again after an invalidation never finds the old text).
 *
 * A read-only statement outside a transaction block runs on connections
 * in autocommit (ShardexecReadWithoutRemoteTransaction), saving the
 * remote START TRANSACTION and COMMIT.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "commands/explain.h"
#include "fmgr.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "nodes/pathnodes.h"
#include "parser/parsetree.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "tcop/pquery.h"
#include "utils/portal.h"

#include "shardexec/connection.h"
#include "shardexec/executor.h"
#include "shardexec/metadata.h"
#include "shardexec/planner.h"
#include "shardexec/shardexec.h"

/* positions in custom_private */
#define PRIVATE_QUERY 0
#define PRIVATE_REFERENCE_ONLY 1
#define PRIVATE_ANCHOR 2
#define PRIVATE_PIN_VALUE 3
#define PRIVATE_PIN_HASH 4
#define PRIVATE_PIN_COLLATION 5
#define PRIVATE_MULTI_SHARD 6
#define PRIVATE_SHARD_INDEXES 7
#define PRIVATE_MERGE 8
#define PRIVATE_PLAN_ID 9

/* the router SQL cache (see the file header) */
typedef struct RouterSqlKey
{
	int64		planId;
	int			shardIndex;
} RouterSqlKey;

typedef struct RouterSql
{
	RouterSqlKey key;			/* hash key, must be first */
	char	   *sql;			/* with $n, or NULL: parameters are folded */
	int			maxid;			/* the highest parameter number in it */
} RouterSql;

/* entries kept at most; beyond, the cache starts over */
#define ROUTER_SQL_CACHE_SIZE 4096

static HTAB *routerSqlCache = NULL;
static MemoryContext routerSqlContext = NULL;
static int64 lastPlanId = 0;

static Plan *plan_multi_shard_scan(PlannerInfo *root, RelOptInfo *rel,
								   CustomPath *best_path, List *tlist,
								   List *clauses, List *custom_plans);

static CustomPathMethods multi_shard_path_methods = {
	.CustomName = "ShardexecQuery",
	.PlanCustomPath = plan_multi_shard_scan
};

typedef struct DistributedScanState
{
	CustomScanState css;
	Query	   *query;
	bool		referenceOnly;
	DistributedPlanKind kind;
	bool		modifies;		/* UPDATE or DELETE: count the rows affected */
	bool		counted;		/* rows affected added to es_processed */
	Oid			anchorRelid;
	ExprState  *pinValue;
	ShardPin	pin;
	List	   *units;			/* ExecutionUnit */
	List	   *laterUnits;		/* run after the first copy's unit */
	ExecutionMerge *merge;		/* the units' rows are merged in this order */
	int			nParams;		/* parameters sent with the statement */
	char	  **paramValues;
	Oid		   *paramTypes;
	DistributedExecution *execution;
	int64		planId;			/* for the router SQL cache, or 0 */
} DistributedScanState;

static Node *create_distributed_scan_state(CustomScan *cscan);
static void begin_distributed_scan(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *exec_distributed_scan(CustomScanState *node);
static TupleTableSlot *distributed_scan_next(ScanState *ss);
static bool distributed_scan_recheck(ScanState *ss, TupleTableSlot *slot);
static void end_distributed_scan(CustomScanState *node);
static void rescan_distributed_scan(CustomScanState *node);
static void explain_distributed_scan(CustomScanState *node, List *ancestors,
									 ExplainState *es);
static void start_execution(DistributedScanState *state);
static List *insert_values_units(DistributedScanState *state, Query *query,
								 DistTableEntry *entry, EState *estate);
static ExecutionUnit *shard_unit(Query *query, int shardIndex, int64 shardId,
								 int32 nodeId, bool modifies);
static List *copies_units(Query *query, DistTableEntry *entry);
static List *prune_with_params(Query *query, List *planned);
static RouterSql *router_sql_entry(int64 planId, int shardIndex);
static bool has_extern_param(Node *node, void *context);
static ExecutionUnit *send_with_params(DistributedScanState *state, EState *estate,
									   int shardIndex);

static CustomScanMethods distributed_scan_methods = {
	"ShardexecQuery",
	create_distributed_scan_state
};

static CustomExecMethods distributed_exec_methods = {
	.CustomName = "ShardexecQuery",
	.BeginCustomScan = begin_distributed_scan,
	.ExecCustomScan = exec_distributed_scan,
	.EndCustomScan = end_distributed_scan,
	.ReScanCustomScan = rescan_distributed_scan,
	.ExplainCustomScan = explain_distributed_scan
};

/*
 * RegisterDistributedScanMethods makes the CustomScan known, so that its
 * plans can be copied and read back.
 */
void
RegisterDistributedScanMethods(void)
{
	RegisterCustomScanMethods(&distributed_scan_methods);
}

/*
 * FlattenRelationRtes appends a copy of every relation RTE of a query and
 * of the queries below it to *rtable: the standard planner's flattened
 * range table, which permission checks, locks and plan invalidation use.
 */
bool
FlattenRelationRtes(Node *node, List **rtable)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, FlattenRelationRtes,
								 (void *) rtable, QTW_EXAMINE_RTES_BEFORE);
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			*rtable = lappend(*rtable, copyObject(rte));
		return false;
	}
	return expression_tree_walker(node, FlattenRelationRtes, (void *) rtable);
}

/*
 * CreateRouterPlan returns the plan of a router query.
 */
PlannedStmt *
CreateRouterPlan(Query *query, RouterAnalysis *analysis)
{
	return CreateDistributedPlan(query, analysis, DISTRIBUTED_ROUTER);
}

/*
 * CreateDistributedPlan returns the plan of a query pushed down whole:
 * to one shard group (DISTRIBUTED_ROUTER), to every shard group
 * (DISTRIBUTED_ALL_SHARDS: an UPDATE or DELETE over co-partitioned
 * tables) or to every copy of a reference table (DISTRIBUTED_ALL_COPIES:
 * an UPDATE or DELETE of a reference table).  The scan returns the
 * query's target list, or its RETURNING list.
 */
PlannedStmt *
CreateDistributedPlan(Query *query, RouterAnalysis *analysis, DistributedPlanKind kind)
{
	PlannedStmt *result = makeNode(PlannedStmt);
	CustomScan *cscan = makeNode(CustomScan);
	List	   *rtable = NIL;
	List	   *scanTlist = NIL;
	List	   *tlist = NIL;
	List	   *private = NIL;
	ShardPin   *pin = analysis->pins != NIL ? linitial(analysis->pins) : NULL;
	ListCell   *lc;
	RangeTblEntry *remoteRte;
	Index		remoteIndex;
	AttrNumber	attno = 0;

	/*
	 * The scan's output columns are the query's target list.  They are
	 * described as the columns of an extra range table entry, so that
	 * EXPLAIN VERBOSE can name them.
	 */
	(void) FlattenRelationRtes((Node *) query, &rtable);
	remoteRte = makeNode(RangeTblEntry);
	remoteRte->rtekind = RTE_VALUES;
	remoteRte->inFromCl = false;
	remoteRte->eref = makeAlias("remote_scan", NIL);
	rtable = lappend(rtable, remoteRte);
	remoteIndex = list_length(rtable);

	foreach(lc, query->commandType == CMD_SELECT ? query->targetList : query->returningList)
	{
		TargetEntry *tle = lfirst(lc);
		Node	   *expr = (Node *) tle->expr;
		Var		   *var;
		char	   *name = tle->resname != NULL ? tle->resname : psprintf("column%d", attno + 1);

		attno++;
		remoteRte->eref->colnames = lappend(remoteRte->eref->colnames, makeString(pstrdup(name)));
		remoteRte->coltypes = lappend_oid(remoteRte->coltypes, exprType(expr));
		remoteRte->coltypmods = lappend_int(remoteRte->coltypmods, exprTypmod(expr));
		remoteRte->colcollations = lappend_oid(remoteRte->colcollations, exprCollation(expr));
		var = makeVar(remoteIndex, attno, exprType(expr), exprTypmod(expr),
					  exprCollation(expr), 0);
		scanTlist = lappend(scanTlist, makeTargetEntry((Expr *) var, attno, name, false));
		var = makeVar(INDEX_VAR, attno, exprType(expr), exprTypmod(expr),
					  exprCollation(expr), 0);
		tlist = lappend(tlist, makeTargetEntry((Expr *) var, attno,
											   tle->resname, tle->resjunk));
	}

	private = lappend(private, copyObject(query));
	private = lappend(private, makeInteger(analysis->referenceOnly ? 1 : 0));
	private = lappend(private, makeInteger((int) analysis->anchorRelid));
	private = lappend(private, pin != NULL ? copyObject(pin->value) : NULL);
	private = lappend(private, makeInteger(pin != NULL ? (int) pin->hashFunction : 0));
	private = lappend(private, makeInteger(pin != NULL ? (int) pin->collation : 0));
	private = lappend(private, makeInteger((int) kind));
	private = lappend(private, list_copy(analysis->shardIndexes));
	private = lappend(private, NULL);
	/* the same SQL at every execution: no stable or volatile function */
	private = lappend(private,
					  makeConst(INT8OID, -1, InvalidOid, sizeof(int64),
								Int64GetDatum(contain_mutable_functions((Node *) query) ?
											  0 : ++lastPlanId),
								false, FLOAT8PASSBYVAL));

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.startup_cost = 100.0;
	cscan->scan.plan.total_cost = 100.0 + 1.0;
	cscan->scan.plan.plan_rows = 100;
	cscan->scan.plan.plan_width = 32;
	cscan->scan.scanrelid = 0;
	cscan->custom_scan_tlist = scanTlist;
	cscan->custom_private = private;
	cscan->methods = &distributed_scan_methods;

	result->commandType = query->commandType;
	result->queryId = query->queryId;
	result->hasReturning = query->returningList != NIL;
	result->hasModifyingCTE = false;
	result->canSetTag = query->canSetTag;
	result->transientPlan = false;
	result->dependsOnRole = false;
	result->parallelModeNeeded = false;
	result->jitFlags = 0;
	result->planTree = (Plan *) cscan;
	result->rtable = rtable;
	result->relationOids = list_copy(analysis->relationOids);
	result->stmt_location = query->stmt_location;
	result->stmt_len = query->stmt_len;
	return result;
}

/*
 * IsRemoteScanFunction says whether rte is the placeholder
 * shardexec.remote_scan(id) of a coordinator query, and gives its id.
 */
bool
IsRemoteScanFunction(RangeTblEntry *rte, int *id)
{
	RangeTblFunction *rtfunc;
	FuncExpr   *func;
	Const	   *arg;

	if (rte->rtekind != RTE_FUNCTION || list_length(rte->functions) != 1 ||
		!ShardexecExtensionLoaded())
		return false;
	rtfunc = linitial(rte->functions);
	if (!IsA(rtfunc->funcexpr, FuncExpr))
		return false;
	func = (FuncExpr *) rtfunc->funcexpr;
	if (list_length(func->args) != 1 || !IsA(linitial(func->args), Const) ||
		get_func_namespace(func->funcid) != ShardexecSchemaId() ||
		strcmp(get_func_name(func->funcid), "remote_scan") != 0)
		return false;
	arg = linitial(func->args);
	*id = DatumGetInt32(arg->constvalue);
	return true;
}

/*
 * CreateMultiShardScanPath returns the path that stands for the
 * placeholder rel of a coordinator query: workerQuery on every shard
 * group of anchorRelid's colocation group.
 */
CustomPath *
CreateMultiShardScanPath(PlannerInfo *root, RelOptInfo *rel, Query *workerQuery,
						 Oid anchorRelid, List *shardIndexes, bool sorted)
{
	CustomPath *path = makeNode(CustomPath);
	DistTableEntry *entry = LookupDistTable(anchorRelid);
	double		units = entry != NULL ? entry->shardCount : 1;
	List	   *merge = NIL;
	List	   *pathkeys = NIL;

	/*
	 * The shards sort by the coordinator query's ORDER BY: the scan merges
	 * their streams (a k-way merge in the executor) and says it yields
	 * that order, so no Sort is planned above it.
	 */
	if (sorted && root->sort_pathkeys != NIL)
	{
		List	   *attnums = NIL;
		List	   *sortops = NIL;
		List	   *collations = NIL;
		List	   *nullsFirst = NIL;
		ListCell   *lc;
		bool		ok = true;

		foreach(lc, root->sort_pathkeys)
		{
			PathKey    *pathkey = lfirst(lc);
			EquivalenceClass *ec = pathkey->pk_eclass;
			Var		   *var = NULL;
			ListCell   *mc;
			Oid			sortop;

			foreach(mc, ec->ec_members)
			{
				EquivalenceMember *em = lfirst(mc);
				Expr	   *expr = em->em_expr;

				while (IsA(expr, RelabelType))
					expr = ((RelabelType *) expr)->arg;
				if (IsA(expr, Var) && ((Var *) expr)->varno == rel->relid &&
					((Var *) expr)->varlevelsup == 0)
					var = (Var *) expr;
			}
			if (var == NULL || ec->ec_has_volatile)
			{
				ok = false;
				break;
			}
			sortop = get_opfamily_member(pathkey->pk_opfamily, var->vartype, var->vartype,
										 pathkey->pk_strategy);
			if (!OidIsValid(sortop))
			{
				ok = false;
				break;
			}
			attnums = lappend_int(attnums, var->varattno);
			sortops = lappend_oid(sortops, sortop);
			collations = lappend_oid(collations, ec->ec_collation);
			nullsFirst = lappend_int(nullsFirst, pathkey->pk_nulls_first ? 1 : 0);
		}
		if (ok)
		{
			merge = list_make4(attnums, sortops, collations, nullsFirst);
			pathkeys = root->sort_pathkeys;
		}
	}

	path->path.pathtype = T_CustomScan;
	path->path.parent = rel;
	path->path.pathtarget = rel->reltarget;
	path->path.rows = Max(rel->rows, units);
	path->path.startup_cost = 100.0;
	path->path.total_cost = 100.0 + path->path.rows * 0.01;
	path->path.pathkeys = pathkeys;
	path->flags = 0;
	path->custom_private = list_make4(copyObject(workerQuery),
									  makeInteger((int) anchorRelid),
									  list_copy(shardIndexes),
									  merge);
	if (shardIndexes != NIL)
		units = list_length(shardIndexes);
	path->methods = &multi_shard_path_methods;
	return path;
}

/*
 * plan_multi_shard_scan turns the placeholder's path into the
 * CustomScan: its scan tuple is the worker query's result.
 */
static Plan *
plan_multi_shard_scan(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
					  List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);
	Query	   *workerQuery = linitial(best_path->custom_private);
	Oid			anchorRelid = (Oid) intVal(lsecond(best_path->custom_private));
	List	   *shardIndexes = lthird(best_path->custom_private);
	List	   *merge = lfourth(best_path->custom_private);
	List	   *scanTlist = NIL;
	List	   *private = NIL;
	ListCell   *lc;
	AttrNumber	attno = 0;

	foreach(lc, workerQuery->targetList)
	{
		Node	   *expr = (Node *) ((TargetEntry *) lfirst(lc))->expr;

		attno++;
		scanTlist = lappend(scanTlist,
							makeTargetEntry((Expr *) makeVar(rel->relid, attno, exprType(expr),
															 exprTypmod(expr),
															 exprCollation(expr), 0),
											attno, NULL, false));
	}

	private = lappend(private, workerQuery);
	private = lappend(private, makeInteger(0));
	private = lappend(private, makeInteger((int) anchorRelid));
	private = lappend(private, NULL);
	private = lappend(private, makeInteger(0));
	private = lappend(private, makeInteger(0));
	private = lappend(private, makeInteger((int) DISTRIBUTED_ALL_SHARDS));
	private = lappend(private, shardIndexes);
	private = lappend(private, merge);

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = extract_actual_clauses(clauses, false);
	cscan->scan.scanrelid = 0;
	cscan->custom_scan_tlist = scanTlist;
	cscan->custom_private = private;
	cscan->flags = best_path->flags;
	cscan->methods = &distributed_scan_methods;
	return &cscan->scan.plan;
}

PG_FUNCTION_INFO_V1(shardexec_remote_scan);

/*
 * shardexec_remote_scan is the placeholder of a coordinator query; the
 * planner replaces it, so it is never meant to run.
 */
Datum
shardexec_remote_scan(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("shardexec.remote_scan() can only be used by shardexec itself")));
	PG_RETURN_NULL();
}

static Node *
create_distributed_scan_state(CustomScan *cscan)
{
	DistributedScanState *state = (DistributedScanState *)
		newNode(sizeof(DistributedScanState), T_CustomScanState);

	state->css.methods = &distributed_exec_methods;
	return (Node *) state;
}

/*
 * begin_distributed_scan chooses the shard group, writes the SQL and,
 * unless only explaining, starts the execution.
 */
static void
begin_distributed_scan(CustomScanState *node, EState *estate, int eflags)
{
	DistributedScanState *state = (DistributedScanState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	List	   *private = cscan->custom_private;
	Expr	   *pinValue = list_nth(private, PRIVATE_PIN_VALUE);
	DistTableEntry *entry;
	ShardInterval *shard;
	ExecutionUnit *unit;
	Query	   *query;
	int			shardIndex = 0;
	bool		lockRows;

	state->query = list_nth(private, PRIVATE_QUERY);
	state->referenceOnly = intVal(list_nth(private, PRIVATE_REFERENCE_ONLY)) != 0;
	state->anchorRelid = (Oid) intVal(list_nth(private, PRIVATE_ANCHOR));
	state->pin.hashFunction = (Oid) intVal(list_nth(private, PRIVATE_PIN_HASH));
	state->pin.collation = (Oid) intVal(list_nth(private, PRIVATE_PIN_COLLATION));
	state->kind = (DistributedPlanKind) intVal(list_nth(private, PRIVATE_MULTI_SHARD));
	if (list_length(private) > PRIVATE_PLAN_ID)
		state->planId = DatumGetInt64(((Const *) list_nth(private, PRIVATE_PLAN_ID))->constvalue);
	if (list_length(private) > PRIVATE_MERGE && list_nth(private, PRIVATE_MERGE) != NIL)
	{
		List	   *spec = list_nth(private, PRIVATE_MERGE);
		List	   *attnums = linitial(spec);
		int			nkeys = list_length(attnums);
		int			k;

		state->merge = palloc0(sizeof(ExecutionMerge));
		state->merge->nkeys = nkeys;
		state->merge->attnums = palloc(sizeof(AttrNumber) * nkeys);
		state->merge->sortOperators = palloc(sizeof(Oid) * nkeys);
		state->merge->collations = palloc(sizeof(Oid) * nkeys);
		state->merge->nullsFirst = palloc(sizeof(bool) * nkeys);
		for (k = 0; k < nkeys; k++)
		{
			state->merge->attnums[k] = list_nth_int(attnums, k);
			state->merge->sortOperators[k] = list_nth_oid(lsecond(spec), k);
			state->merge->collations[k] = list_nth_oid(lthird(spec), k);
			state->merge->nullsFirst[k] = list_nth_int(lfourth(spec), k) != 0;
		}
	}
	state->modifies = state->query->commandType != CMD_SELECT;
	/* row locks pin the shard to its connection like writes do */
	lockRows = state->modifies || state->query->rowMarks != NIL;

	entry = LookupDistTable(state->anchorRelid);
	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is no longer distributed",
						get_rel_name(state->anchorRelid))));

	/* a router statement folds its parameters only if it cannot send them */
	if (state->kind != DISTRIBUTED_ROUTER)
		query = EvaluateCoordinatorExpressions(state->query, estate->es_param_list_info);

	if (state->kind == DISTRIBUTED_ALL_SHARDS)
	{
		int			i;

		/* the worker query on every shard group the WHERE clause leaves */
		List	   *shardIndexes = list_nth(private, PRIVATE_SHARD_INDEXES);
		ListCell   *sc;

		state->units = NIL;
		/* parameters known now may leave fewer shard groups: k = ANY($1) */
		if (estate->es_param_list_info != NULL &&
			has_extern_param((Node *) state->query, NULL))
			shardIndexes = prune_with_params(query, shardIndexes);
		if (shardIndexes == NIL)
			for (i = 0; i < entry->shardCount; i++)
				shardIndexes = lappend_int(shardIndexes, i);
		foreach(sc, shardIndexes)
		{
			i = lfirst_int(sc);
			state->units = lappend(state->units,
								   shard_unit(query, i, entry->shards[i].shardId,
											  entry->shards[i].nodeId, state->modifies));
		}
	}
	else if (state->kind == DISTRIBUTED_ALL_COPIES)
		state->units = copies_units(query, entry);
	else if (state->kind == DISTRIBUTED_INSERT_VALUES)
		state->units = insert_values_units(state, query, entry, estate);
	else
	{
		if (!state->referenceOnly && pinValue != NULL)
		{
			ExprContext *econtext = GetPerTupleExprContext(estate);
			bool		isnull;
			Datum		value;

			state->pinValue = ExecInitExpr(pinValue, &node->ss.ps);
			value = ExecEvalExprSwitchContext(state->pinValue, econtext, &isnull);
			/* "k = NULL" matches no row on any shard: any shard will do */
			if (!isnull)
				shardIndex = ShardIndexForPin(&state->pin, value, entry->shardCount);
		}

		shard = &entry->shards[entry->kind == DIST_KIND_REFERENCE ? 0 : shardIndex];
		unit = send_with_params(state, estate, shardIndex);
		if (unit == NULL)
		{
			query = EvaluateCoordinatorExpressions(state->query, estate->es_param_list_info);
			unit = shard_unit(query, shardIndex, shard->shardId, 0, lockRows);
		}
		unit->shardId = shard->shardId;
		unit->nodeId = entry->kind == DIST_KIND_REFERENCE ? entry->placementNodeIds[0] :
			shard->nodeId;
		unit->modifies = lockRows;
		state->units = list_make1(unit);
	}

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
		start_execution(state);
}

/*
 * prune_with_params returns the shard groups of planned (NIL: all) that
 * the WHERE clause of query, whose parameters are now folded into
 * constants, leaves: what the planner's pruning would have left had it
 * known the values (IN, = ANY, OR of equalities with parameters).
 */
static List *
prune_with_params(Query *query, List *planned)
{
	RouterAnalysis analysis;
	List	   *result = NIL;
	ListCell   *lc;

	AnalyzeRouterQuery(query, &analysis);
	if (!analysis.coPartitioned || analysis.shardIndexes == NIL)
		return planned;
	if (planned == NIL)
		return analysis.shardIndexes;
	foreach(lc, planned)
	{
		if (list_member_int(analysis.shardIndexes, lfirst_int(lc)))
			result = lappend_int(result, lfirst_int(lc));
	}
	/* contradictory: the WHERE clause filters every row anyway */
	return result != NIL ? result : list_make1_int(linitial_int(planned));
}

/*
 * param_below_non_immutable is a walker that finds an external parameter
 * under a function, operator or conversion that is not immutable: such a
 * value must be computed on the coordinator, not on the node.
 */
static bool
non_immutable_checker(Oid funcid, void *context)
{
	return func_volatile(funcid) != PROVOLATILE_IMMUTABLE;
}

static bool
has_extern_param(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param))
		return ((Param *) node)->paramkind == PARAM_EXTERN;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, has_extern_param, context, 0);
	return expression_tree_walker(node, has_extern_param, context);
}

static bool
param_below_non_immutable(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, param_below_non_immutable, context, 0);
	if (IsA(node, Param))
	{
		Param	   *param = (Param *) node;
		int		   *maxid = (int *) context;

		if (param->paramkind != PARAM_EXTERN)
			return true;
		*maxid = Max(*maxid, param->paramid);
		return false;
	}
	if (check_functions_in_node(node, non_immutable_checker, NULL) &&
		has_extern_param(node, NULL))
		return true;
	return expression_tree_walker(node, param_below_non_immutable, context);
}

/*
 * send_with_params returns the unit of a router statement whose external
 * parameters travel as $n with the statement, so that the node can keep
 * it prepared (distributed_executor.c) instead of parsing and planning a
 * new text for every value; NULL when the parameters must be folded into
 * the text instead (a parameter under a function that is not immutable,
 * a parameter of a type the node may not have).
 */
static ExecutionUnit *
send_with_params(DistributedScanState *state, EState *estate, int shardIndex)
{
	ParamListInfo params = estate->es_param_list_info;
	RouterSql  *cached = NULL;
	ExecutionUnit *unit;
	const char *sql = NULL;
	int			maxid = 0;
	int			nestlevel;
	int			i;

	if (params == NULL || params->numParams == 0 || state->kind != DISTRIBUTED_ROUTER)
		return NULL;
	if (state->planId != 0)
		cached = router_sql_entry(state->planId, shardIndex);
	if (cached != NULL && (cached->sql != NULL || cached->maxid < 0))
	{
		sql = cached->sql;
		maxid = cached->maxid;
	}
	else
	{
		Query	   *query = EvaluateCoordinatorExpressions(state->query, NULL);
		const char *failure = NULL;

		if (param_below_non_immutable((Node *) query, &maxid) || maxid == 0)
			maxid = -1;
		else
			sql = DeparseShardQueryWithParams(query, shardIndex, true, true, &failure);
		if (sql == NULL)
			maxid = -1;
		if (cached != NULL)
		{
			cached->sql = sql != NULL ? MemoryContextStrdup(routerSqlContext, sql) : NULL;
			cached->maxid = maxid;
		}
	}
	if (sql == NULL || maxid > params->numParams)
		return NULL;

	state->paramValues = palloc0(sizeof(char *) * maxid);
	state->paramTypes = palloc0(sizeof(Oid) * maxid);
	nestlevel = SetTransmissionModes();
	for (i = 1; i <= maxid; i++)
	{
		ParamExternData workspace;
		ParamExternData *prm = params->paramFetch != NULL ?
			params->paramFetch(params, i, false, &workspace) : &params->params[i - 1];
		Oid			output;
		bool		isVarlena;

		if (!OidIsValid(prm->ptype) || prm->ptype >= FirstGenbkiObjectId)
		{
			ResetTransmissionModes(nestlevel);
			state->paramValues = NULL;
			state->paramTypes = NULL;
			return NULL;
		}
		state->paramTypes[i - 1] = prm->ptype;
		if (!prm->isnull)
		{
			getTypeOutputInfo(prm->ptype, &output, &isVarlena);
			state->paramValues[i - 1] = OidOutputFunctionCall(output, prm->value);
		}
	}
	ResetTransmissionModes(nestlevel);

	unit = palloc0(sizeof(ExecutionUnit));
	unit->sql = pstrdup(sql);
	state->nParams = maxid;
	return unit;
}

/*
 * router_sql_entry returns the router SQL cache's entry of a plan and
 * shard group, made empty (maxid 0) if it was not there.
 */
static RouterSql *
router_sql_entry(int64 planId, int shardIndex)
{
	RouterSqlKey key;
	RouterSql  *entry;
	bool		found;

	if (routerSqlCache == NULL || hash_get_num_entries(routerSqlCache) >= ROUTER_SQL_CACHE_SIZE)
	{
		HASHCTL		ctl;

		if (routerSqlContext == NULL)
			routerSqlContext = AllocSetContextCreate(TopMemoryContext,
													 "shardexec router SQL cache",
													 ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(routerSqlContext);
		ctl.keysize = sizeof(RouterSqlKey);
		ctl.entrysize = sizeof(RouterSql);
		ctl.hcxt = routerSqlContext;
		routerSqlCache = hash_create("shardexec router SQL cache", 256, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.planId = planId;
	key.shardIndex = shardIndex;
	entry = hash_search(routerSqlCache, &key, HASH_ENTER, &found);
	if (!found)
	{
		entry->sql = NULL;
		entry->maxid = 0;
	}
	return entry;
}

/*
 * shard_unit returns the unit that runs query on shard group shardIndex
 * on node nodeId (shardId names the shard for EXPLAIN and errors); a
 * query that cannot be written for the nodes after all is an error.
 */
static ExecutionUnit *
shard_unit(Query *query, int shardIndex, int64 shardId, int32 nodeId, bool modifies)
{
	ExecutionUnit *unit = palloc0(sizeof(ExecutionUnit));
	const char *failure = NULL;

	unit->sql = DeparseShardQuery(query, shardIndex, true, &failure);
	if (unit->sql == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("could not push the statement down to the nodes"),
				 errdetail("%s.", failure)));
	unit->shardId = shardId;
	unit->nodeId = nodeId;
	unit->modifies = modifies;
	return unit;
}

/*
 * copies_units returns the units that apply a write to every copy of the
 * reference table entry: every copy changes the same way, so only the
 * first returns the RETURNING rows.
 */
static List *
copies_units(Query *query, DistTableEntry *entry)
{
	List	   *units = NIL;
	Query	   *silent = query;
	int			i;

	if (query->returningList != NIL)
	{
		silent = copyObject(query);
		silent->returningList = NIL;
	}
	for (i = 0; i < entry->placementCount; i++)
		units = lappend(units, shard_unit(i == 0 ? query : silent, 0, entry->shards[0].shardId,
										  entry->placementNodeIds[i], true));
	return units;
}

/*
 * evaluate_cell returns the value of expr, evaluated now on the
 * coordinator, as a constant.
 */
static Node *
evaluate_cell(Node *expr, EState *estate)
{
	ExprContext *econtext = GetPerTupleExprContext(estate);
	ExprState  *exprState;
	Datum		value;
	bool		isnull;
	int16		typlen;
	bool		typbyval;
	MemoryContext oldContext;

	if (IsA(expr, Const))
		return expr;
	oldContext = MemoryContextSwitchTo(estate->es_query_cxt);
	exprState = ExecInitExpr((Expr *) expr, NULL);
	value = ExecEvalExprSwitchContext(exprState, econtext, &isnull);
	get_typlenbyval(exprType(expr), &typlen, &typbyval);
	if (!isnull)
		value = datumCopy(value, typbyval, typlen);
	MemoryContextSwitchTo(oldContext);
	return (Node *) makeConst(exprType(expr), exprTypmod(expr), exprCollation(expr),
							  typlen, value, isnull, typbyval);
}

/*
 * insert_values_units evaluates the rows of an INSERT ... VALUES, row by
 * row as a single server would, groups them by shard and returns one
 * unit per shard that gets rows (for a reference table, one per copy).
 */
static List *
insert_values_units(DistributedScanState *state, Query *query,
					DistTableEntry *entry, EState *estate)
{
	RangeTblEntry *values = NULL;
	List	  **rowsOfShard;
	List	   *units = NIL;
	AttrNumber	distColumn = 0;
	ListCell   *lc;
	int			i;

	if (query->jointree->fromlist != NIL)
		values = rt_fetch(linitial_node(RangeTblRef, query->jointree->fromlist)->rtindex,
						  query->rtable);

	/* every value, once, in row order */
	if (values == NULL)
	{
		foreach(lc, query->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			tle->expr = (Expr *) evaluate_cell((Node *) tle->expr, estate);
		}
	}
	else
	{
		foreach(lc, values->values_lists)
		{
			ListCell   *cell;

			foreach(cell, (List *) lfirst(lc))
				lfirst(cell) = evaluate_cell(lfirst(cell), estate);
		}
	}

	if (entry->kind == DIST_KIND_REFERENCE)
		return copies_units(query, entry);

	/* the distribution value of each row */
	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resno == entry->distAttnum)
			distColumn = foreach_current_index(lc) + 1;
	}
	rowsOfShard = palloc0(sizeof(List *) * entry->shardCount);
	if (values == NULL)
	{
		Const	   *value = distColumn > 0 ?
			(Const *) list_nth_node(TargetEntry, query->targetList, distColumn - 1)->expr : NULL;

		if (value == NULL || !IsA(value, Const) || value->constisnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in distribution column \"%s\" of relation \"%s\"",
							get_attname(entry->relid, entry->distAttnum, false),
							get_rel_name(entry->relid)),
					 errdetail("Every row of a distributed table needs a distribution value to choose its shard.")));
		rowsOfShard[FindShardForValue(entry, value->constvalue)->shardIndex] = list_make1_int(0);
	}
	else
	{
		TargetEntry *tle = distColumn > 0 ? list_nth(query->targetList, distColumn - 1) : NULL;
		Var		   *var = tle != NULL ? (Var *) strip_implicit_coercions((Node *) tle->expr) : NULL;

		if (var == NULL || !IsA(var, Var))
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in distribution column \"%s\" of relation \"%s\"",
							get_attname(entry->relid, entry->distAttnum, false),
							get_rel_name(entry->relid))));
		i = 0;
		foreach(lc, values->values_lists)
		{
			Const	   *value = list_nth(lfirst(lc), var->varattno - 1);
			int			shardIndex;

			if (!IsA(value, Const) || value->constisnull)
				ereport(ERROR,
						(errcode(ERRCODE_NOT_NULL_VIOLATION),
						 errmsg("null value in distribution column \"%s\" of relation \"%s\"",
								get_attname(entry->relid, entry->distAttnum, false),
								get_rel_name(entry->relid)),
						 errdetail("Every row of a distributed table needs a distribution value to choose its shard.")));
			shardIndex = FindShardForValue(entry, value->constvalue)->shardIndex;
			rowsOfShard[shardIndex] = lappend_int(rowsOfShard[shardIndex], i);
			i++;
		}
	}

	for (i = 0; i < entry->shardCount; i++)
	{
		Query	   *shardQuery = query;

		if (rowsOfShard[i] == NIL)
			continue;
		if (values != NULL && list_length(rowsOfShard[i]) != list_length(values->values_lists))
		{
			RangeTblEntry *shardValues;
			List	   *rows = NIL;

			shardQuery = copyObject(query);
			shardValues = rt_fetch(linitial_node(RangeTblRef, shardQuery->jointree->fromlist)->rtindex,
								   shardQuery->rtable);
			foreach(lc, rowsOfShard[i])
				rows = lappend(rows, list_nth(values->values_lists, lfirst_int(lc)));
			shardValues->values_lists = rows;
		}
		units = lappend(units, shard_unit(shardQuery, i, entry->shards[i].shardId,
										  entry->shards[i].nodeId, true));
	}
	(void) state;
	return units;
}

/*
 * copies_first returns whether the units write every copy of a reference
 * table: then the first copy (the lowest node id) is written alone before
 * the others, so that two transactions writing the same rows queue on
 * that copy instead of each locking a different copy first and waiting
 * for the other's, a deadlock no node could see.
 */
static bool
copies_first(DistributedScanState *state)
{
	return state->kind == DISTRIBUTED_ALL_COPIES ||
		(state->kind == DISTRIBUTED_INSERT_VALUES &&
		 LookupDistTable(state->anchorRelid)->kind == DIST_KIND_REFERENCE);
}

static void
start_execution(DistributedScanState *state)
{
	TupleDesc	tupdesc = state->css.ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	List	   *volatile units = state->units;

	state->laterUnits = NIL;
	if (copies_first(state) && list_length(units) > 1)
	{
		state->laterUnits = list_copy_tail(units, 1);
		units = list_make1(linitial(units));
	}
	/*
	 * Outside a transaction block, a read-only statement, or a client's own
	 * statement that writes through one unit (atomic on its node by
	 * itself; not a statement inside a function or DO block, whose
	 * transaction may still fail; not when shardexec.use_2pc = on asks for
	 * two phases for every write), runs on connections in autocommit: no
	 * remote transaction to start and commit.
	 */
	ShardexecReadWithoutRemoteTransaction =
		!IsTransactionBlock() &&
		((state->query->commandType == CMD_SELECT &&
		  state->query->rowMarks == NIL && !state->query->hasModifyingCTE) ||
		 (list_length(units) == 1 && state->laterUnits == NIL &&
		  ShardexecUse2pc != SHARDEXEC_2PC_ON && ActivePortal != NULL &&
		  list_member_ptr(ActivePortal->stmts, state->css.ss.ps.state->es_plannedstmt)));
	PG_TRY();
	{
		state->execution = BeginDistributedExecution(units, tupdesc, state->merge,
													 state->nParams,
													 (const char *const *) state->paramValues,
													 state->paramTypes);
	}
	PG_FINALLY();
	{
		ShardexecReadWithoutRemoteTransaction = false;
	}
	PG_END_TRY();
}

static TupleTableSlot *
exec_distributed_scan(CustomScanState *node)
{
	return ExecScan(&node->ss, distributed_scan_next, distributed_scan_recheck);
}

static TupleTableSlot *
distributed_scan_next(ScanState *ss)
{
	DistributedScanState *state = (DistributedScanState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;

	if (state->execution == NULL)
		start_execution(state);
	if (DistributedExecutionNextRow(state->execution, slot))
		return slot;
	if (state->modifies && !state->counted)
	{
		/* the first copy of a reference table tells the rows affected */
		state->css.ss.ps.state->es_processed +=
			DistributedExecutionRowsAffected(state->execution);
		state->counted = true;
	}
	if (state->laterUnits != NIL)
	{
		/* the other copies, in parallel, once the first one is written */
		TupleDesc	tupdesc = slot->tts_tupleDescriptor;
		List	   *later = state->laterUnits;

		state->laterUnits = NIL;
		EndDistributedExecution(state->execution);
		state->execution = BeginDistributedExecution(later, tupdesc, NULL, 0, NULL, NULL);
		while (DistributedExecutionNextRow(state->execution, slot))
			 /* their statements return no rows */ ;
	}
	return ExecClearTuple(slot);
}

static bool
distributed_scan_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static void
end_distributed_scan(CustomScanState *node)
{
	DistributedScanState *state = (DistributedScanState *) node;

	if (state->execution != NULL)
	{
		EndDistributedExecution(state->execution);
		state->execution = NULL;
	}
}

static void
rescan_distributed_scan(CustomScanState *node)
{
	end_distributed_scan(node);
	((DistributedScanState *) node)->counted = false;
}

/*
 * explain_distributed_scan shows the plan kind, the units and their
 * nodes and SQL; with ANALYZE, the executor's figures.
 */
static void
explain_distributed_scan(CustomScanState *node, List *ancestors, ExplainState *es)
{
	DistributedScanState *state = (DistributedScanState *) node;
	ListCell   *lc;
	List	   *nodes = NIL;

	ExplainPropertyText("Distributed Plan",
						state->kind == DISTRIBUTED_ROUTER ? "router" :
						state->kind == DISTRIBUTED_ALL_SHARDS ? "multi-shard" :
						state->kind == DISTRIBUTED_INSERT_VALUES ? "insert by shard" :
						"all copies", es);
	ExplainPropertyInteger("Execution Units", NULL, list_length(state->units), es);
	foreach(lc, state->units)
		nodes = list_append_unique_int(nodes, ((ExecutionUnit *) lfirst(lc))->nodeId);
	ExplainPropertyInteger("Nodes", NULL, list_length(nodes), es);
	foreach(lc, state->units)
	{
		ExecutionUnit *unit = lfirst(lc);
		ShardexecNode *shardNode = LookupNodeById(unit->nodeId, true);

		/* one unit's SQL shows the shape; VERBOSE shows every unit's */
		if (lc != list_head(state->units) && !es->verbose)
			break;
		ExplainPropertyText("Node", shardNode != NULL ? shardNode->nodeName : "?", es);
		ExplainPropertyText("Remote SQL", unit->sql, es);
	}
	if (es->analyze && state->execution != NULL)
		ExplainDistributedExecution(state->execution, es);

}
