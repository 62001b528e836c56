/*-------------------------------------------------------------------------
 *
 * deparse_query.c
 *		  Writes a query tree back as SQL for one shard group.
 *
 * The router and multi-shard planners send (parts of) the user's query to
 * the nodes.  This file turns an analyzed Query back into SQL in which
 * every distributed table is replaced by its shard of a given index and
 * every reference table by its single shard.  It is also the judge of
 * what may be shipped: it returns NULL, with a reason, as soon as it
 * meets something a node might not have or might evaluate differently
 * (a local table, a user-defined function, operator, aggregate or
 * collation, a volatile function, a construct it does not know), and the
 * planner then falls back to pulling rows.  There is thus one place that
 * decides shippability and writes SQL, and they cannot disagree.
 *
 * The SQL does not depend on the node's search_path: functions,
 * non-pg_catalog operators, types and collations are schema-qualified,
 * identifiers and literals quoted.  Every range table entry of every
 * query level gets a unique alias r<n>; a subquery, VALUES list or
 * function in FROM gets column aliases c1..cn, so that column references
 * never depend on names the user chose.  Join RTE references are
 * expanded to the underlying columns, and joins are printed without
 * aliases, so those columns stay visible.
 *
 * Stable functions without column references and parameters are not
 * expected here: DeparseShardQuery's callers first fold them on the
 * coordinator (EvaluateCoordinatorExpressions), so that now() or a
 * prepared statement's $1 mean on the nodes what they mean locally.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_language.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "shardexec/connection.h"
#include "shardexec/fdw.h"
#include "shardexec/metadata.h"
#include "shardexec/planner.h"

/* one query level being deparsed */
typedef struct DeparseLevel
{
	Query	   *query;
	int		   *aliases;		/* alias number of each RTE, by rtindex - 1 */
	struct DeparseLevel *parent;
} DeparseLevel;

typedef struct DeparseContext
{
	StringInfo	buf;
	DeparseLevel *level;
	int			shardIndex;		/* which shard of each distributed table */
	int			nextAlias;
	bool		checkOnly;		/* planning: parameters are not resolved yet */
	bool		keepParams;		/* write external parameters as $n */
	bool		master;			/* coordinator query: columns only through substitutions */
	List	   *substitutions;	/* pairs: expression, text to print instead */
	const char *failure;		/* why the query cannot be shipped, or NULL */
} DeparseContext;

/* an open deparse of coordinator-side expressions of one query */
struct MasterDeparse
{
	DeparseContext context;
};

static void deparse_query(Query *query, DeparseContext *context,
						  bool includeJunk, List *outputNames);
static void deparse_select_body(Query *query, DeparseContext *context,
								bool includeJunk);
static void deparse_modify_body(Query *query, DeparseContext *context);
static void deparse_insert_body(Query *query, DeparseContext *context);
static void deparse_returning(Query *query, DeparseContext *context);
static char *collation_name(Oid collid);
static void deparse_set_operation(Node *node, Query *query,
								  DeparseContext *context);
static void deparse_from_item(Node *node, DeparseContext *context);
static void deparse_rte(int rtindex, DeparseContext *context);
static void deparse_expr(Node *node, DeparseContext *context);
static void deparse_expr_list(List *exprs, DeparseContext *context);
static void deparse_sort_clause(List *sortClause, List *targetList,
								DeparseContext *context);
static void deparse_window_spec(WindowClause *wc, List *targetList,
								DeparseContext *context);
static void deparse_const(Const *constant, DeparseContext *context);
static void deparse_cast(Node *arg, Oid type, int32 typmod, DeparseContext *context);
static void deparse_type(Oid typid, int32 typmod, DeparseContext *context);
static void deparse_function_name(Oid funcid, DeparseContext *context);
static void deparse_operator_name(Oid opno, DeparseContext *context);
static void deparse_var(Var *var, DeparseContext *context);
static bool check_function(Oid funcid, DeparseContext *context);
static bool check_collation(Oid collid, DeparseContext *context);
static int	count_output_columns(Query *query);

#define FAIL(context, why) \
	do { if ((context)->failure == NULL) (context)->failure = (why); return; } while (0)

#define SETTINGS_FAILURE \
	"the query computes a value from its rows that depends on the session's settings"

/*
 * ShardQueryIsShippable says whether DeparseShardQuery will be able to
 * write query once its parameters and stable functions are folded; if
 * not, *failure says why.
 */
bool
ShardQueryIsShippable(Query *query, const char **failure)
{
	StringInfoData buf;
	DeparseContext context;

	initStringInfo(&buf);
	memset(&context, 0, sizeof(context));
	context.buf = &buf;
	context.shardIndex = 0;
	context.nextAlias = 1;
	context.checkOnly = true;

	deparse_query(query, &context, true, NIL);
	pfree(buf.data);
	*failure = context.failure;
	return context.failure == NULL;
}

/*
 * DeparseShardQuery returns the SQL of query for shard group shardIndex,
 * or NULL (with *failure set, if given) when the query cannot be shipped
 * to the nodes.  With includeJunk, the select list includes the query's
 * resjunk columns too, so the result has one column per target list
 * entry.  query is not modified.
 */
char *
DeparseShardQuery(Query *query, int shardIndex, bool includeJunk,
				  const char **failure)
{
	return DeparseShardQueryWithParams(query, shardIndex, includeJunk, false, failure);
}

/*
 * DeparseShardQueryWithParams is DeparseShardQuery that, with keepParams,
 * writes external parameters as $n for the caller to send with the
 * statement, instead of failing on them.
 */
char *
DeparseShardQueryWithParams(Query *query, int shardIndex, bool includeJunk,
							bool keepParams, const char **failure)
{
	StringInfoData buf;
	DeparseContext context;

	initStringInfo(&buf);
	memset(&context, 0, sizeof(context));
	context.buf = &buf;
	context.shardIndex = shardIndex;
	context.nextAlias = 1;
	context.keepParams = keepParams;

	deparse_query(query, &context, includeJunk, NIL);

	if (failure != NULL)
		*failure = context.failure;
	if (context.failure != NULL)
	{
		pfree(buf.data);
		return NULL;
	}
	return buf.data;
}

/*
 * push_level makes query the current level, numbering its RTEs.
 */
static void
push_level(Query *query, DeparseContext *context)
{
	DeparseLevel *level = palloc0(sizeof(DeparseLevel));
	int			n = list_length(query->rtable);
	int			i;

	level->query = query;
	level->aliases = palloc0(sizeof(int) * Max(n, 1));
	for (i = 0; i < n; i++)
		level->aliases[i] = context->nextAlias++;
	level->parent = context->level;
	context->level = level;
}

static void
pop_level(DeparseContext *context)
{
	context->level = context->level->parent;
}

/*
 * deparse_query writes a whole query: WITH clause, body, ORDER BY,
 * LIMIT and row locks.
 */
static void
deparse_query(Query *query, DeparseContext *context, bool includeJunk,
			  List *outputNames)
{
	StringInfo	buf = context->buf;
	ListCell   *lc;

	if (query->utilityStmt != NULL ||
		(query->commandType != CMD_SELECT &&
		 !(context->level == NULL &&
		   (query->commandType == CMD_UPDATE || query->commandType == CMD_DELETE ||
			query->commandType == CMD_INSERT))))
		FAIL(context, "only SELECT, INSERT, UPDATE and DELETE statements can be pushed down");
	if (query->groupingSets != NIL)
		FAIL(context, "GROUPING SETS, ROLLUP and CUBE are not pushed down");
	if (query->hasTargetSRFs && query->hasAggs)
		FAIL(context, "set-returning functions with aggregates are not pushed down");

	push_level(query, context);

	if (query->cteList != NIL)
	{
		appendStringInfoString(buf, "WITH ");
		if (query->hasRecursive)
			appendStringInfoString(buf, "RECURSIVE ");
		foreach(lc, query->cteList)
		{
			CommonTableExpr *cte = lfirst(lc);
			Query	   *cteQuery = (Query *) cte->ctequery;
			int			ncols;
			int			i;

			if (!IsA(cteQuery, Query) || cteQuery->commandType != CMD_SELECT)
			{
				pop_level(context);
				FAIL(context, "data-modifying WITH queries are not pushed down");
			}
			if (lc != list_head(query->cteList))
				appendStringInfoString(buf, ", ");
			appendStringInfoString(buf, quote_identifier(cte->ctename));
			ncols = list_length(cte->ctecolnames);
			appendStringInfoChar(buf, '(');
			for (i = 1; i <= ncols; i++)
				appendStringInfo(buf, "%sc%d", i > 1 ? ", " : "", i);
			appendStringInfoString(buf, ") AS ");
			if (cte->ctematerialized == CTEMaterializeAlways)
				appendStringInfoString(buf, "MATERIALIZED ");
			else if (cte->ctematerialized == CTEMaterializeNever)
				appendStringInfoString(buf, "NOT MATERIALIZED ");
			appendStringInfoChar(buf, '(');
			deparse_query(cteQuery, context, false, NIL);
			appendStringInfoChar(buf, ')');
			if (cte->search_clause != NULL || cte->cycle_clause != NULL)
			{
				pop_level(context);
				FAIL(context, "SEARCH and CYCLE clauses are not pushed down");
			}
		}
		appendStringInfoChar(buf, ' ');
	}

	if (query->commandType == CMD_INSERT)
		deparse_insert_body(query, context);
	else if (query->commandType != CMD_SELECT)
		deparse_modify_body(query, context);
	else if (query->setOperations != NULL)
	{
		deparse_set_operation(query->setOperations, query, context);
		if (query->sortClause != NIL)
		{
			/* set operation output is referenced by position */
			appendStringInfoString(buf, " ORDER BY ");
			foreach(lc, query->sortClause)
			{
				SortGroupClause *sgc = lfirst(lc);
				TargetEntry *tle = get_sortgroupclause_tle(sgc, query->targetList);
				TypeCacheEntry *typentry;

				if (lc != list_head(query->sortClause))
					appendStringInfoString(buf, ", ");
				appendStringInfo(buf, "%d", tle->resno);
				typentry = lookup_type_cache(exprType((Node *) tle->expr),
											 TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);
				if (sgc->sortop == typentry->gt_opr)
					appendStringInfoString(buf, " DESC");
				else if (sgc->sortop != typentry->lt_opr)
				{
					appendStringInfoString(buf, " USING ");
					deparse_operator_name(sgc->sortop, context);
				}
				if (sgc->nulls_first != (sgc->sortop == typentry->gt_opr))
					appendStringInfoString(buf, sgc->nulls_first ? " NULLS FIRST" : " NULLS LAST");
			}
		}
	}
	else
	{
		deparse_select_body(query, context, includeJunk);
		if (query->sortClause != NIL)
		{
			appendStringInfoString(buf, " ORDER BY ");
			deparse_sort_clause(query->sortClause, query->targetList, context);
		}
	}

	if (query->limitOffset != NULL)
	{
		appendStringInfoString(buf, " OFFSET ");
		deparse_expr(query->limitOffset, context);
	}
	if (query->limitCount != NULL)
	{
		if (query->limitOption == LIMIT_OPTION_WITH_TIES)
		{
			appendStringInfoString(buf, " FETCH FIRST (");
			deparse_expr(query->limitCount, context);
			appendStringInfoString(buf, ") ROWS WITH TIES");
		}
		else
		{
			appendStringInfoString(buf, " LIMIT ");
			deparse_expr(query->limitCount, context);
		}
	}

	foreach(lc, query->rowMarks)
	{
		RowMarkClause *rc = lfirst(lc);

		switch (rc->strength)
		{
			case LCS_FORKEYSHARE:
				appendStringInfoString(buf, " FOR KEY SHARE");
				break;
			case LCS_FORSHARE:
				appendStringInfoString(buf, " FOR SHARE");
				break;
			case LCS_FORNOKEYUPDATE:
				appendStringInfoString(buf, " FOR NO KEY UPDATE");
				break;
			case LCS_FORUPDATE:
				appendStringInfoString(buf, " FOR UPDATE");
				break;
			default:
				break;
		}
		appendStringInfo(buf, " OF r%d", context->level->aliases[rc->rti - 1]);
		if (rc->waitPolicy == LockWaitSkip)
			appendStringInfoString(buf, " SKIP LOCKED");
		else if (rc->waitPolicy == LockWaitError)
			appendStringInfoString(buf, " NOWAIT");
	}

	pop_level(context);
}

/*
 * deparse_select_body writes SELECT ... FROM ... WHERE ... GROUP BY ...
 * HAVING of a query without set operations.
 */
static void
deparse_select_body(Query *query, DeparseContext *context, bool includeJunk)
{
	StringInfo	buf = context->buf;
	ListCell   *lc;
	bool		first = true;
	int			column = 0;

	appendStringInfoString(buf, "SELECT ");
	if (query->distinctClause != NIL)
	{
		if (query->hasDistinctOn)
		{
			appendStringInfoString(buf, "DISTINCT ON (");
			foreach(lc, query->distinctClause)
			{
				SortGroupClause *sgc = lfirst(lc);

				if (lc != list_head(query->distinctClause))
					appendStringInfoString(buf, ", ");
				deparse_expr((Node *) get_sortgroupclause_expr(sgc, query->targetList),
							 context);
			}
			appendStringInfoString(buf, ") ");
		}
		else
			appendStringInfoString(buf, "DISTINCT ");
	}

	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk && !includeJunk)
			continue;
		/* the coordinator reads the results with the types' input functions */
		if (context->level->parent == NULL &&
			(exprType((Node *) tle->expr) == RECORDOID ||
			 exprType((Node *) tle->expr) == RECORDARRAYOID))
			FAIL(context, "the query returns values of an anonymous record type");
		if (!first)
			appendStringInfoString(buf, ", ");
		first = false;
		deparse_expr((Node *) tle->expr, context);
		appendStringInfo(buf, " AS c%d", ++column);
	}
	if (first)
	{
		/* SELECT with no columns is valid; keep it so */
	}

	if (query->jointree->fromlist != NIL)
	{
		appendStringInfoString(buf, " FROM ");
		foreach(lc, query->jointree->fromlist)
		{
			if (lc != list_head(query->jointree->fromlist))
				appendStringInfoString(buf, ", ");
			deparse_from_item(lfirst(lc), context);
		}
	}

	if (query->jointree->quals != NULL)
	{
		appendStringInfoString(buf, " WHERE ");
		deparse_expr(query->jointree->quals, context);
	}

	if (query->groupClause != NIL)
	{
		appendStringInfoString(buf, " GROUP BY ");
		if (query->groupDistinct)
			appendStringInfoString(buf, "DISTINCT ");
		foreach(lc, query->groupClause)
		{
			SortGroupClause *sgc = lfirst(lc);
			Node	   *expr = (Node *) get_sortgroupclause_expr(sgc, query->targetList);

			if (lc != list_head(query->groupClause))
				appendStringInfoString(buf, ", ");
			/* a constant would be read as an output column position */
			if (IsA(expr, Const))
			{
				appendStringInfoChar(buf, '(');
				deparse_expr(expr, context);
				appendStringInfoChar(buf, ')');
			}
			else
				deparse_expr(expr, context);
		}
	}

	if (query->havingQual != NULL)
	{
		appendStringInfoString(buf, " HAVING ");
		deparse_expr(query->havingQual, context);
	}
}

/*
 * deparse_modify_body writes an UPDATE or DELETE of the query's result
 * relation (its shard), with the other FROM items, WHERE and RETURNING.
 */
static void
deparse_modify_body(Query *query, DeparseContext *context)
{
	StringInfo	buf = context->buf;
	ListCell   *lc;
	bool		first = true;
	
	if (query->commandType == CMD_UPDATE)
	{
		RangeTblEntry *target = rt_fetch(query->resultRelation, query->rtable);

		appendStringInfoString(buf, "UPDATE ");
		deparse_rte(query->resultRelation, context);
		appendStringInfoString(buf, " SET ");
		foreach(lc, query->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			if (tle->resjunk)
				continue;
			if (!first)
				appendStringInfoString(buf, ", ");
			first = false;
			appendStringInfo(buf, "%s = ",
							 quote_identifier(get_attname(target->relid, tle->resno, false)));
			deparse_expr((Node *) tle->expr, context);
		}
	}
	else
	{
		appendStringInfoString(buf, "DELETE FROM ");
		deparse_rte(query->resultRelation, context);
	}

	first = true;
	foreach(lc, query->jointree->fromlist)
	{
		Node	   *item = lfirst(lc);

		if (IsA(item, RangeTblRef) && ((RangeTblRef *) item)->rtindex == query->resultRelation)
			continue;
		appendStringInfoString(buf, first ?
							   (query->commandType == CMD_UPDATE ? " FROM " : " USING ") : ", ");
		first = false;
		deparse_from_item(item, context);
	}

	if (query->jointree->quals != NULL)
	{
		appendStringInfoString(buf, " WHERE ");
		deparse_expr(query->jointree->quals, context);
	}

	deparse_returning(query, context);
}

/*
 * deparse_returning writes the RETURNING clause of a modification.
 */
static void
deparse_returning(Query *query, DeparseContext *context)
{
	StringInfo	buf = context->buf;
	ListCell   *lc;
	int			column = 0;

	if (query->returningList == NIL)
		return;
	appendStringInfoString(buf, " RETURNING ");
	foreach(lc, query->returningList)
	{
		TargetEntry *tle = lfirst(lc);

		if (lc != list_head(query->returningList))
			appendStringInfoString(buf, ", ");
		deparse_expr((Node *) tle->expr, context);
		appendStringInfo(buf, " AS c%d", ++column);
	}
}

/*
 * deparse_insert_body writes an INSERT into the result relation's shard:
 * the columns of the target list, its rows (VALUES for a single row,
 * else a SELECT over the query's FROM items), ON CONFLICT and RETURNING.
 */
static void
deparse_insert_body(Query *query, DeparseContext *context)
{
	StringInfo	buf = context->buf;
	RangeTblEntry *target = rt_fetch(query->resultRelation, query->rtable);
	OnConflictExpr *onConflict = query->onConflict;
	ListCell   *lc;
	bool		first = true;

	appendStringInfoString(buf, "INSERT INTO ");
	deparse_rte(query->resultRelation, context);
	/* deparse_rte wrote "shard rN": INSERT wants "shard AS rN" */
	appendStringInfoString(buf, " (");
	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		if (!first)
			appendStringInfoString(buf, ", ");
		first = false;
		appendStringInfoString(buf, quote_identifier(get_attname(target->relid, tle->resno, false)));
	}
	appendStringInfoChar(buf, ')');

	if (query->jointree->fromlist == NIL)
		appendStringInfoString(buf, " VALUES (");
	else
		appendStringInfoString(buf, " SELECT ");
	first = true;
	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		if (!first)
			appendStringInfoString(buf, ", ");
		first = false;
		deparse_expr((Node *) tle->expr, context);
	}
	if (query->jointree->fromlist == NIL)
		appendStringInfoChar(buf, ')');
	else
	{
		appendStringInfoString(buf, " FROM ");
		foreach(lc, query->jointree->fromlist)
		{
			if (lc != list_head(query->jointree->fromlist))
				appendStringInfoString(buf, ", ");
			deparse_from_item(lfirst(lc), context);
		}
		if (query->jointree->quals != NULL)
		{
			appendStringInfoString(buf, " WHERE ");
			deparse_expr(query->jointree->quals, context);
		}
	}

	if (onConflict != NULL)
	{
		appendStringInfoString(buf, " ON CONFLICT");
		if (OidIsValid(onConflict->constraint))
		{
			DistTableEntry *entry = LookupDistTable(target->relid);
			ShardInterval *shard = (entry->kind == DIST_KIND_REFERENCE) ?
				&entry->shards[0] : &entry->shards[context->shardIndex];

			appendStringInfo(buf, " ON CONSTRAINT %s",
							 quote_identifier(ShardObjectName(get_constraint_name(onConflict->constraint),
															  shard->shardId)));
		}
		else if (onConflict->arbiterElems != NIL)
		{
			appendStringInfoString(buf, " (");
			foreach(lc, onConflict->arbiterElems)
			{
				InferenceElem *elem = lfirst(lc);

				if (lc != list_head(onConflict->arbiterElems))
					appendStringInfoString(buf, ", ");
				/* an index column: its bare name; an expression in parentheses */
				if (IsA(elem->expr, Var))
					appendStringInfoString(buf,
										   quote_identifier(get_attname(target->relid,
																		((Var *) elem->expr)->varattno,
																		false)));
				else
				{
					appendStringInfoChar(buf, '(');
					deparse_expr(elem->expr, context);
					appendStringInfoChar(buf, ')');
				}
				if (OidIsValid(elem->infercollid))
					appendStringInfo(buf, " COLLATE %s", collation_name(elem->infercollid));
				if (OidIsValid(elem->inferopclass))
					FAIL(context, "ON CONFLICT with an operator class is not pushed down");
			}
			appendStringInfoChar(buf, ')');
			if (onConflict->arbiterWhere != NULL)
			{
				appendStringInfoString(buf, " WHERE ");
				deparse_expr(onConflict->arbiterWhere, context);
			}
		}
		if (onConflict->action == ONCONFLICT_NOTHING)
			appendStringInfoString(buf, " DO NOTHING");
		else
		{
			appendStringInfoString(buf, " DO UPDATE SET ");
			first = true;
			foreach(lc, onConflict->onConflictSet)
			{
				TargetEntry *tle = lfirst(lc);

				if (tle->resjunk)
					continue;
				if (!first)
					appendStringInfoString(buf, ", ");
				first = false;
				appendStringInfo(buf, "%s = ",
								 quote_identifier(get_attname(target->relid, tle->resno, false)));
				deparse_expr((Node *) tle->expr, context);
			}
			if (onConflict->onConflictWhere != NULL)
			{
				appendStringInfoString(buf, " WHERE ");
				deparse_expr(onConflict->onConflictWhere, context);
			}
		}
	}

	deparse_returning(query, context);
}

/*
 * deparse_set_operation writes a tree of UNION / INTERSECT / EXCEPT.
 */
static void
deparse_set_operation(Node *node, Query *query, DeparseContext *context)
{
	StringInfo	buf = context->buf;

	if (IsA(node, RangeTblRef))
	{
		RangeTblEntry *rte = rt_fetch(((RangeTblRef *) node)->rtindex, query->rtable);

		appendStringInfoChar(buf, '(');
		deparse_query(rte->subquery, context, false, NIL);
		appendStringInfoChar(buf, ')');
	}
	else if (IsA(node, SetOperationStmt))
	{
		SetOperationStmt *op = (SetOperationStmt *) node;

		appendStringInfoChar(buf, '(');
		deparse_set_operation(op->larg, query, context);
		switch (op->op)
		{
			case SETOP_UNION:
				appendStringInfoString(buf, " UNION ");
				break;
			case SETOP_INTERSECT:
				appendStringInfoString(buf, " INTERSECT ");
				break;
			case SETOP_EXCEPT:
				appendStringInfoString(buf, " EXCEPT ");
				break;
			default:
				FAIL(context, "unknown set operation");
		}
		if (op->all)
			appendStringInfoString(buf, "ALL ");
		deparse_set_operation(op->rarg, query, context);
		appendStringInfoChar(buf, ')');
	}
	else
		FAIL(context, "unknown set operation node");
}

/*
 * deparse_from_item writes one FROM item: a range table entry or a join.
 */
static void
deparse_from_item(Node *node, DeparseContext *context)
{
	StringInfo	buf = context->buf;

	if (IsA(node, RangeTblRef))
		deparse_rte(((RangeTblRef *) node)->rtindex, context);
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) node;

		appendStringInfoChar(buf, '(');
		deparse_from_item(join->larg, context);
		switch (join->jointype)
		{
			case JOIN_INNER:
				appendStringInfoString(buf, " JOIN ");
				break;
			case JOIN_LEFT:
				appendStringInfoString(buf, " LEFT JOIN ");
				break;
			case JOIN_RIGHT:
				appendStringInfoString(buf, " RIGHT JOIN ");
				break;
			case JOIN_FULL:
				appendStringInfoString(buf, " FULL JOIN ");
				break;
			default:
				FAIL(context, "unsupported join type");
		}
		deparse_from_item(join->rarg, context);
		appendStringInfoString(buf, " ON ");
		if (join->quals != NULL)
		{
			appendStringInfoChar(buf, '(');
			deparse_expr(join->quals, context);
			appendStringInfoChar(buf, ')');
		}
		else
			appendStringInfoString(buf, "true");
		appendStringInfoChar(buf, ')');
	}
	else if (IsA(node, FromExpr))
	{
		/* a parenthesised comma list */
		FromExpr   *from = (FromExpr *) node;
		ListCell   *lc;

		if (from->quals != NULL)
			FAIL(context, "unexpected qualified FROM list");
		appendStringInfoChar(buf, '(');
		foreach(lc, from->fromlist)
		{
			if (lc != list_head(from->fromlist))
				appendStringInfoString(buf, " CROSS JOIN ");
			deparse_from_item(lfirst(lc), context);
		}
		appendStringInfoChar(buf, ')');
	}
	else
		FAIL(context, "unsupported FROM item");
}

/*
 * deparse_column_aliases writes "(c1, ..., cn)".
 */
static void
deparse_column_aliases(int ncolumns, DeparseContext *context)
{
	int			i;

	appendStringInfoChar(context->buf, '(');
	for (i = 1; i <= ncolumns; i++)
		appendStringInfo(context->buf, "%sc%d", i > 1 ? ", " : "", i);
	appendStringInfoChar(context->buf, ')');
}

/*
 * deparse_rte writes the range table entry rtindex of the current level
 * with its alias.
 */
static void
deparse_rte(int rtindex, DeparseContext *context)
{
	StringInfo	buf = context->buf;
	Query	   *query = context->level->query;
	RangeTblEntry *rte = rt_fetch(rtindex, query->rtable);
	int			alias = context->level->aliases[rtindex - 1];

	if (rte->lateral)
		appendStringInfoString(buf, "LATERAL ");

	switch (rte->rtekind)
	{
		case RTE_RELATION:
			{
				DistTableEntry *entry = LookupDistTable(rte->relid);
				ShardInterval *shard;

				if (entry == NULL)
					FAIL(context, "the query reads a local table");
				if (rte->tablesample != NULL)
					FAIL(context, "TABLESAMPLE is not pushed down");
				shard = (entry->kind == DIST_KIND_REFERENCE) ? &entry->shards[0] :
					&entry->shards[context->shardIndex];
				appendStringInfo(buf, "%s %sr%d",
								 ShardQualifiedName(rte->relid, shard->shardId),
								 (query->commandType == CMD_INSERT &&
								  rtindex == query->resultRelation) ? "AS " : "",
								 alias);
				break;
			}
		case RTE_SUBQUERY:
			appendStringInfoChar(buf, '(');
			deparse_query(rte->subquery, context, false, NIL);
			appendStringInfo(buf, ") r%d", alias);
			deparse_column_aliases(count_output_columns(rte->subquery), context);
			break;
		case RTE_CTE:
			if (rte->self_reference && rte->ctelevelsup > 0)
			{
				/* fine: a recursive reference by name */
			}
			appendStringInfo(buf, "%s r%d", quote_identifier(rte->ctename), alias);
			break;
		case RTE_VALUES:
			{
				ListCell   *lc;

				appendStringInfoString(buf, "(VALUES ");
				foreach(lc, rte->values_lists)
				{
					if (lc != list_head(rte->values_lists))
						appendStringInfoString(buf, ", ");
					appendStringInfoChar(buf, '(');
					deparse_expr_list(lfirst(lc), context);
					appendStringInfoChar(buf, ')');
				}
				appendStringInfo(buf, ") r%d", alias);
				deparse_column_aliases(list_length(rte->eref->colnames), context);
				break;
			}
		case RTE_FUNCTION:
			{
				RangeTblFunction *rtfunc;

				if (list_length(rte->functions) != 1)
					FAIL(context, "ROWS FROM with several functions is not pushed down");
				rtfunc = linitial(rte->functions);
				if (rtfunc->funccolnames != NIL)
					FAIL(context, "functions with a column definition list are not pushed down");
				deparse_expr(rtfunc->funcexpr, context);
				if (rte->funcordinality)
					appendStringInfoString(buf, " WITH ORDINALITY");
				appendStringInfo(buf, " r%d", alias);
				deparse_column_aliases(list_length(rte->eref->colnames), context);
				break;
			}
		case RTE_RESULT:
			FAIL(context, "unexpected RESULT range table entry");
		default:
			FAIL(context, "unsupported range table entry");
	}
}

/*
 * count_output_columns returns the number of columns a subquery yields.
 */
static int
count_output_columns(Query *query)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, query->targetList)
	{
		if (!((TargetEntry *) lfirst(lc))->resjunk)
			n++;
	}
	return n;
}

/*
 * deparse_sort_clause writes the items of an ORDER BY.
 */
static void
deparse_sort_clause(List *sortClause, List *targetList, DeparseContext *context)
{
	StringInfo	buf = context->buf;
	ListCell   *lc;

	foreach(lc, sortClause)
	{
		SortGroupClause *sgc = lfirst(lc);
		Node	   *expr = (Node *) get_sortgroupclause_expr(sgc, targetList);
		TypeCacheEntry *typentry;
		bool		descending = false;

		if (lc != list_head(sortClause))
			appendStringInfoString(buf, ", ");
		if (IsA(expr, Const))
		{
			appendStringInfoChar(buf, '(');
			deparse_expr(expr, context);
			appendStringInfoChar(buf, ')');
		}
		else
			deparse_expr(expr, context);

		typentry = lookup_type_cache(exprType(expr), TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);
		if (sgc->sortop == typentry->lt_opr)
			 /* ascending, the default */ ;
		else if (sgc->sortop == typentry->gt_opr)
		{
			appendStringInfoString(buf, " DESC");
			descending = true;
		}
		else
		{
			appendStringInfoString(buf, " USING ");
			deparse_operator_name(sgc->sortop, context);
		}
		if (sgc->nulls_first != descending)
			appendStringInfoString(buf, sgc->nulls_first ? " NULLS FIRST" : " NULLS LAST");
	}
}

/*
 * deparse_window_spec writes the parenthesised window of an OVER clause.
 */
static void
deparse_window_spec(WindowClause *wc, List *targetList, DeparseContext *context)
{
	StringInfo	buf = context->buf;
	int			options = wc->frameOptions;
	ListCell   *lc;

	appendStringInfoChar(buf, '(');
	if (wc->partitionClause != NIL)
	{
		appendStringInfoString(buf, "PARTITION BY ");
		foreach(lc, wc->partitionClause)
		{
			if (lc != list_head(wc->partitionClause))
				appendStringInfoString(buf, ", ");
			deparse_expr((Node *) get_sortgroupclause_expr(lfirst(lc), targetList), context);
		}
	}
	if (wc->orderClause != NIL)
	{
		appendStringInfoString(buf, wc->partitionClause != NIL ? " ORDER BY " : "ORDER BY ");
		deparse_sort_clause(wc->orderClause, targetList, context);
	}
	if (options & FRAMEOPTION_NONDEFAULT)
	{
		if (options & FRAMEOPTION_RANGE)
			appendStringInfoString(buf, " RANGE ");
		else if (options & FRAMEOPTION_ROWS)
			appendStringInfoString(buf, " ROWS ");
		else
			appendStringInfoString(buf, " GROUPS ");
		if (options & FRAMEOPTION_BETWEEN)
			appendStringInfoString(buf, "BETWEEN ");
		if (options & FRAMEOPTION_START_UNBOUNDED_PRECEDING)
			appendStringInfoString(buf, "UNBOUNDED PRECEDING");
		else if (options & FRAMEOPTION_START_CURRENT_ROW)
			appendStringInfoString(buf, "CURRENT ROW");
		else if (options & FRAMEOPTION_START_OFFSET)
		{
			deparse_expr(wc->startOffset, context);
			appendStringInfoString(buf, (options & FRAMEOPTION_START_OFFSET_PRECEDING) ?
								   " PRECEDING" : " FOLLOWING");
		}
		if (options & FRAMEOPTION_BETWEEN)
		{
			appendStringInfoString(buf, " AND ");
			if (options & FRAMEOPTION_END_UNBOUNDED_FOLLOWING)
				appendStringInfoString(buf, "UNBOUNDED FOLLOWING");
			else if (options & FRAMEOPTION_END_CURRENT_ROW)
				appendStringInfoString(buf, "CURRENT ROW");
			else if (options & FRAMEOPTION_END_OFFSET)
			{
				deparse_expr(wc->endOffset, context);
				appendStringInfoString(buf, (options & FRAMEOPTION_END_OFFSET_PRECEDING) ?
									   " PRECEDING" : " FOLLOWING");
			}
		}
		if (options & FRAMEOPTION_EXCLUDE_CURRENT_ROW)
			appendStringInfoString(buf, " EXCLUDE CURRENT ROW");
		else if (options & FRAMEOPTION_EXCLUDE_GROUP)
			appendStringInfoString(buf, " EXCLUDE GROUP");
		else if (options & FRAMEOPTION_EXCLUDE_TIES)
			appendStringInfoString(buf, " EXCLUDE TIES");
	}
	appendStringInfoChar(buf, ')');
}

/*
 * check_function fails the deparse for a function a node may not have or
 * may evaluate differently.
 */
static bool
check_function(Oid funcid, DeparseContext *context)
{
	/* the coordinator's own query may call anything */
	if (context->master)
		return true;
	if (funcid >= FirstNormalObjectId)
	{
		if (context->failure == NULL)
			context->failure = "the query calls a user-defined function";
		return false;
	}
	if (func_volatile(funcid) == PROVOLATILE_VOLATILE)
	{
		if (context->failure == NULL)
			context->failure = "the query calls a volatile function";
		return false;
	}
	return true;
}

static bool
check_collation(Oid collid, DeparseContext *context)
{
	if (context->master)
		return true;
	if (OidIsValid(collid) && collid >= FirstNormalObjectId)
	{
		if (context->failure == NULL)
			context->failure = "the query uses a user-defined collation";
		return false;
	}
	return true;
}

/*
 * deparse_function_name writes a function's schema-qualified name.
 */
static void
deparse_function_name(Oid funcid, DeparseContext *context)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Form_pg_proc proc;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", funcid);
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	appendStringInfoString(context->buf,
						   quote_qualified_identifier(get_namespace_name(proc->pronamespace),
													  NameStr(proc->proname)));
	ReleaseSysCache(tuple);
}

/*
 * deparse_operator_name writes an operator: its bare name for a
 * pg_catalog operator (the nodes' search_path), else OPERATOR(schema.op).
 */
static void
deparse_operator_name(Oid opno, DeparseContext *context)
{
	HeapTuple	tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator oper;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	oper = (Form_pg_operator) GETSTRUCT(tuple);
	if (oper->oprnamespace == PG_CATALOG_NAMESPACE)
		appendStringInfoString(context->buf, NameStr(oper->oprname));
	else
		appendStringInfo(context->buf, "OPERATOR(%s.%s)",
						 quote_identifier(get_namespace_name(oper->oprnamespace)),
						 NameStr(oper->oprname));
	ReleaseSysCache(tuple);
}

/*
 * deparse_type writes a type name that means the same on every node.
 */
static void
deparse_type(Oid typid, int32 typmod, DeparseContext *context)
{
	bits16		flags = FORMAT_TYPE_TYPEMOD_GIVEN;
	HeapTuple	tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for type %u", typid);
	if (((Form_pg_type) GETSTRUCT(tuple))->typnamespace != PG_CATALOG_NAMESPACE)
		flags |= FORMAT_TYPE_FORCE_QUALIFY;
	ReleaseSysCache(tuple);
	appendStringInfoString(context->buf, format_type_extended(typid, typmod, flags));
}

/*
 * collation_name returns a collation's schema-qualified, quoted name.
 */
static char *
collation_name(Oid collid)
{
	HeapTuple	tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(collid));
	Form_pg_collation coll;
	char	   *result;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for collation %u", collid);
	coll = (Form_pg_collation) GETSTRUCT(tuple);
	result = quote_qualified_identifier(get_namespace_name(coll->collnamespace),
										NameStr(coll->collname));
	ReleaseSysCache(tuple);
	return result;
}

/*
 * deparse_const writes a constant as a typed literal.
 */
static void
deparse_const(Const *constant, DeparseContext *context)
{
	StringInfo	buf = context->buf;
	Oid			typoutput;
	bool		typIsVarlena;
	char	   *extval;
	int			nestlevel;

	if (constant->constisnull)
	{
		appendStringInfoString(buf, "NULL::");
		deparse_type(constant->consttype, constant->consttypmod, context);
		return;
	}

	/*
	 * In the formats the nodes (and the coordinator's own parser, for the
	 * master query) read the same whatever their DateStyle, IntervalStyle
	 * and extra_float_digits: ISO dates with numeric zone offsets, exact
	 * floats.
	 */
	getTypeOutputInfo(constant->consttype, &typoutput, &typIsVarlena);
	nestlevel = SetTransmissionModes();
	extval = OidOutputFunctionCall(typoutput, constant->constvalue);
	ResetTransmissionModes(nestlevel);

	switch (constant->consttype)
	{
		case INT4OID:
			if (extval[0] == '-')
				appendStringInfo(buf, "(%s)", extval);
			else
				appendStringInfoString(buf, extval);
			return;
		case BOOLOID:
			appendStringInfoString(buf, strcmp(extval, "t") == 0 ? "true" : "false");
			return;
		default:
			break;
	}
	AppendStringLiteral(buf, extval);
	appendStringInfoString(buf, "::");
	deparse_type(constant->consttype, constant->consttypmod, context);
	if (OidIsValid(constant->constcollid) &&
		constant->constcollid != get_typcollation(constant->consttype))
	{
		if (!check_collation(constant->constcollid, context))
			return;
		appendStringInfo(buf, " COLLATE %s", collation_name(constant->constcollid));
	}
}

/*
 * deparse_cast writes "(arg)::type", the form of every cast and coercion.
 */
static void
deparse_cast(Node *arg, Oid type, int32 typmod, DeparseContext *context)
{
	appendStringInfoChar(context->buf, '(');
	deparse_expr(arg, context);
	appendStringInfoString(context->buf, ")::");
	deparse_type(type, typmod, context);
}

/*
 * deparse_var writes a column reference as r<n>.<column>; references to
 * join outputs are expanded to what they stand for.
 */
static void
deparse_var(Var *var, DeparseContext *context)
{
	DeparseLevel *level = context->level;
	RangeTblEntry *rte;
	Index		i;
	int			alias;

	for (i = 0; i < var->varlevelsup && level != NULL; i++)
		level = level->parent;
	if (level == NULL || var->varno < 1 || var->varno > list_length(level->query->rtable))
		FAIL(context, "unexpected column reference");

	rte = rt_fetch(var->varno, level->query->rtable);
	alias = level->aliases[var->varno - 1];

	/* the EXCLUDED row of INSERT ... ON CONFLICT DO UPDATE */
	if (level->query->onConflict != NULL &&
		var->varno == level->query->onConflict->exclRelIndex)
	{
		if (var->varattno <= 0)
			FAIL(context, "whole-row or system column of EXCLUDED is not pushed down");
		appendStringInfo(context->buf, "excluded.%s",
						 quote_identifier(get_attname(rte->relid, var->varattno, false)));
		return;
	}

	if (var->varattno == 0)
		FAIL(context, "whole-row references are not pushed down");
	if (context->master)
		FAIL(context, "a column is needed on the coordinator that the nodes do not send");

	switch (rte->rtekind)
	{
		case RTE_JOIN:
			{
				Node	   *aliasvar;

				if (var->varattno < 0 || var->varattno > list_length(rte->joinaliasvars))
					FAIL(context, "unexpected join column reference");
				aliasvar = list_nth(rte->joinaliasvars, var->varattno - 1);
				if (aliasvar == NULL)
					FAIL(context, "reference to a dropped column");
				if (var->varlevelsup > 0)
				{
					aliasvar = copyObject(aliasvar);
					IncrementVarSublevelsUp(aliasvar, var->varlevelsup, 0);
				}
				deparse_expr(aliasvar, context);
				return;
			}
		case RTE_RELATION:
			if (var->varattno < 0)
				FAIL(context, "system columns are not pushed down");
			appendStringInfo(context->buf, "r%d.%s", alias,
							 quote_identifier(get_attname(rte->relid, var->varattno, false)));
			return;
		case RTE_CTE:
		case RTE_SUBQUERY:
		case RTE_VALUES:
		case RTE_FUNCTION:
			if (var->varattno < 0)
				FAIL(context, "system columns are not pushed down");
			appendStringInfo(context->buf, "r%d.c%d", alias, var->varattno);
			return;
		default:
			FAIL(context, "unsupported column reference");
	}
}

static void
deparse_expr_list(List *exprs, DeparseContext *context)
{
	ListCell   *lc;

	foreach(lc, exprs)
	{
		if (lc != list_head(exprs))
			appendStringInfoString(context->buf, ", ");
		deparse_expr(lfirst(lc), context);
	}
}

/*
 * deparse_args writes the arguments of a function or aggregate call.
 */
static void
deparse_func_args(List *args, bool variadic, DeparseContext *context)
{
	ListCell   *lc;

	foreach(lc, args)
	{
		Node	   *arg = lfirst(lc);

		if (lc != list_head(args))
			appendStringInfoString(context->buf, ", ");
		if (variadic && lnext(args, lc) == NULL)
			appendStringInfoString(context->buf, "VARIADIC ");
		if (IsA(arg, NamedArgExpr))
		{
			NamedArgExpr *named = (NamedArgExpr *) arg;

			appendStringInfo(context->buf, "%s => ", quote_identifier(named->name));
			arg = (Node *) named->arg;
		}
		deparse_expr(arg, context);
	}
}

/*
 * Stable built-in functions whose result depends on no setting but
 * TimeZone, by their C symbol: node sessions compute in the local
 * session's time zone (connection.c gives it to them before every
 * statement), so these are computed on the nodes like immutable ones.
 * What depends on DateStyle, IntervalStyle, the locale, the current time
 * or the catalog stays on the coordinator.
 */
static const char *const time_zone_functions[] = {
	"timestamptz_trunc",		/* date_trunc(text, timestamptz) */
	"timestamptz_part",			/* date_part(text, timestamptz) */
	"extract_timestamptz",		/* extract(field from timestamptz) */
	"timestamptz_timestamp",	/* timestamptz::timestamp */
	"timestamp_timestamptz",	/* timestamp::timestamptz */
	"timestamptz_date",			/* timestamptz::date */
	"date_timestamptz",			/* date::timestamptz */
	"timestamptz_time",			/* timestamptz::time */
	"timestamptz_timetz",		/* timestamptz::timetz */
	"timestamptz_pl_interval",	/* timestamptz + interval */
	"timestamptz_mi_interval",	/* timestamptz - interval */
	"timestamptz_age",			/* age(timestamptz, timestamptz) */
	"make_timestamptz",
	"generate_series_timestamptz",
	"timestamp_lt_timestamptz", "timestamp_le_timestamptz",
	"timestamp_eq_timestamptz", "timestamp_ne_timestamptz",
	"timestamp_ge_timestamptz", "timestamp_gt_timestamptz",
	"timestamp_cmp_timestamptz",
	"timestamptz_lt_timestamp", "timestamptz_le_timestamp",
	"timestamptz_eq_timestamp", "timestamptz_ne_timestamp",
	"timestamptz_ge_timestamp", "timestamptz_gt_timestamp",
	"timestamptz_cmp_timestamp",
	"date_lt_timestamptz", "date_le_timestamptz",
	"date_eq_timestamptz", "date_ne_timestamptz",
	"date_ge_timestamptz", "date_gt_timestamptz",
	"date_cmp_timestamptz",
	"timestamptz_lt_date", "timestamptz_le_date",
	"timestamptz_eq_date", "timestamptz_ne_date",
	"timestamptz_ge_date", "timestamptz_gt_date",
	"timestamptz_cmp_date",
	NULL
};

/*
 * depends_only_on_time_zone says whether funcid is one of
 * time_zone_functions: a built-in (internal) function with that symbol.
 */
static bool
depends_only_on_time_zone(Oid funcid)
{
	HeapTuple	tuple;
	bool		found = false;

	if (funcid >= FirstGenbkiObjectId)
		return false;
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tuple))
		return false;
	if (((Form_pg_proc) GETSTRUCT(tuple))->prolang == INTERNALlanguageId)
	{
		bool		isnull;
		Datum		prosrc = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_prosrc, &isnull);
		char	   *symbol;
		int			i;

		if (!isnull)
		{
			symbol = TextDatumGetCString(prosrc);
			for (i = 0; time_zone_functions[i] != NULL && !found; i++)
				found = strcmp(symbol, time_zone_functions[i]) == 0;
			pfree(symbol);
		}
	}
	ReleaseSysCache(tuple);
	return found;
}

/*
 * is_stable_function is a check_functions_in_node callback: a stable
 * function that depends on more than TimeZone.
 */
static bool
is_stable_function(Oid funcid, void *context)
{
	return func_volatile(funcid) == PROVOLATILE_STABLE &&
		!depends_only_on_time_zone(funcid);
}

/*
 * depends_on_rows says whether an expression reads a column (of any query
 * level), an aggregate, a window function or a subquery: whether it is
 * still there when EvaluateCoordinatorExpressions has folded everything
 * that depends only on constants and parameters.
 */
static bool
depends_on_rows(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) || IsA(node, Aggref) || IsA(node, WindowFunc) ||
		IsA(node, GroupingFunc) || IsA(node, SubLink) || IsA(node, CaseTestExpr) ||
		IsA(node, PlaceHolderVar))
		return true;
	return expression_tree_walker(node, depends_on_rows, context);
}

static bool uses_session_settings_walker(Node *node, void *context);

/*
 * uses_session_settings says whether the node itself (not its arguments)
 * computes a value that may depend on the session's settings (DateStyle,
 * IntervalStyle, extra_float_digits, the locale, ...), which the nodes'
 * sessions do not share: a stable function, operator, aggregate or I/O
 * conversion (::text of a date, to_char, jsonb_agg of timestamps, ...),
 * or the text of a float (float8out is immutable, but depends on
 * extra_float_digits).  TimeZone is shared: what depends on nothing else
 * (timestamptz::date, date_trunc, ...) is not counted.
 */
static bool
uses_session_settings(Node *node)
{
	if (IsA(node, CoerceViaIO))
	{
		Oid			argType = getBaseType(exprType((Node *) ((CoerceViaIO *) node)->arg));

		if (argType == FLOAT4OID || argType == FLOAT8OID)
			return true;
	}
	if (IsA(node, ArrayCoerceExpr) &&
		uses_session_settings_walker((Node *) ((ArrayCoerceExpr *) node)->elemexpr, NULL))
		return true;
	return check_functions_in_node(node, is_stable_function, NULL);
}

static bool
uses_session_settings_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (uses_session_settings(node))
		return true;
	return expression_tree_walker(node, uses_session_settings_walker, context);
}

/*
 * deparse_expr writes an expression, or fails the deparse.
 */
static void
deparse_expr(Node *node, DeparseContext *context)
{
	StringInfo	buf = context->buf;

	if (node == NULL || context->failure != NULL)
		return;

	check_stack_depth();

	if (context->substitutions != NIL)
	{
		ListCell   *lc;

		for (lc = list_head(context->substitutions); lc != NULL;
			 lc = lnext(context->substitutions, lnext(context->substitutions, lc)))
		{
			if (equal(lfirst(lc), node))
			{
				appendStringInfoString(buf, (char *) lfirst(lnext(context->substitutions, lc)));
				return;
			}
		}
	}

	/*
	 * What depends on the session's settings is computed on the nodes with
	 * theirs: only constant and parameter arguments, folded on the
	 * coordinator first, give the same value there.
	 */
	if (!context->master && uses_session_settings(node) && depends_on_rows(node, NULL))
		FAIL(context, SETTINGS_FAILURE);

	switch (nodeTag(node))
	{
		case T_Var:
			deparse_var((Var *) node, context);
			break;
		case T_Const:
			deparse_const((Const *) node, context);
			break;
		case T_Param:
			if ((context->master || context->keepParams) &&
				((Param *) node)->paramkind == PARAM_EXTERN)
			{
				appendStringInfo(buf, "$%d", ((Param *) node)->paramid);
				break;
			}
			if (context->checkOnly && ((Param *) node)->paramkind == PARAM_EXTERN)
				break;
			FAIL(context, "the query has a parameter that cannot be sent");
		case T_FuncExpr:
			{
				FuncExpr   *func = (FuncExpr *) node;

				if (!check_function(func->funcid, context) ||
					!check_collation(func->inputcollid, context))
					return;
				if (func->funcformat == COERCE_IMPLICIT_CAST ||
					func->funcformat == COERCE_EXPLICIT_CAST)
				{
					/* a cast: write it as one, with the result type */
					deparse_cast(linitial(func->args), func->funcresulttype,
								 exprTypmod(node), context);
					break;
				}
				deparse_function_name(func->funcid, context);
				appendStringInfoChar(buf, '(');
				deparse_func_args(func->args, func->funcvariadic, context);
				appendStringInfoChar(buf, ')');
				break;
			}
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			{
				OpExpr	   *op = (OpExpr *) node;

				if (op->opno >= FirstNormalObjectId && !context->master)
					FAIL(context, "the query uses a user-defined operator");
				set_opfuncid(op);
				if (!check_function(op->opfuncid, context) ||
					!check_collation(op->inputcollid, context))
					return;
				if (IsA(node, NullIfExpr))
				{
					appendStringInfoString(buf, "NULLIF(");
					deparse_expr_list(op->args, context);
					appendStringInfoChar(buf, ')');
					break;
				}
				appendStringInfoChar(buf, '(');
				if (list_length(op->args) == 2)
				{
					deparse_expr(linitial(op->args), context);
					if (IsA(node, DistinctExpr))
						appendStringInfoString(buf, " IS DISTINCT FROM ");
					else
					{
						appendStringInfoChar(buf, ' ');
						deparse_operator_name(op->opno, context);
						appendStringInfoChar(buf, ' ');
					}
					deparse_expr(lsecond(op->args), context);
				}
				else
				{
					deparse_operator_name(op->opno, context);
					appendStringInfoChar(buf, ' ');
					deparse_expr(linitial(op->args), context);
				}
				appendStringInfoChar(buf, ')');
				break;
			}
		case T_ScalarArrayOpExpr:
			{
				ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) node;

				if (saop->opno >= FirstNormalObjectId && !context->master)
					FAIL(context, "the query uses a user-defined operator");
				set_sa_opfuncid(saop);
				if (!check_function(saop->opfuncid, context) ||
					!check_collation(saop->inputcollid, context))
					return;
				appendStringInfoChar(buf, '(');
				deparse_expr(linitial(saop->args), context);
				appendStringInfoChar(buf, ' ');
				deparse_operator_name(saop->opno, context);
				appendStringInfoString(buf, saop->useOr ? " ANY (" : " ALL (");
				deparse_expr(lsecond(saop->args), context);
				appendStringInfoString(buf, "))");
				break;
			}
		case T_BoolExpr:
			{
				BoolExpr   *b = (BoolExpr *) node;
				ListCell   *lc;
				const char *sep = b->boolop == AND_EXPR ? " AND " : " OR ";

				if (b->boolop == NOT_EXPR)
				{
					appendStringInfoString(buf, "(NOT ");
					deparse_expr(linitial(b->args), context);
					appendStringInfoChar(buf, ')');
					break;
				}
				appendStringInfoChar(buf, '(');
				foreach(lc, b->args)
				{
					if (lc != list_head(b->args))
						appendStringInfoString(buf, sep);
					deparse_expr(lfirst(lc), context);
				}
				appendStringInfoChar(buf, ')');
				break;
			}
		case T_NullTest:
			{
				NullTest   *nt = (NullTest *) node;

				appendStringInfoChar(buf, '(');
				deparse_expr((Node *) nt->arg, context);
				appendStringInfoString(buf, nt->nulltesttype == IS_NULL ?
									   " IS NULL)" : " IS NOT NULL)");
				break;
			}
		case T_BooleanTest:
			{
				BooleanTest *bt = (BooleanTest *) node;
				static const char *const tests[] = {
					" IS TRUE)", " IS NOT TRUE)", " IS FALSE)", " IS NOT FALSE)",
					" IS UNKNOWN)", " IS NOT UNKNOWN)"
				};

				appendStringInfoChar(buf, '(');
				deparse_expr((Node *) bt->arg, context);
				appendStringInfoString(buf, tests[bt->booltesttype]);
				break;
			}
		case T_RelabelType:
			deparse_cast((Node *) ((RelabelType *) node)->arg, ((RelabelType *) node)->resulttype,
						 ((RelabelType *) node)->resulttypmod, context);
			break;
		case T_CoerceViaIO:
			deparse_cast((Node *) ((CoerceViaIO *) node)->arg, ((CoerceViaIO *) node)->resulttype,
						 -1, context);
			break;
		case T_ArrayCoerceExpr:
			deparse_cast((Node *) ((ArrayCoerceExpr *) node)->arg, ((ArrayCoerceExpr *) node)->resulttype,
						 ((ArrayCoerceExpr *) node)->resulttypmod, context);
			break;
		case T_CoerceToDomain:
			deparse_cast((Node *) ((CoerceToDomain *) node)->arg, ((CoerceToDomain *) node)->resulttype,
						 ((CoerceToDomain *) node)->resulttypmod, context);
			break;
		case T_CollateExpr:
			{
				CollateExpr *c = (CollateExpr *) node;

				if (!check_collation(c->collOid, context))
					return;
				appendStringInfoChar(buf, '(');
				deparse_expr((Node *) c->arg, context);
				appendStringInfo(buf, " COLLATE %s)", collation_name(c->collOid));
				break;
			}
		case T_CaseExpr:
			{
				CaseExpr   *c = (CaseExpr *) node;
				ListCell   *lc;

				appendStringInfoString(buf, "CASE");
				if (c->arg != NULL)
				{
					appendStringInfoChar(buf, ' ');
					deparse_expr((Node *) c->arg, context);
				}
				foreach(lc, c->args)
				{
					CaseWhen   *when = lfirst(lc);
					Node	   *cond = (Node *) when->expr;

					appendStringInfoString(buf, " WHEN ");
					if (c->arg != NULL)
					{
						/* the condition is "CaseTestExpr = value" */
						if (!context->master && uses_session_settings(cond))
							FAIL(context, SETTINGS_FAILURE);
						if (IsA(cond, OpExpr) && list_length(((OpExpr *) cond)->args) == 2 &&
							IsA(strip_implicit_coercions(linitial(((OpExpr *) cond)->args)), CaseTestExpr))
							deparse_expr(lsecond(((OpExpr *) cond)->args), context);
						else
							FAIL(context, "unexpected CASE form");
					}
					else
						deparse_expr(cond, context);
					appendStringInfoString(buf, " THEN ");
					deparse_expr((Node *) when->result, context);
				}
				if (c->defresult != NULL)
				{
					appendStringInfoString(buf, " ELSE ");
					deparse_expr((Node *) c->defresult, context);
				}
				appendStringInfoString(buf, " END");
				break;
			}
		case T_CoalesceExpr:
			appendStringInfoString(buf, "COALESCE(");
			deparse_expr_list(((CoalesceExpr *) node)->args, context);
			appendStringInfoChar(buf, ')');
			break;
		case T_MinMaxExpr:
			{
				MinMaxExpr *m = (MinMaxExpr *) node;

				appendStringInfoString(buf, m->op == IS_GREATEST ? "GREATEST(" : "LEAST(");
				deparse_expr_list(m->args, context);
				appendStringInfoChar(buf, ')');
				break;
			}
		case T_ArrayExpr:
			{
				ArrayExpr  *a = (ArrayExpr *) node;

				appendStringInfoString(buf, "ARRAY[");
				deparse_expr_list(a->elements, context);
				appendStringInfoChar(buf, ']');
				if (!a->multidims)
				{
					appendStringInfoString(buf, "::");
					deparse_type(a->array_typeid, -1, context);
				}
				break;
			}
		case T_RowExpr:
			{
				RowExpr    *r = (RowExpr *) node;

				if (r->row_typeid != RECORDOID)
					FAIL(context, "typed row constructors are not pushed down");
				appendStringInfoString(buf, "ROW(");
				deparse_expr_list(r->args, context);
				appendStringInfoChar(buf, ')');
				break;
			}
		case T_SubscriptingRef:
			{
				SubscriptingRef *s = (SubscriptingRef *) node;
				ListCell   *upper;
				ListCell   *lower;

				if (s->refassgnexpr != NULL)
					FAIL(context, "subscript assignment is not pushed down");
				appendStringInfoChar(buf, '(');
				deparse_expr((Node *) s->refexpr, context);
				appendStringInfoChar(buf, ')');
				lower = list_head(s->reflowerindexpr);
				foreach(upper, s->refupperindexpr)
				{
					appendStringInfoChar(buf, '[');
					if (lower != NULL)
					{
						deparse_expr(lfirst(lower), context);
						appendStringInfoChar(buf, ':');
						lower = lnext(s->reflowerindexpr, lower);
					}
					deparse_expr(lfirst(upper), context);
					appendStringInfoChar(buf, ']');
				}
				break;
			}
		case T_FieldSelect:
			{
				FieldSelect *f = (FieldSelect *) node;
				Oid			typrelid = get_typ_typrelid(exprType((Node *) f->arg));

				if (!OidIsValid(typrelid))
					FAIL(context, "field selection from a record is not pushed down");
				appendStringInfoString(buf, "((");
				deparse_expr((Node *) f->arg, context);
				appendStringInfo(buf, ").%s)",
								 quote_identifier(get_attname(typrelid, f->fieldnum, false)));
				break;
			}
		case T_Aggref:
			{
				Aggref	   *agg = (Aggref *) node;
				ListCell   *lc;

				if (!check_function(agg->aggfnoid, context) ||
					!check_collation(agg->inputcollid, context))
					return;
				if (agg->aggsplit != AGGSPLIT_SIMPLE)
					FAIL(context, "partial aggregates are not deparsed");
				deparse_function_name(agg->aggfnoid, context);
				appendStringInfoChar(buf, '(');
				if (AGGKIND_IS_ORDERED_SET(agg->aggkind))
				{
					deparse_expr_list(agg->aggdirectargs, context);
					appendStringInfoString(buf, ") WITHIN GROUP (ORDER BY ");
					deparse_sort_clause(agg->aggorder, agg->args, context);
				}
				else
				{
					if (agg->aggdistinct != NIL)
						appendStringInfoString(buf, "DISTINCT ");
					if (agg->aggstar)
						appendStringInfoChar(buf, '*');
					else
					{
						bool		first = true;

						foreach(lc, agg->args)
						{
							TargetEntry *tle = lfirst(lc);

							if (tle->resjunk)
								continue;
							if (!first)
								appendStringInfoString(buf, ", ");
							first = false;
							if (agg->aggvariadic && lnext(agg->args, lc) == NULL)
								appendStringInfoString(buf, "VARIADIC ");
							deparse_expr((Node *) tle->expr, context);
						}
					}
					if (agg->aggorder != NIL)
					{
						appendStringInfoString(buf, " ORDER BY ");
						deparse_sort_clause(agg->aggorder, agg->args, context);
					}
				}
				appendStringInfoChar(buf, ')');
				if (agg->aggfilter != NULL)
				{
					appendStringInfoString(buf, " FILTER (WHERE ");
					deparse_expr((Node *) agg->aggfilter, context);
					appendStringInfoChar(buf, ')');
				}
				break;
			}
		case T_GroupingFunc:
			FAIL(context, "GROUPING() is not pushed down");
		case T_WindowFunc:
			{
				WindowFunc *wf = (WindowFunc *) node;
				Query	   *query = context->level->query;
				WindowClause *wc = NULL;
				ListCell   *lc;

				if (!check_function(wf->winfnoid, context) ||
					!check_collation(wf->inputcollid, context))
					return;
				foreach(lc, query->windowClause)
				{
					if (((WindowClause *) lfirst(lc))->winref == wf->winref)
						wc = lfirst(lc);
				}
				if (wc == NULL)
					FAIL(context, "window clause not found");
				deparse_function_name(wf->winfnoid, context);
				appendStringInfoChar(buf, '(');
				if (wf->winstar)
					appendStringInfoChar(buf, '*');
				else
					deparse_expr_list(wf->args, context);
				appendStringInfoChar(buf, ')');
				if (wf->aggfilter != NULL)
				{
					appendStringInfoString(buf, " FILTER (WHERE ");
					deparse_expr((Node *) wf->aggfilter, context);
					appendStringInfoChar(buf, ')');
				}
				appendStringInfoString(buf, " OVER ");
				deparse_window_spec(wc, query->targetList, context);
				break;
			}
		case T_SubLink:
			{
				SubLink    *sl = (SubLink *) node;

				if (context->master)
					FAIL(context, "subqueries are not evaluated on the coordinator");

				switch (sl->subLinkType)
				{
					case EXISTS_SUBLINK:
						appendStringInfoString(buf, "EXISTS (");
						break;
					case EXPR_SUBLINK:
						appendStringInfoString(buf, "(");
						break;
					case ARRAY_SUBLINK:
						appendStringInfoString(buf, "ARRAY(");
						break;
					case ANY_SUBLINK:
					case ALL_SUBLINK:
						{
							OpExpr	   *test = (OpExpr *) sl->testexpr;

							if (test == NULL || !IsA(test, OpExpr) ||
								list_length(test->args) != 2 ||
								!IsA(strip_implicit_coercions(lsecond(test->args)), Param))
								FAIL(context, "row comparisons with subqueries are not pushed down");
							if (test->opno >= FirstNormalObjectId)
								FAIL(context, "the query uses a user-defined operator");
							if (!context->master && uses_session_settings((Node *) test))
								FAIL(context, SETTINGS_FAILURE);
							appendStringInfoChar(buf, '(');
							deparse_expr(linitial(test->args), context);
							appendStringInfoChar(buf, ' ');
							deparse_operator_name(test->opno, context);
							appendStringInfoString(buf, sl->subLinkType == ANY_SUBLINK ?
												   " ANY (" : " ALL (");
							deparse_query((Query *) sl->subselect, context, false, NIL);
							appendStringInfoString(buf, "))");
							return;
						}
					default:
						FAIL(context, "unsupported subquery form");
				}
				deparse_query((Query *) sl->subselect, context, false, NIL);
				appendStringInfoChar(buf, ')');
				break;
			}
		case T_SQLValueFunction:
			if (context->master)
			{
				SQLValueFunction *svf = (SQLValueFunction *) node;
				static const char *const names[] = {
					"CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIME", "CURRENT_TIMESTAMP",
					"CURRENT_TIMESTAMP", "LOCALTIME", "LOCALTIME", "LOCALTIMESTAMP",
					"LOCALTIMESTAMP", "CURRENT_ROLE", "CURRENT_USER", "USER",
					"SESSION_USER", "CURRENT_CATALOG", "CURRENT_SCHEMA"
				};

				appendStringInfoString(buf, names[svf->op]);
				if (svf->op == SVFOP_CURRENT_TIME_N || svf->op == SVFOP_CURRENT_TIMESTAMP_N ||
					svf->op == SVFOP_LOCALTIME_N || svf->op == SVFOP_LOCALTIMESTAMP_N)
					appendStringInfo(buf, "(%d)", svf->typmod);
				break;
			}
			if (context->checkOnly)
				break;
			FAIL(context, "the query has an SQL value function that cannot be sent");
		case T_CurrentOfExpr:
			FAIL(context, "WHERE CURRENT OF is not pushed down");
		case T_List:
			deparse_expr_list((List *) node, context);
			break;
		default:
			FAIL(context, "the query has an expression that is not pushed down");
	}
}

/*
 * BeginMasterDeparse starts writing expressions of query's top level for
 * the coordinator's query over the nodes' results: each expression equal
 * to one in substitutions (a list of pairs: expression, text) is printed
 * as the text, and any other column reference fails.
 */
MasterDeparse *
BeginMasterDeparse(Query *query, List *substitutions)
{
	MasterDeparse *md = palloc0(sizeof(MasterDeparse));

	md->context.nextAlias = 1;
	md->context.master = true;
	md->context.checkOnly = true;
	md->context.substitutions = substitutions;
	push_level(query, &md->context);
	return md;
}

/*
 * MasterDeparseExpr appends expr to buf.
 */
void
MasterDeparseExpr(MasterDeparse *md, StringInfo buf, Node *expr)
{
	md->context.buf = buf;
	deparse_expr(expr, &md->context);
}

/*
 * MasterDeparseSortClause appends the items of an ORDER BY to buf.
 */
void
MasterDeparseSortClause(MasterDeparse *md, StringInfo buf, List *sortClause)
{
	md->context.buf = buf;
	deparse_sort_clause(sortClause, md->context.level->query->targetList, &md->context);
}

/*
 * MasterDeparseFailure returns why a master expression could not be
 * written, or NULL.
 */
const char *
MasterDeparseFailure(MasterDeparse *md)
{
	return md->context.failure;
}

/*
 * DeparseCollationName returns a collation's qualified, quoted name.
 */
char *
DeparseCollationName(Oid collid)
{
	return collation_name(collid);
}

/*
 * DeparseTypeName returns a type name that means the same everywhere.
 */
char *
DeparseTypeName(Oid typid, int32 typmod)
{
	StringInfoData buf;
	DeparseContext context;

	initStringInfo(&buf);
	memset(&context, 0, sizeof(context));
	context.buf = &buf;
	deparse_type(typid, typmod, &context);
	return buf.data;
}

/*
 * evaluate_mutator folds, in every query level, the expressions that do
 * not depend on rows: parameters get their values and stable functions
 * are evaluated, on the coordinator.
 */
static Node *
evaluate_mutator(Node *node, void *context)
{
	PlannerInfo *root = (PlannerInfo *) context;

	if (node == NULL)
		return NULL;
	if (IsA(node, Query))
		return (Node *) query_tree_mutator((Query *) node, evaluate_mutator, context,
										   QTW_DONT_COPY_QUERY);
	if (IsA(node, SubLink))
	{
		SubLink    *sl = (SubLink *) copyObject(node);

		sl->testexpr = evaluate_mutator(sl->testexpr, context);
		sl->subselect = evaluate_mutator(sl->subselect, context);
		return (Node *) sl;
	}

	/*
	 * The mutator, unlike the walkers, hands over a CASE's WHEN clauses,
	 * as a list of CaseWhen, which is no expression of its own: a walker
	 * (checkExprHasSubLink) given one fails with "unrecognized node type".
	 * So lists are taken element by element, and a CaseWhen part by part.
	 */
	if (IsA(node, List))
		return expression_tree_mutator(node, evaluate_mutator, context);
	if (IsA(node, CaseWhen))
	{
		CaseWhen   *when = (CaseWhen *) copyObject(node);

		when->expr = (Expr *) evaluate_mutator((Node *) when->expr, context);
		when->result = (Expr *) evaluate_mutator((Node *) when->result, context);
		return (Node *) when;
	}
	if (!checkExprHasSubLink(node))
		return estimate_expression_value(root, node);
	return expression_tree_mutator(node, evaluate_mutator, context);
}

/*
 * EvaluateCoordinatorExpressions returns a copy of query in which every
 * parameter is replaced by its value in params and every stable function
 * without column references by its value now, so that the nodes see the
 * values the coordinator's execution would use.
 */
Query *
EvaluateCoordinatorExpressions(Query *query, ParamListInfo params)
{
	PlannerGlobal glob;
	PlannerInfo root;

	memset(&glob, 0, sizeof(glob));
	memset(&root, 0, sizeof(root));
	root.type = T_PlannerInfo;
	glob.type = T_PlannerGlobal;
	glob.boundParams = params;
	root.glob = &glob;

	return (Query *) evaluate_mutator((Node *) copyObject(query), &root);
}
