/*-------------------------------------------------------------------------
 *
 * planner.c
 *		  The planner hooks: which queries touch distributed tables, and
 *		  which plan they get.
 *
 * planner_hook: a query that touches no distributed or reference table
 * goes to the standard planner untouched (one walk over its range
 * tables, one cached hash lookup per relation).  Otherwise, in order:
 *  - SELECT pinned to one shard group (router.c): the whole query goes to
 *    one node (distributed_scan.c), without running the standard planner;
 *  - SELECT over co-partitioned tables: a worker query per shard group
 *    and a coordinator query that merges them (multi_shard.c);
 *  - UPDATE and DELETE: pushed down to the shard group, every shard group
 *    or every copy of a reference table, or refused;
 *  - INSERT: as INSERT statements on the shards (insert_planner.c), else
 *    the standard planner plans it and its ModifyTable is replaced by the
 *    ShardexecInsert scan that routes the rows with COPY (shard_modify.c);
 *  - anything else is the pull plan: the standard planner plans the query
 *    and set_rel_pathlist_hook gives every distributed relation a
 *    ShardexecScan path that reads its shards (shard_scan.c), so any
 *    query is answered correctly by local execution over the shards'
 *    rows.  What the pull plan cannot do (row locks over several shards,
 *    MERGE, modifications in WITH) is refused with a clear error, never
 *    run against the empty local shell.
 *
 * set_rel_pathlist_hook also replaces the placeholder function
 * shardexec.remote_scan() of a multi-shard coordinator query by the scan
 * of the shards.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/nodeFuncs.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"

#include "shardexec/executor.h"
#include "shardexec/metadata.h"
#include "shardexec/planner.h"
#include "shardexec/shardexec.h"

static planner_hook_type prev_planner_hook = NULL;
static set_rel_pathlist_hook_type prev_set_rel_pathlist_hook = NULL;

static PlannedStmt *shardexec_planner(Query *parse, const char *query_string,
									  int cursorOptions,
									  ParamListInfo boundParams);
static void shardexec_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel,
									   Index rti, RangeTblEntry *rte);
static bool find_distributed_tables(Node *node, void *context);
static PlannedStmt *plan_distributed_insert(PlannedStmt *result, Query *parse);
static PlannedStmt *plan_distributed_modify(Query *parse);

/* what find_distributed_tables found */
typedef struct DistributedQueryInfo
{
	bool		touches;		/* some RTE is a distributed table */
	bool		check;			/* refuse what the pull plan cannot do */
	int			depth;			/* 0 for the top-level query */
} DistributedQueryInfo;

/*
 * InitPlannerHooks installs the planner hooks, chained to the previous
 * ones.  Called once from _PG_init.
 */
void
InitPlannerHooks(void)
{
	prev_planner_hook = planner_hook;
	planner_hook = shardexec_planner;
	prev_set_rel_pathlist_hook = set_rel_pathlist_hook;
	set_rel_pathlist_hook = shardexec_set_rel_pathlist;
}

/*
 * check_query_level refuses what one query level may not do to a
 * distributed table.
 */
static void
check_query_level(Query *query, DistributedQueryInfo *info)
{
	ListCell   *lc;

	if (query->resultRelation > 0 &&
		(query->commandType == CMD_UPDATE || query->commandType == CMD_DELETE ||
		 query->commandType == CMD_INSERT || query->commandType == CMD_MERGE))
	{
		RangeTblEntry *target = rt_fetch(query->resultRelation, query->rtable);

		if (IsDistributedTable(target->relid))
		{
			const char *command = query->commandType == CMD_UPDATE ? "UPDATE" :
				query->commandType == CMD_DELETE ? "DELETE" :
				query->commandType == CMD_MERGE ? "MERGE" : "INSERT";

			if (query->commandType != CMD_INSERT && (info->depth > 0 ||
													 query->commandType == CMD_MERGE))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("%s on distributed table \"%s\" is not supported %s",
								command, get_rel_name(target->relid),
								info->depth > 0 ? "within a WITH clause" : "yet")));
			if (info->depth > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("INSERT into distributed table \"%s\" within a WITH clause is not supported yet",
								get_rel_name(target->relid))));
			if (query->onConflict != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("INSERT ... ON CONFLICT into distributed table \"%s\" is not supported yet",
								get_rel_name(target->relid))));
		}
	}

	foreach(lc, query->rowMarks)
	{
		RowMarkClause *rc = lfirst(lc);
		RangeTblEntry *rte = rt_fetch(rc->rti, query->rtable);

		if (rte->rtekind == RTE_RELATION && IsDistributedTable(rte->relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("row locks on distributed table \"%s\" are not supported yet",
							get_rel_name(rte->relid))));
	}
}

/*
 * find_distributed_tables walks a query tree, sets info->touches if any
 * relation is a distributed or reference table, and checks each query
 * level that has one.
 */
static bool
find_distributed_tables(Node *node, void *context)
{
	DistributedQueryInfo *info = (DistributedQueryInfo *) context;

	if (node == NULL)
		return false;

	if (IsA(node, Query))
	{
		Query	   *query = (Query *) node;
		ListCell   *lc;
		bool		levelTouches = false;
		bool		result;

		foreach(lc, query->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind == RTE_RELATION && IsDistributedTable(rte->relid))
				levelTouches = true;
		}
		if (levelTouches)
		{
			info->touches = true;
			if (info->check)
				check_query_level(query, info);
		}

		info->depth++;
		result = query_tree_walker(query, find_distributed_tables, context, 0);
		info->depth--;
		return result;
	}

	return expression_tree_walker(node, find_distributed_tables, context);
}

/*
 * shardexec_planner is the planner hook.
 */
static PlannedStmt *
shardexec_planner(Query *parse, const char *query_string, int cursorOptions,
				  ParamListInfo boundParams)
{
	DistributedQueryInfo info = {false, false, 0};
	PlannedStmt *result;

	if (ShardexecExtensionLoaded() && parse->commandType != CMD_UTILITY)
	{
		/* the top level is depth 0, the queries inside it deeper */
		info.depth = 0;
		(void) find_distributed_tables((Node *) parse, &info);
	}

	if (info.touches && parse->commandType == CMD_SELECT && ShardexecEnablePushdown)
	{
		RouterAnalysis analysis;
		const char *failure = NULL;

		AnalyzeRouterQuery(parse, &analysis);
		if (analysis.isRouter && ShardQueryIsShippable(parse, &failure))
		{
			result = CreateRouterPlan(parse, &analysis);
			if (cursorOptions & CURSOR_OPT_SCROLL)
				result->planTree = materialize_finished_plan(result->planTree);
			return result;
		}
		result = PlanMultiShardQuery(parse, cursorOptions, boundParams, &analysis, &failure);
		if (result != NULL)
			return result;
	}

	if (info.touches &&
		(parse->commandType == CMD_UPDATE || parse->commandType == CMD_DELETE) &&
		IsDistributedTable(rt_fetch(parse->resultRelation, parse->rtable)->relid))
		return plan_distributed_modify(parse);

	if (info.touches && parse->commandType == CMD_INSERT &&
		IsDistributedTable(rt_fetch(parse->resultRelation, parse->rtable)->relid))
	{
		const char *failure = NULL;

		result = PlanDistributedInsert(parse, &failure);
		if (result != NULL)
			return result;
	}

	if (info.touches)
	{
		/* the pull plan: refuse what it cannot do */
		info.check = true;
		info.depth = 0;
		(void) find_distributed_tables((Node *) parse, &info);
	}

	if (prev_planner_hook)
		result = prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	else
		result = standard_planner(parse, query_string, cursorOptions, boundParams);

	if (info.touches && parse->commandType == CMD_INSERT &&
		IsDistributedTable(rt_fetch(parse->resultRelation, parse->rtable)->relid))
		result = plan_distributed_insert(result, parse);

	return result;
}

/*
 * plan_distributed_modify plans an UPDATE or DELETE of a distributed or
 * reference table: pushed down to its shard group, to every shard group
 * or to every copy of a reference table; what cannot be pushed down is
 * refused, there is no local fallback for a write.
 */
static PlannedStmt *
plan_distributed_modify(Query *parse)
{
	RangeTblEntry *target = rt_fetch(parse->resultRelation, parse->rtable);
	DistTableEntry *entry = LookupDistTable(target->relid);
	const char *command = parse->commandType == CMD_UPDATE ? "UPDATE" : "DELETE";
	RouterAnalysis analysis;
	const char *failure = NULL;
	ListCell   *lc;

	if (parse->commandType == CMD_UPDATE && entry->kind == DIST_KIND_HASH)
	{
		foreach(lc, parse->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			if (!tle->resjunk && tle->resno == entry->distAttnum)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot update distribution column \"%s\" of table \"%s\"",
								get_attname(target->relid, entry->distAttnum, false),
								get_rel_name(target->relid)),
						 errdetail("Changing the distribution column would move the row to another shard."),
						 errhint("Delete the row and insert it with the new value.")));
		}
	}

	AnalyzeRouterQuery(parse, &analysis);
	if (!analysis.isPushable)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot run %s on table \"%s\"", command, get_rel_name(target->relid)),
				 errdetail("It cannot be sent to the nodes because %s.", analysis.reason)));
	if (!ShardQueryIsShippable(parse, &failure))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot run %s on table \"%s\"", command, get_rel_name(target->relid)),
				 errdetail("The statement cannot be sent to the nodes: %s.", failure)));

	if (entry->kind == DIST_KIND_REFERENCE)
	{
		if (!analysis.referenceOnly)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot run %s on reference table \"%s\" with data from distributed tables",
							command, get_rel_name(target->relid)),
					 errdetail("Every copy of a reference table must be changed the same way.")));
		analysis.anchorRelid = target->relid;
		return CreateDistributedPlan(parse, &analysis, DISTRIBUTED_ALL_COPIES);
	}
	if (analysis.isRouter)
		return CreateDistributedPlan(parse, &analysis, DISTRIBUTED_ROUTER);
	if (analysis.coPartitioned)
	{
		analysis.anchorRelid = target->relid;
		return CreateDistributedPlan(parse, &analysis, DISTRIBUTED_ALL_SHARDS);
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot run %s on table \"%s\"", command, get_rel_name(target->relid)),
			 errdetail("The distributed tables it reads are not joined on their distribution columns.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * plan_distributed_insert replaces the ModifyTable at the top of an
 * INSERT into a distributed table with the ShardexecInsert scan.
 */
static PlannedStmt *
plan_distributed_insert(PlannedStmt *result, Query *parse)
{
	ModifyTable *modify;
	Plan	   *sourcePlan;
	List	   *returningList = NIL;
	Index		resultRelation;

	if (!IsA(result->planTree, ModifyTable))
		elog(ERROR, "unexpected plan for INSERT into a distributed table");
	modify = (ModifyTable *) result->planTree;
	if (list_length(modify->resultRelations) != 1)
		elog(ERROR, "unexpected number of result relations");
	resultRelation = linitial_int(modify->resultRelations);
	sourcePlan = outerPlan(modify);
	if (modify->returningLists != NIL)
		returningList = linitial(modify->returningLists);

	result->planTree = CreateShardInsertPlan(sourcePlan, resultRelation, returningList,
											 rt_fetch(resultRelation, result->rtable)->relid);
	/* initPlans of the ModifyTable (e.g. scalar subqueries in VALUES) */
	result->planTree->initPlan = modify->plan.initPlan;
	return result;
}

/*
 * shardexec_set_rel_pathlist replaces the paths of a distributed
 * relation (its local shell is empty) with the scan of its shards.  The
 * relation may be a base relation or a member of an append relation (a
 * branch of a flattened UNION ALL; distributed tables have no
 * inheritance children), never left to scan the shell.
 */
static void
shardexec_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti,
						   RangeTblEntry *rte)
{
	int			remoteScanId;

	if (prev_set_rel_pathlist_hook)
		prev_set_rel_pathlist_hook(root, rel, rti, rte);

	if (IsRemoteScanFunction(rte, &remoteScanId))
	{
		Query	   *workerQuery;
		Oid			anchorRelid;
		List	   *shardIndexes;
		bool		sorted;

		if (!LookupPendingRemoteScan(remoteScanId, &workerQuery, &anchorRelid, &shardIndexes,
									 &sorted))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("shardexec.remote_scan() can only be used by shardexec itself")));
		rel->pathlist = NIL;
		rel->partial_pathlist = NIL;
		rel->consider_parallel = false;
		add_path(rel, (Path *) CreateMultiShardScanPath(root, rel, workerQuery, anchorRelid,
														shardIndexes, sorted));
		return;
	}

	if (rte->rtekind != RTE_RELATION ||
		(rel->reloptkind != RELOPT_BASEREL &&
		 rel->reloptkind != RELOPT_OTHER_MEMBER_REL) ||
		!IsDistributedTable(rte->relid))
		return;

	rel->pathlist = NIL;
	rel->partial_pathlist = NIL;
	rel->consider_parallel = false;
	add_path(rel, (Path *) CreateShardScanPath(root, rel, rte));
}
