/*-------------------------------------------------------------------------
 *
 * multi_shard.c
 *		  Multi-shard pushdown: a query over every shard group, split into
 *		  a worker query run on each shard group and a coordinator query
 *		  that merges their results.
 *
 * When every combination of rows a query joins lies within one shard
 * group (its distributed tables are colocated and joined on their
 * distribution columns; router.c calls that co-partitioned), the rows
 * before the query's top-level grouping, windows, DISTINCT, ORDER BY and
 * LIMIT are the union over shard groups of the same query restricted to
 * each group.  The query is then split in two:
 *
 *  - the worker query: the query's FROM and WHERE, sent to each shard
 *    group (deparse_query.c, at execution);
 *  - the coordinator ("master") query: the rest, written as SQL over
 *    shardexec.remote_scan(id), a set-returning placeholder whose columns
 *    are the worker query's, parsed and planned by the standard planner
 *    on the coordinator.  set_rel_pathlist_hook replaces the placeholder
 *    by the ShardexecQuery CustomScan that runs the worker query on every
 *    shard group (distributed_scan.c), so the merge uses PostgreSQL's own
 *    Sort, Agg, Unique, WindowAgg and Limit.
 *
 * How much the worker does:
 *  - full: no aggregate, or GROUP BY a distribution column (groups never
 *    span shard groups), and no window unless partitioned by one: the
 *    whole query runs per shard group, with ORDER BY and LIMIT (plus
 *    OFFSET) as a top-N; the coordinator re-applies DISTINCT, ORDER BY,
 *    LIMIT and OFFSET.
 *  - partial aggregates: every aggregate is count, sum, avg, min, max,
 *    bool_and/or, every or bit_and/or/xor without DISTINCT or ORDER BY:
 *    the worker groups by the query's grouping expressions and computes
 *    partial aggregates (avg as sum and count); the coordinator combines
 *    them (count as the sum of counts, avg as the sum of sums divided by
 *    the sum of counts, with the same numeric division as avg itself)
 *    and applies HAVING, ORDER BY and LIMIT.
 *    Numeric variance and standard deviation come from count, sum and sum
 *    of squares with the numeric arithmetic PostgreSQL's own uses;
 *    string_agg and array_agg join the shards' results.
 *  - columns: otherwise (count(DISTINCT), ordered aggregates, float
 *    variance, windows across shards, ...): the worker sends only the
 *    columns the coordinator needs, filtered (and deduplicated when no
 *    aggregate cares about duplicates), and the coordinator computes the
 *    rest exactly as a single server would.
 *
 * When the worker runs the whole query with an ORDER BY, the scan
 * declares that order and the executor merges the shards' sorted streams
 * (a binary heap), so no Sort runs on the coordinator and a LIMIT stops
 * reading early.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "parser/parse_func.h"
#include "parser/parse_coerce.h"
#include "parser/parse_oper.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "shardexec/executor.h"
#include "shardexec/metadata.h"
#include "shardexec/planner.h"

/* how much of the query the worker runs */
typedef enum WorkerMode
{
	WORKER_FULL,
	WORKER_PARTIAL_AGGREGATES,
	WORKER_COLUMNS
} WorkerMode;

/* a worker query waiting for the planner to reach its placeholder */
typedef struct PendingRemoteScan
{
	Query	   *workerQuery;
	Oid			anchorRelid;
	List	   *shardIndexes;
	bool		sorted;			/* rows arrive sorted by the query's ORDER BY */
} PendingRemoteScan;

static List *pendingRemoteScans = NIL;

typedef struct SplitContext
{
	Query	   *query;
	Query	   *worker;
	List	   *substitutions;	/* for the master query: expr, text pairs */
	int			ncolumns;
} SplitContext;

static bool contains_sublink_or_srf(Node *node);
static void add_worker_column(SplitContext *split, Expr *expr, const char *name,
							  Index sortgroupref, bool addSubstitution);
static bool is_dist_column(Node *expr, RouterAnalysis *analysis);
static bool collect_aggrefs(Node *node, List **aggrefs);
static bool combine_aggregate(SplitContext *split, Aggref *agg);
static bool duplicates_irrelevant(List *aggrefs);
static void group_by_every_column(Query *worker);
static char *build_master_sql(SplitContext *split, WorkerMode mode,
							  int id, const char **failure);

/*
 * is_dist_column says whether expr is a top-level distribution column.
 */
static bool
is_dist_column(Node *expr, RouterAnalysis *analysis)
{
	ListCell   *lc;

	while (expr != NULL && IsA(expr, RelabelType))
		expr = (Node *) ((RelabelType *) expr)->arg;
	if (expr == NULL || !IsA(expr, Var))
		return false;
	foreach(lc, analysis->distColumns)
	{
		Var		   *var = lfirst(lc);

		if (var->varno == ((Var *) expr)->varno && var->varattno == ((Var *) expr)->varattno &&
			((Var *) expr)->varlevelsup == 0)
			return true;
	}
	return false;
}

static bool
contains_sublink_or_srf_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
		return true;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcretset)
		return true;
	if (IsA(node, OpExpr) && ((OpExpr *) node)->opretset)
		return true;
	return expression_tree_walker(node, contains_sublink_or_srf_walker, context);
}

static bool
contains_sublink_or_srf(Node *node)
{
	return contains_sublink_or_srf_walker(node, NULL);
}

/*
 * collect_aggrefs gathers the top-level aggregates of an expression.
 */
static bool
collect_aggrefs(Node *node, List **aggrefs)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		if (((Aggref *) node)->agglevelsup == 0)
			*aggrefs = list_append_unique(*aggrefs, node);
		return false;
	}
	return expression_tree_walker(node, collect_aggrefs, aggrefs);
}

/*
 * add_worker_column adds expr to the worker query's target list, and
 * (with addSubstitution) says the master query reads it from its column.
 */
static void
add_worker_column(SplitContext *split, Expr *expr, const char *name,
				  Index sortgroupref, bool addSubstitution)
{
	TargetEntry *tle;

	split->ncolumns++;
	tle = makeTargetEntry(expr, split->ncolumns, pstrdup(name), false);
	tle->ressortgroupref = sortgroupref;
	split->worker->targetList = lappend(split->worker->targetList, tle);
	if (addSubstitution)
	{
		split->substitutions = lappend(split->substitutions, expr);
		split->substitutions = lappend(split->substitutions,
									   psprintf("remote_scan.c%d", split->ncolumns));
	}
}

/*
 * make_partial_aggref returns a copy of agg that calls aggregate name on
 * the same argument (or on no argument: count(*)).
 */
static Aggref *
make_partial_aggref(Aggref *agg, const char *name, bool star)
{
	Aggref	   *partial = copyObject(agg);
	Oid			argtypes[1];
	int			nargs = 0;
	Oid			funcid;

	if (!star)
	{
		argtypes[0] = exprType((Node *) ((TargetEntry *) linitial(agg->args))->expr);
		nargs = 1;
	}
	/* count takes "any" */
	if (strcmp(name, "count") == 0)
		funcid = star ? F_COUNT_ : F_COUNT_ANY;
	else
		funcid = LookupFuncName(list_make2(makeString("pg_catalog"), makeString((char *) name)),
								nargs, argtypes, true);
	if (!OidIsValid(funcid))
		return NULL;
	partial->aggfnoid = funcid;
	partial->aggtype = get_func_rettype(funcid);
	partial->aggstar = star;
	if (star)
	{
		partial->args = NIL;
		partial->aggargtypes = NIL;
	}
	return partial;
}

/*
 * combine_aggregate adds the worker columns of one combinable aggregate
 * and the master expression that combines them.  Returns false if agg is
 * not combinable.
 */
static bool
combine_aggregate(SplitContext *split, Aggref *agg)
{
	char	   *name = get_func_name(agg->aggfnoid);
	char	   *resultType = DeparseTypeName(agg->aggtype, -1);
	char	   *text;
	int			first = split->ncolumns + 1;

	if (agg->aggdistinct != NIL || agg->aggorder != NIL || agg->aggdirectargs != NIL ||
		agg->aggvariadic || agg->aggkind != AGGKIND_NORMAL ||
		get_func_namespace(agg->aggfnoid) != PG_CATALOG_NAMESPACE)
		return false;
	/* string_agg(x, constant delimiter): the shards' strings joined */
	if (strcmp(name, "string_agg") == 0 && list_length(agg->args) == 2 &&
		IsA(((TargetEntry *) lsecond(agg->args))->expr, Const))
	{
		MasterDeparse *md = BeginMasterDeparse(split->query, NIL);
		StringInfoData delimiter;

		initStringInfo(&delimiter);
		MasterDeparseExpr(md, &delimiter, (Node *) ((TargetEntry *) lsecond(agg->args))->expr);
		if (MasterDeparseFailure(md) != NULL)
			return false;
		add_worker_column(split, (Expr *) agg, "string_agg", 0, false);
		text = psprintf("pg_catalog.string_agg(remote_scan.c%d, %s)", first, delimiter.data);
		split->substitutions = lappend(split->substitutions, agg);
		split->substitutions = lappend(split->substitutions, text);
		return true;
	}
	if (!agg->aggstar && list_length(agg->args) != 1)
		return false;

	if (strcmp(name, "array_agg") == 0)
	{
		/* the shards' arrays concatenated */
		add_worker_column(split, (Expr *) agg, "array_agg", 0, false);
		text = psprintf("shardexec.array_cat_agg(remote_scan.c%d)", first);
	}
	else if ((strcmp(name, "var_samp") == 0 || strcmp(name, "variance") == 0 ||
			  strcmp(name, "var_pop") == 0 || strcmp(name, "stddev_samp") == 0 ||
			  strcmp(name, "stddev") == 0 || strcmp(name, "stddev_pop") == 0) &&
			 agg->aggtype == NUMERICOID)
	{
		/*
		 * Variance from count, sum and sum of squares, computed with the
		 * numeric operations, scales and division PostgreSQL's own
		 * numeric variance uses, so the result is the same to the digit;
		 * a standard deviation is the square root rounded to the
		 * variance's scale (taken with 30 more digits first).
		 */
		Expr	   *arg = ((TargetEntry *) linitial(agg->args))->expr;
		Expr	   *x = (Expr *) coerce_to_target_type(NULL, (Node *) arg, exprType((Node *) arg),
													   NUMERICOID, -1, COERCION_EXPLICIT,
													   COERCE_EXPLICIT_CAST, -1);
		Oid			times = OpernameGetOprid(list_make1(makeString("*")), NUMERICOID, NUMERICOID);
		Aggref	   *count = make_partial_aggref(agg, "count", false);
		Aggref	   *sum = copyObject(agg);
		Aggref	   *squares;
		OpExpr	   *square;
		bool		sample = strcmp(name, "var_pop") != 0 && strcmp(name, "stddev_pop") != 0;
		bool		root = strncmp(name, "stddev", 6) == 0;
		char	   *n;
		char	   *sx;
		char	   *sx2;
		char	   *variance;

		if (x == NULL || count == NULL || !OidIsValid(times))
			return false;
		sum->aggfnoid = F_SUM_NUMERIC;
		sum->aggtype = NUMERICOID;
		sum->aggargtypes = list_make1_oid(NUMERICOID);
		sum->args = list_make1(makeTargetEntry(x, 1, NULL, false));
		squares = copyObject(sum);
		square = (OpExpr *) make_opclause(times, NUMERICOID, false, copyObject(x), copyObject(x),
										  InvalidOid, InvalidOid);
		set_opfuncid(square);
		squares->args = list_make1(makeTargetEntry((Expr *) square, 1, NULL, false));

		add_worker_column(split, (Expr *) count, "count", 0, false);
		add_worker_column(split, (Expr *) sum, "sum", 0, false);
		add_worker_column(split, (Expr *) squares, "squares", 0, false);
		n = psprintf("pg_catalog.sum(remote_scan.c%d)::numeric", first);
		sx = psprintf("pg_catalog.sum(remote_scan.c%d)", first + 1);
		sx2 = psprintf("pg_catalog.sum(remote_scan.c%d)", first + 2);
		variance = psprintf("((%s * %s - %s * %s) / (%s * %s))", n, sx2, sx, sx, n,
							sample ? psprintf("(%s - 1)", n) : n);
		text = psprintf("(CASE WHEN %s %s THEN NULL::numeric "
						"WHEN %s * %s - %s * %s <= 0 THEN 0::numeric ELSE %s END)",
						n, sample ? "<= 1" : "= 0",
						n, sx2, sx, sx,
						root ?
						psprintf("pg_catalog.round(pg_catalog.sqrt(%s * 1.000000000000000000000000000000), pg_catalog.scale(%s))",
								 variance, variance) :
						variance);
	}
	else if (strcmp(name, "count") == 0)
	{
		add_worker_column(split, (Expr *) agg, "count", 0, false);
		text = psprintf("COALESCE(pg_catalog.sum(remote_scan.c%d), 0)::bigint", first);
	}
	else if (strcmp(name, "sum") == 0)
	{
		add_worker_column(split, (Expr *) agg, "sum", 0, false);
		text = psprintf("pg_catalog.sum(remote_scan.c%d)::%s", first, resultType);
	}
	else if (strcmp(name, "min") == 0 || strcmp(name, "max") == 0 ||
			 strcmp(name, "bool_and") == 0 || strcmp(name, "bool_or") == 0 ||
			 strcmp(name, "every") == 0 || strcmp(name, "bit_and") == 0 ||
			 strcmp(name, "bit_or") == 0 || strcmp(name, "bit_xor") == 0)
	{
		const char *combiner = strcmp(name, "every") == 0 ? "bool_and" : name;

		if (OidIsValid(agg->inputcollid) &&
			agg->inputcollid != get_typcollation(agg->aggtype))
			return false;
		add_worker_column(split, (Expr *) agg, name, 0, false);
		text = psprintf("pg_catalog.%s(remote_scan.c%d)", combiner, first);
	}
	else if (strcmp(name, "avg") == 0)
	{
		Aggref	   *sum = make_partial_aggref(agg, "sum", false);
		Aggref	   *count = make_partial_aggref(agg, "count", false);
		Oid			argType = exprType((Node *) ((TargetEntry *) linitial(agg->args))->expr);

		if (sum == NULL || count == NULL)
			return false;
		add_worker_column(split, (Expr *) sum, "sum", 0, false);
		add_worker_column(split, (Expr *) count, "count", 0, false);
		if (agg->aggtype == NUMERICOID)
			text = psprintf("(pg_catalog.sum(remote_scan.c%d)::numeric / "
							"NULLIF(pg_catalog.sum(remote_scan.c%d), 0)::numeric)",
							first, first + 1);
		else if (agg->aggtype == FLOAT8OID && (argType == FLOAT4OID || argType == FLOAT8OID))
			text = psprintf("(pg_catalog.sum(remote_scan.c%d)::float8 / "
							"NULLIF(pg_catalog.sum(remote_scan.c%d), 0)::float8)",
							first, first + 1);
		else if (agg->aggtype == INTERVALOID)
			text = psprintf("(pg_catalog.sum(remote_scan.c%d) / "
							"NULLIF(pg_catalog.sum(remote_scan.c%d), 0)::float8)",
							first, first + 1);
		else
			return false;
	}
	else
		return false;

	split->substitutions = lappend(split->substitutions, agg);
	split->substitutions = lappend(split->substitutions, text);
	return true;
}

/*
 * duplicates_irrelevant says whether every aggregate gives the same result
 * when its input rows are deduplicated.
 */
static bool
duplicates_irrelevant(List *aggrefs)
{
	ListCell   *lc;

	foreach(lc, aggrefs)
	{
		Aggref	   *agg = lfirst(lc);
		char	   *name;

		if (agg->aggdistinct != NIL)
			continue;
		name = get_func_name(agg->aggfnoid);
		if (agg->aggorder != NIL || agg->aggkind != AGGKIND_NORMAL ||
			get_func_namespace(agg->aggfnoid) != PG_CATALOG_NAMESPACE ||
			!(strcmp(name, "min") == 0 || strcmp(name, "max") == 0 ||
			  strcmp(name, "bool_and") == 0 || strcmp(name, "bool_or") == 0 ||
			  strcmp(name, "every") == 0 || strcmp(name, "bit_and") == 0 ||
			  strcmp(name, "bit_or") == 0))
			return false;
	}
	return true;
}

/*
 * group_by_every_column makes the worker query group by all its columns,
 * when every column's type can be grouped.
 */
static void
group_by_every_column(Query *worker)
{
	List	   *groupClause = NIL;
	ListCell   *lc;
	Index		ref = 0;

	foreach(lc, worker->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		Oid			sortop;
		Oid			eqop;
		bool		hashable;
		SortGroupClause *sgc;

		get_sort_group_operators(exprType((Node *) tle->expr), false, false, false,
								 &sortop, &eqop, NULL, &hashable);
		if (!OidIsValid(eqop))
			return;
		sgc = makeNode(SortGroupClause);
		sgc->tleSortGroupRef = ++ref;
		sgc->eqop = eqop;
		sgc->sortop = sortop;
		sgc->nulls_first = false;
		sgc->hashable = hashable;
		groupClause = lappend(groupClause, sgc);
	}
	ref = 0;
	foreach(lc, worker->targetList)
		((TargetEntry *) lfirst(lc))->ressortgroupref = ++ref;
	worker->groupClause = groupClause;
}

/*
 * build_master_sql writes the coordinator's query over the worker
 * results of placeholder id.
 */
static char *
build_master_sql(SplitContext *split, WorkerMode mode, int id, const char **failure)
{
	Query	   *query = split->query;
	MasterDeparse *md = BeginMasterDeparse(query, split->substitutions);
	StringInfoData sql;
	ListCell   *lc;
	bool		first = true;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	if (query->distinctClause != NIL)
	{
		if (query->hasDistinctOn)
		{
			appendStringInfoString(&sql, "DISTINCT ON (");
			foreach(lc, query->distinctClause)
			{
				if (lc != list_head(query->distinctClause))
					appendStringInfoString(&sql, ", ");
				MasterDeparseExpr(md, &sql,
								  (Node *) get_sortgroupclause_expr(lfirst(lc), query->targetList));
			}
			appendStringInfoString(&sql, ") ");
		}
		else
			appendStringInfoString(&sql, "DISTINCT ");
	}
	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		if (!first)
			appendStringInfoString(&sql, ", ");
		first = false;
		MasterDeparseExpr(md, &sql, (Node *) tle->expr);
		appendStringInfo(&sql, " AS %s",
						 quote_identifier(tle->resname != NULL ? tle->resname : "?column?"));
	}

	appendStringInfo(&sql, " FROM shardexec.remote_scan(%d) remote_scan(", id);
	i = 0;
	foreach(lc, split->worker->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		Node	   *expr = (Node *) tle->expr;

		appendStringInfo(&sql, "%sc%d %s", i > 0 ? ", " : "", i + 1,
						 DeparseTypeName(exprType(expr), exprTypmod(expr)));
		if (OidIsValid(exprCollation(expr)) &&
			exprCollation(expr) != get_typcollation(exprType(expr)))
			appendStringInfo(&sql, " COLLATE %s", DeparseCollationName(exprCollation(expr)));
		i++;
	}
	appendStringInfoChar(&sql, ')');

	if (mode != WORKER_FULL && query->groupClause != NIL)
	{
		appendStringInfoString(&sql, " GROUP BY ");
		foreach(lc, query->groupClause)
		{
			if (lc != list_head(query->groupClause))
				appendStringInfoString(&sql, ", ");
			MasterDeparseExpr(md, &sql,
							  (Node *) get_sortgroupclause_expr(lfirst(lc), query->targetList));
		}
	}
	if (mode != WORKER_FULL && query->havingQual != NULL)
	{
		appendStringInfoString(&sql, " HAVING ");
		MasterDeparseExpr(md, &sql, query->havingQual);
	}
	if (query->sortClause != NIL)
	{
		appendStringInfoString(&sql, " ORDER BY ");
		MasterDeparseSortClause(md, &sql, query->sortClause);
	}
	if (query->limitOffset != NULL)
	{
		appendStringInfoString(&sql, " OFFSET ");
		MasterDeparseExpr(md, &sql, query->limitOffset);
	}
	if (query->limitCount != NULL)
	{
		if (query->limitOption == LIMIT_OPTION_WITH_TIES)
		{
			appendStringInfoString(&sql, " FETCH FIRST (");
			MasterDeparseExpr(md, &sql, query->limitCount);
			appendStringInfoString(&sql, ") ROWS WITH TIES");
		}
		else
		{
			appendStringInfoString(&sql, " LIMIT ");
			MasterDeparseExpr(md, &sql, query->limitCount);
		}
	}

	*failure = MasterDeparseFailure(md);
	return *failure == NULL ? sql.data : NULL;
}

/*
 * collect_param_types records the type of every external parameter.
 */
static bool
collect_param_types(Node *node, List **types)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXTERN)
	{
		Param	   *param = (Param *) node;

		while (list_length(*types) < param->paramid)
			*types = lappend_oid(*types, UNKNOWNOID);
		list_nth_cell(*types, param->paramid - 1)->oid_value = param->paramtype;
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, collect_param_types, types, 0);
	return expression_tree_walker(node, collect_param_types, types);
}

/*
 * PlanMultiShardQuery returns the plan of query as a worker query on
 * every shard group merged by a coordinator query, or NULL, with
 * *failure saying why, when the query is not co-partitioned or a part of
 * it cannot be written.
 */
PlannedStmt *
PlanMultiShardQuery(Query *parse, int cursorOptions, ParamListInfo boundParams,
					RouterAnalysis *analysis, const char **failure)
{
	Query	   *query;
	Query	   *worker;
	SplitContext split;
	WorkerMode	mode;
	bool		groupByDist = false;
	bool		windowsByDist = true;
	List	   *aggrefs = NIL;
	ListCell   *lc;
	char	   *masterSql;
	List	   *parsetrees;
	List	   *paramTypes = NIL;
	Oid		   *paramTypeArray = NULL;
	Query	   *masterQuery;
	PlannedStmt *result;
	PendingRemoteScan *pending;
	int			id;
	int			i;
	List	   *flatRtable = NIL;

	*failure = NULL;
	if (!analysis->isPushable || !analysis->coPartitioned || analysis->referenceOnly)
	{
		*failure = "the query's distributed tables are not joined on their distribution columns";
		return NULL;
	}
	if (parse->setOperations != NULL || parse->groupingSets != NIL ||
		parse->rowMarks != NIL || parse->hasTargetSRFs || parse->hasModifyingCTE)
	{
		*failure = "the query's top level cannot be split";
		return NULL;
	}
	if (!ShardQueryIsShippable(parse, failure))
		return NULL;

	query = copyObject(parse);

	foreach(lc, query->groupClause)
	{
		if (is_dist_column((Node *) get_sortgroupclause_expr(lfirst(lc), query->targetList),
						   analysis))
			groupByDist = true;
	}
	foreach(lc, query->windowClause)
	{
		WindowClause *wc = lfirst(lc);
		ListCell   *pc;
		bool		byDist = false;

		foreach(pc, wc->partitionClause)
		{
			if (is_dist_column((Node *) get_sortgroupclause_expr(lfirst(pc), query->targetList),
							   analysis))
				byDist = true;
		}
		if (!byDist)
			windowsByDist = false;
	}

	memset(&split, 0, sizeof(split));
	split.query = query;
	worker = copyObject(query);
	split.worker = worker;

	if (((!query->hasAggs && query->groupClause == NIL) || groupByDist) &&
		(!query->hasWindowFuncs || windowsByDist))
	{
		/* the whole query per shard group */
		mode = WORKER_FULL;
		worker->targetList = NIL;
		foreach(lc, query->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			add_worker_column(&split, tle->expr, tle->resname != NULL ? tle->resname : "col",
							  tle->ressortgroupref, true);
		}
		if (query->limitCount != NULL && query->limitOffset != NULL)
		{
			Oid			plus = OpernameGetOprid(list_make1(makeString("+")), INT8OID, INT8OID);

			worker->limitCount = (Node *) make_opclause(plus, INT8OID, false,
											   (Expr *) copyObject(query->limitCount),
											   (Expr *) copyObject(query->limitOffset),
											   InvalidOid, InvalidOid);
			set_opfuncid((OpExpr *) worker->limitCount);
		}
		worker->limitOffset = NULL;
		/*
		 * The shards sort too (a top-N with LIMIT; DISTINCT ON keeps the
		 * first row by ORDER BY), so the coordinator merges sorted streams
		 * instead of sorting them all.
		 */
	}
	else
	{
		bool		combinable = !query->hasWindowFuncs && query->hasAggs &&
			!contains_sublink_or_srf((Node *) query->targetList) &&
			!contains_sublink_or_srf(query->havingQual);

		(void) collect_aggrefs((Node *) query->targetList, &aggrefs);
		(void) collect_aggrefs(query->havingQual, &aggrefs);
		foreach(lc, query->sortClause)
			(void) collect_aggrefs((Node *) get_sortgroupclause_expr(lfirst(lc), query->targetList),
								   &aggrefs);

		worker->targetList = NIL;
		worker->sortClause = NIL;
		worker->distinctClause = NIL;
		worker->hasDistinctOn = false;
		worker->limitCount = NULL;
		worker->limitOffset = NULL;
		worker->limitOption = LIMIT_OPTION_DEFAULT;
		worker->havingQual = NULL;
		worker->windowClause = NIL;
		worker->hasWindowFuncs = false;

		if (combinable)
		{
			/* grouping expressions, then partial aggregates */
			mode = WORKER_PARTIAL_AGGREGATES;
			foreach(lc, query->groupClause)
			{
				SortGroupClause *sgc = lfirst(lc);

				add_worker_column(&split, (Expr *) get_sortgroupclause_expr(sgc, query->targetList),
								  "group", sgc->tleSortGroupRef, true);
			}
			foreach(lc, aggrefs)
			{
				if (!combine_aggregate(&split, lfirst(lc)))
				{
					combinable = false;
					break;
				}
			}
		}

		if (!combinable)
		{
			/* only the columns the coordinator needs */
			List	   *vars;

			mode = WORKER_COLUMNS;
			split.ncolumns = 0;
			split.substitutions = NIL;
			worker->targetList = NIL;
			worker->groupClause = NIL;
			worker->hasAggs = false;
			vars = pull_var_clause((Node *) query->targetList,
								   PVC_RECURSE_AGGREGATES | PVC_RECURSE_WINDOWFUNCS |
								   PVC_RECURSE_PLACEHOLDERS);
			vars = list_concat(vars, pull_var_clause(query->havingQual,
													 PVC_RECURSE_AGGREGATES |
													 PVC_RECURSE_WINDOWFUNCS |
													 PVC_RECURSE_PLACEHOLDERS));
			foreach(lc, vars)
			{
				Var		   *var = lfirst(lc);
				ListCell   *prev;
				bool		seen = false;

				foreach(prev, worker->targetList)
				{
					if (equal(((TargetEntry *) lfirst(prev))->expr, var))
						seen = true;
				}
				if (!seen)
					add_worker_column(&split, (Expr *) var, "col", 0, true);
			}

			/*
			 * When no aggregate cares how often a value occurs (DISTINCT
			 * aggregates, min, max, bool and bit aggregates, plain
			 * grouping), each shard sends every combination of values once.
			 */
			if (!query->hasWindowFuncs && duplicates_irrelevant(aggrefs) &&
				worker->targetList != NIL)
				group_by_every_column(worker);
		}
	}

	/* the master query, planned by the standard planner */
	id = list_length(pendingRemoteScans);
	masterSql = build_master_sql(&split, mode, id, failure);
	if (masterSql == NULL)
		return NULL;

	(void) collect_param_types((Node *) query, &paramTypes);
	if (paramTypes != NIL)
	{
		paramTypeArray = palloc(sizeof(Oid) * list_length(paramTypes));
		i = 0;
		foreach(lc, paramTypes)
			paramTypeArray[i++] = lfirst_oid(lc);
	}

	parsetrees = raw_parser(masterSql, RAW_PARSE_DEFAULT);
	masterQuery = parse_analyze_fixedparams(linitial_node(RawStmt, parsetrees), masterSql,
											paramTypeArray, list_length(paramTypes), NULL);
	masterQuery->canSetTag = parse->canSetTag;
	masterQuery->queryId = parse->queryId;

	pending = palloc0(sizeof(PendingRemoteScan));
	pending->workerQuery = worker;
	pending->anchorRelid = analysis->anchorRelid;
	pending->shardIndexes = analysis->shardIndexes;
	pending->sorted = mode == WORKER_FULL && query->sortClause != NIL &&
		query->distinctClause == NIL;
	pendingRemoteScans = lappend(pendingRemoteScans, pending);

	PG_TRY();
	{
		result = standard_planner(masterQuery, masterSql, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		pendingRemoteScans = NIL;
	}
	PG_END_TRY();

	/* the distributed tables: permissions, locks and plan invalidation */
	(void) FlattenRelationRtes((Node *) parse, &flatRtable);
	result->rtable = list_concat(result->rtable, flatRtable);
	foreach(lc, analysis->relationOids)
		result->relationOids = list_append_unique_oid(result->relationOids, lfirst_oid(lc));
	result->stmt_location = parse->stmt_location;
	result->stmt_len = parse->stmt_len;
	return result;
}

/*
 * LookupPendingRemoteScan finds the worker query of placeholder id while
 * the coordinator query is being planned; false if there is none.
 */
bool
LookupPendingRemoteScan(int id, Query **workerQuery, Oid *anchorRelid,
						List **shardIndexes, bool *sorted)
{
	PendingRemoteScan *pending;

	if (id < 0 || id >= list_length(pendingRemoteScans))
		return false;
	pending = list_nth(pendingRemoteScans, id);
	*workerQuery = pending->workerQuery;
	*anchorRelid = pending->anchorRelid;
	*shardIndexes = pending->shardIndexes;
	*sorted = pending->sorted;
	return true;
}
