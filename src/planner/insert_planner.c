/*-------------------------------------------------------------------------
 *
 * insert_planner.c
 *		  INSERT pushed down as INSERT statements on the shards.
 *
 * Two shapes of INSERT into a distributed or reference table run as
 * statements on the shards, which is what ON CONFLICT and RETURNING of
 * values computed on the node need:
 *
 *  - INSERT ... VALUES (one row or many): at execution every value is
 *    evaluated once on the coordinator, in row order (defaults, sequences
 *    and identities included, so they are unique across shards), the
 *    rows are grouped by the shard their distribution value hashes to,
 *    and each shard gets one INSERT with its rows.  All shards run in
 *    parallel.
 *  - INSERT ... SELECT whose source is co-partitioned with the target
 *    (colocated, and the target's distribution column taken from the
 *    source's): each shard group inserts from its own rows, shard to
 *    shard, without the rows passing through the coordinator.
 *
 * Everything else (INSERT ... SELECT from other tables) returns NULL
 * here and takes the ShardexecInsert path, which pulls the rows and
 * routes them with COPY; ON CONFLICT there is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"

#include "shardexec/metadata.h"
#include "shardexec/planner.h"

static bool contains_sublink(Node *node);
static Node *null_out_values(Node *node, Query *query);

static bool
contains_sublink_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
		return true;
	return expression_tree_walker(node, contains_sublink_walker, context);
}

static bool
contains_sublink(Node *node)
{
	return contains_sublink_walker(node, NULL);
}

/*
 * null_out_values returns a copy of an INSERT ... VALUES query whose
 * values are NULL constants: they are evaluated on the coordinator, so
 * only the rest of the statement must be shippable.
 */
static Node *
null_out_values(Node *node, Query *query)
{
	Query	   *copy = copyObject(query);
	ListCell   *lc;

	(void) node;
	if (copy->jointree->fromlist == NIL)
	{
		foreach(lc, copy->targetList)
		{
			TargetEntry *tle = lfirst(lc);
			Node	   *expr = (Node *) tle->expr;

			tle->expr = (Expr *) makeNullConst(exprType(expr), exprTypmod(expr),
											   exprCollation(expr));
		}
	}
	else
	{
		RangeTblEntry *values = rt_fetch(linitial_node(RangeTblRef, copy->jointree->fromlist)->rtindex,
										 copy->rtable);
		ListCell   *row;

		foreach(row, values->values_lists)
		{
			foreach(lc, (List *) lfirst(row))
			{
				Node	   *expr = lfirst(lc);

				lfirst(lc) = makeNullConst(exprType(expr), exprTypmod(expr),
										   exprCollation(expr));
			}
		}
	}
	return (Node *) copy;
}

/*
 * values_source says whether an INSERT's rows come from a VALUES list
 * (or a single row) that references nothing but itself.
 */
static bool
values_source(Query *parse)
{
	RangeTblEntry *rte;

	if (parse->jointree->fromlist == NIL)
		return !contains_sublink((Node *) parse->targetList);
	if (list_length(parse->jointree->fromlist) != 1 ||
		!IsA(linitial(parse->jointree->fromlist), RangeTblRef))
		return false;
	rte = rt_fetch(linitial_node(RangeTblRef, parse->jointree->fromlist)->rtindex, parse->rtable);
	return rte->rtekind == RTE_VALUES && !contains_sublink((Node *) rte->values_lists) &&
		!contain_vars_of_level((Node *) rte->values_lists, 1);
}

/*
 * PlanDistributedInsert returns the plan of an INSERT into a distributed
 * or reference table that can run as INSERT statements on the shards, or
 * NULL (with *failure) when it must take the routing path.
 */
PlannedStmt *
PlanDistributedInsert(Query *parse, const char **failure)
{
	RangeTblEntry *target = rt_fetch(parse->resultRelation, parse->rtable);
	DistTableEntry *entry = LookupDistTable(target->relid);
	RouterAnalysis analysis;
	ListCell   *lc;

	*failure = NULL;
	if (parse->hasModifyingCTE || parse->cteList != NIL)
	{
		*failure = "the INSERT has a WITH clause";
		return NULL;
	}

	/* ON CONFLICT DO UPDATE must not move the row */
	if (parse->onConflict != NULL && entry->kind == DIST_KIND_HASH)
	{
		foreach(lc, parse->onConflict->onConflictSet)
		{
			TargetEntry *tle = lfirst(lc);

			if (!tle->resjunk && tle->resno == entry->distAttnum)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot update distribution column \"%s\" of table \"%s\"",
								get_attname(target->relid, entry->distAttnum, false),
								get_rel_name(target->relid)),
						 errdetail("Changing the distribution column would move the row to another shard.")));
		}
	}

	memset(&analysis, 0, sizeof(analysis));
	analysis.anchorRelid = target->relid;
	analysis.relationOids = list_make1_oid(target->relid);

	if (values_source(parse))
	{
		if (!ShardQueryIsShippable((Query *) null_out_values(NULL, parse), failure))
			return NULL;
		return CreateDistributedPlan(parse, &analysis, DISTRIBUTED_INSERT_VALUES);
	}

	/* INSERT ... SELECT: is the source co-partitioned with the target? */
	if (list_length(parse->jointree->fromlist) == 1 &&
		IsA(linitial(parse->jointree->fromlist), RangeTblRef))
	{
		RangeTblEntry *source = rt_fetch(linitial_node(RangeTblRef, parse->jointree->fromlist)->rtindex,
										 parse->rtable);
		RouterAnalysis sourceAnalysis;
		Query	   *subquery;
		TargetEntry *distTle = NULL;
		TargetEntry *sourceTle;
		Var		   *var;
		bool		fromDist = false;

		if (source->rtekind != RTE_SUBQUERY)
		{
			*failure = "the INSERT reads no subquery";
			return NULL;
		}
		subquery = source->subquery;
		AnalyzeRouterQuery(subquery, &sourceAnalysis);
		if (!sourceAnalysis.isPushable || !ShardQueryIsShippable(parse, failure))
		{
			if (*failure == NULL)
				*failure = sourceAnalysis.reason;
			return NULL;
		}

		if (entry->kind == DIST_KIND_REFERENCE)
		{
			/* a reference table from reference tables: every copy */
			if (!sourceAnalysis.referenceOnly)
			{
				*failure = "a reference table is filled from distributed tables";
				return NULL;
			}
			return CreateDistributedPlan(parse, &analysis, DISTRIBUTED_ALL_COPIES);
		}

		if (!sourceAnalysis.coPartitioned || sourceAnalysis.referenceOnly ||
			LookupDistTable(sourceAnalysis.anchorRelid)->colocationId != entry->colocationId ||
			subquery->limitCount != NULL || subquery->limitOffset != NULL ||
			subquery->setOperations != NULL || subquery->hasWindowFuncs ||
			subquery->hasTargetSRFs)
		{
			*failure = "the source is not co-partitioned with the target";
			return NULL;
		}

		/* the target's distribution column must be the source's */
		foreach(lc, parse->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			if (tle->resno == entry->distAttnum)
				distTle = tle;
		}
		if (distTle == NULL)
		{
			*failure = "the INSERT gives no distribution value";
			return NULL;
		}
		var = (Var *) strip_implicit_coercions((Node *) distTle->expr);
		if (IsA(var, Var) && var->varlevelsup == 0 &&
			(sourceTle = get_tle_by_resno(subquery->targetList, var->varattno)) != NULL)
		{
			Node	   *expr = strip_implicit_coercions((Node *) sourceTle->expr);
			ListCell   *dc;

			foreach(dc, sourceAnalysis.distColumns)
			{
				Var		   *dist = lfirst(dc);

				if (IsA(expr, Var) && ((Var *) expr)->varlevelsup == 0 &&
					((Var *) expr)->varno == dist->varno &&
					((Var *) expr)->varattno == dist->varattno &&
					exprType(expr) == entry->distType)
					fromDist = true;
			}
		}
		if (!fromDist)
		{
			*failure = "the target's distribution column is not the source's";
			return NULL;
		}
		/* grouped sources must group by the distribution column */
		if (subquery->hasAggs || subquery->groupClause != NIL || subquery->distinctClause != NIL)
		{
			bool		grouped = false;

			foreach(lc, list_concat_copy(subquery->groupClause, subquery->distinctClause))
			{
				Node	   *expr = strip_implicit_coercions((Node *) get_sortgroupclause_expr(lfirst(lc),
																					 subquery->targetList));
				ListCell   *dc;

				foreach(dc, sourceAnalysis.distColumns)
				{
					Var		   *dist = lfirst(dc);

					if (IsA(expr, Var) && ((Var *) expr)->varlevelsup == 0 &&
						((Var *) expr)->varno == dist->varno &&
						((Var *) expr)->varattno == dist->varattno)
						grouped = true;
				}
			}
			if (!grouped)
			{
				*failure = "the source groups rows across shards";
				return NULL;
			}
		}

		analysis.relationOids = list_concat(analysis.relationOids, sourceAnalysis.relationOids);
		return CreateDistributedPlan(parse, &analysis, DISTRIBUTED_ALL_SHARDS);
	}

	*failure = "the INSERT's source has several FROM items";
	return NULL;
}
