/*-------------------------------------------------------------------------
 *
 * router.c
 *		  Which shard group a query is pinned to: shard pruning for the
 *		  router planner.
 *
 * A query can run whole on one node when every hash-distributed table it
 * reads, at every query level, is restricted to rows of one shard group,
 * and those tables are colocated.  This file finds that out from the
 * query tree, before the standard planner runs:
 *
 *  - Every hash-distributed range table entry (at any level: subqueries,
 *    CTEs, sublinks) is a member of a union-find structure.
 *  - "a.k = b.k" between distribution columns, in a WHERE clause or the
 *    ON clause of an inner join, joins two members both ways: the rows of
 *    either that can contribute have equal distribution values.
 *  - In the ON clause of an outer join, such an equality only carries a
 *    restriction from the preserved side to the nullable side (a
 *    directed link), and a constant there restricts nothing.  A
 *    correlated equality in a subquery ("inner.k = outer.k") is likewise
 *    a directed link from the outer table to the inner one.
 *  - "k = constant" or "k = $n" with an equality operator of the
 *    distribution type's hash operator family pins a member's class.
 *  - A column of a subquery in FROM counts as the distribution column it
 *    passes through, when the subquery only filters and projects (no
 *    aggregate, DISTINCT, window, LIMIT or set operation, any of which
 *    would change its rows if fed fewer of them).
 *
 * Co-partitioned (for multi-shard pushdown): all members connected by
 * equalities or directed links, with a top-level table among them and no
 * outer join preserving rows every shard group has (a reference table,
 * VALUES) against a distributed one; then every combination of rows the
 * query joins lies in one shard group.  The top-level WHERE clause's
 * "k = const", "k IN (...)", "k = ANY(array)" and ORs of them leave only
 * their shard groups to such a query.
 *
 * The query is a router query when every member's class is pinned,
 * directly or through directed links, and all pins name the same shard
 * group: trivially when there is one class; with several classes, only
 * when all their pins are constants hashing to the same shard.  A query
 * reading only reference tables is a router query too.  Parameters are
 * resolved at execution (distributed_scan.c), which is what makes generic
 * plans of prepared statements route correctly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/hash.h"
#include "catalog/pg_class.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "optimizer/optimizer.h"
#include "optimizer/prep.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "shardexec/metadata.h"
#include "shardexec/planner.h"

/* one hash-distributed range table entry */
typedef struct RteMember
{
	Query	   *query;
	Index		rtindex;
	DistTableEntry *entry;
	int			parent;			/* union-find */
	List	   *pins;			/* ShardPin found on this member */
	List	   *shardSets;		/* lists of shard indexes its rows lie in,
								 * from the top-level WHERE clause */
} RteMember;

typedef struct RouterContext
{
	List	   *members;		/* RteMember */
	List	   *links;			/* pairs of member indexes: from, to */
	List	   *queryStack;		/* innermost query first */
	int32		colocationId;
	bool		haveHash;
	bool		haveTable;
	bool		replicatedOuterRows;	/* an outer join preserves rows of no
										 * distributed table against one */
	RouterAnalysis *analysis;
} RouterContext;

static void analyze_query(Query *query, RouterContext *context);
static bool find_sublinks(Node *node, RouterContext *context);
static void analyze_jointree(Node *node, Query *query, RouterContext *context,
							 Relids *nullable);
static void analyze_quals(Node *quals, RouterContext *context, Relids nullable,
						  bool outerJoinOn);
static List *shard_set_for_clause(Node *clause, RouterContext *context, int *member);
static int	resolve_dist_column(Node *node, RouterContext *context, bool *outer);
static int	find_root(RouterContext *context, int i);
static void fail(RouterContext *context, const char *reason);

static void
fail(RouterContext *context, const char *reason)
{
	if (context->analysis->reason == NULL)
		context->analysis->reason = reason;
}

/*
 * AnalyzeRouterQuery fills analysis for query: whether it is a router
 * query, and if so the table and pin that choose its shard group.
 */
void
AnalyzeRouterQuery(Query *query, RouterAnalysis *analysis)
{
	RouterContext context;
	int			nmembers;
	int		   *classPin;		/* per root: index of the member whose pins pin it, or -1 */
	bool		changed;
	ListCell   *lc;
	int			i;
	int			pinSource = -1;
	int			constShard = -1;

	memset(analysis, 0, sizeof(*analysis));
	memset(&context, 0, sizeof(context));
	context.analysis = analysis;

	analyze_query(query, &context);
	if (analysis->reason != NULL)
		return;
	analysis->isPushable = true;

	if (!context.haveHash)
	{
		if (!context.haveTable)
		{
			fail(&context, "the query reads no distributed table");
			return;
		}
		analysis->isRouter = true;
		analysis->referenceOnly = true;
		return;
	}

	/*
	 * Co-partitioned: all members connected by equalities or directed
	 * links, so every combination of rows that yields a result row comes
	 * from one shard group.
	 */
	nmembers = list_length(context.members);
	{
		int		   *component = palloc(sizeof(int) * nmembers);
		int			n;

		for (i = 0; i < nmembers; i++)
			component[i] = find_root(&context, i);
		do
		{
			changed = false;
			for (i = 0; i + 1 < list_length(context.links); i += 2)
			{
				int			a = component[find_root(&context, list_nth_int(context.links, i))];
				int			b = component[find_root(&context, list_nth_int(context.links, i + 1))];

				if (a != b)
				{
					for (n = 0; n < nmembers; n++)
						if (component[n] == Max(a, b))
							component[n] = Min(a, b);
					changed = true;
				}
			}
		} while (changed);
		/*
		 * ... and that component must hold a table of the top level: tables
		 * only in a CTE or an uncorrelated subquery would be aggregated,
		 * limited or repeated per shard group.
		 */
		analysis->coPartitioned = false;
		for (i = 0; i < nmembers; i++)
			if (((RteMember *) list_nth(context.members, i))->query == query)
				analysis->coPartitioned = true;
		for (i = 0; i < nmembers; i++)
			if (component[find_root(&context, i)] != component[find_root(&context, 0)])
				analysis->coPartitioned = false;
		/*
		 * ... and no outer join may preserve rows that every shard group
		 * has (a reference table, a function, VALUES) against a distributed
		 * table: each shard group would return them, unmatched, once.
		 */
		if (context.replicatedOuterRows)
			analysis->coPartitioned = false;

		/* the shard groups the top-level WHERE clause leaves */
		if (analysis->coPartitioned)
		{
			Bitmapset  *groups = NULL;
			bool		restricted = false;

			foreach(lc, context.members)
			{
				RteMember  *member = lfirst(lc);
				ListCell   *sc;

				foreach(sc, member->shardSets)
				{
					Bitmapset  *set = NULL;
					ListCell   *ic;

					foreach(ic, (List *) lfirst(sc))
						set = bms_add_member(set, lfirst_int(ic));
					groups = restricted ? bms_intersect(groups, set) : set;
					restricted = true;
				}
			}
			if (restricted)
			{
				int			g = -1;

				while ((g = bms_next_member(groups, g)) >= 0)
					analysis->shardIndexes = lappend_int(analysis->shardIndexes, g);
				/* contradictory sets: the WHERE clause filters every row anyway */
				if (analysis->shardIndexes == NIL)
					analysis->shardIndexes = list_make1_int(0);
			}
		}
		analysis->shardCount = ((RteMember *) linitial(context.members))->entry->shardCount;
		foreach(lc, context.members)
		{
			RteMember  *member = lfirst(lc);

			if (member->query == query)
				analysis->distColumns = lappend(analysis->distColumns,
												makeVar(member->rtindex, member->entry->distAttnum,
														member->entry->distType, -1,
														member->entry->distCollation, 0));
		}
	}

	/* pins of each class, then through directed links to a fixpoint */
	classPin = palloc(sizeof(int) * nmembers);
	for (i = 0; i < nmembers; i++)
		classPin[i] = -1;
	for (i = 0; i < nmembers; i++)
	{
		RteMember  *member = list_nth(context.members, i);
		int			root = find_root(&context, i);

		if (member->pins != NIL && classPin[root] < 0)
			classPin[root] = i;
	}
	do
	{
		changed = false;
		for (i = 0; i + 1 < list_length(context.links); i += 2)
		{
			int			from = find_root(&context, list_nth_int(context.links, i));
			int			to = find_root(&context, list_nth_int(context.links, i + 1));

			if (classPin[from] >= 0 && classPin[to] < 0)
			{
				classPin[to] = classPin[from];
				changed = true;
			}
		}
	} while (changed);

	for (i = 0; i < nmembers; i++)
	{
		int			source = classPin[find_root(&context, i)];
		RteMember  *member;
		ShardPin   *pin;

		if (source < 0)
		{
			fail(&context, "the distribution column of a table is not restricted to one value");
			return;
		}
		if (pinSource < 0)
			pinSource = source;
		if (source == pinSource)
			continue;

		/* another class: both must be constants of the same shard */
		member = list_nth(context.members, source);
		pin = linitial(member->pins);
		if (constShard < 0)
		{
			RteMember  *first = list_nth(context.members, pinSource);
			ShardPin   *firstPin = linitial(first->pins);

			if (!IsA(firstPin->value, Const) || ((Const *) firstPin->value)->constisnull)
			{
				fail(&context, "tables are restricted by different parameters");
				return;
			}
			constShard = ShardIndexForPin(firstPin, ((Const *) firstPin->value)->constvalue,
										  first->entry->shardCount);
		}
		if (!IsA(pin->value, Const) || ((Const *) pin->value)->constisnull ||
			ShardIndexForPin(pin, ((Const *) pin->value)->constvalue,
							 member->entry->shardCount) != constShard)
		{
			fail(&context, "tables are restricted to different shards");
			return;
		}
	}

	foreach(lc, context.members)
	{
		RteMember  *member = lfirst(lc);

		analysis->anchorRelid = member->entry->relid;
		break;
	}
	analysis->pins = list_make1(linitial(((RteMember *) list_nth(context.members, pinSource))->pins));
	analysis->isRouter = true;
}

/*
 * ShardIndexForPin returns the shard index of a pinned value.
 */
int
ShardIndexForPin(ShardPin *pin, Datum value, int shardCount)
{
	int32		hash = DatumGetInt32(OidFunctionCall1Coll(pin->hashFunction,
														  pin->collation, value));

	return ShardIndexForHash(shardCount, hash);
}

static int
find_root(RouterContext *context, int i)
{
	RteMember  *member = list_nth(context->members, i);

	while (member->parent != i)
	{
		i = member->parent;
		member = list_nth(context->members, i);
	}
	return i;
}

static void
union_members(RouterContext *context, int a, int b)
{
	int			ra = find_root(context, a);
	int			rb = find_root(context, b);

	if (ra != rb)
		((RteMember *) list_nth(context->members, rb))->parent = ra;
}

/*
 * find_member returns the index of the member for rtindex of query, or -1.
 */
static int
find_member(RouterContext *context, Query *query, Index rtindex)
{
	ListCell   *lc;
	int			i = 0;

	foreach(lc, context->members)
	{
		RteMember  *member = lfirst(lc);

		if (member->query == query && member->rtindex == rtindex)
			return i;
		i++;
	}
	return -1;
}

/*
 * is_simple_subquery says whether a subquery passes its input rows
 * through unchanged but for filtering and projection.
 */
static bool
is_simple_subquery(Query *query)
{
	return query->commandType == CMD_SELECT &&
		query->setOperations == NULL &&
		!query->hasAggs && !query->hasWindowFuncs && !query->hasTargetSRFs &&
		query->groupClause == NIL && query->groupingSets == NIL &&
		query->havingQual == NULL && query->distinctClause == NIL &&
		query->limitCount == NULL && query->limitOffset == NULL;
}

/*
 * analyze_query registers the hash-distributed tables of query and of
 * everything below it, and their equalities.
 */
static void
analyze_query(Query *query, RouterContext *context)
{
	ListCell   *lc;
	Index		rtindex = 0;
	Relids		nullable = NULL;

	context->queryStack = lcons(query, context->queryStack);

	/* UPDATE and DELETE only at the top level; subqueries read */
	if (query->commandType != CMD_SELECT &&
		!(list_length(context->queryStack) == 1 &&
		  (query->commandType == CMD_UPDATE || query->commandType == CMD_DELETE)))
		fail(context, "only SELECT, UPDATE and DELETE are pushed down");

	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rtindex++;
		/* a view's OLD and NEW placeholders (PostgreSQL 15): never read */
		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_VIEW)
			continue;
		if (rte->rtekind == RTE_RELATION)
		{
			DistTableEntry *entry = LookupDistTable(rte->relid);

			if (entry == NULL)
			{
				fail(context, "the query reads a local table");
				continue;
			}
			context->haveTable = true;
			context->analysis->relationOids =
				list_append_unique_oid(context->analysis->relationOids, rte->relid);
			if (!OidIsValid(context->analysis->anchorRelid))
				context->analysis->anchorRelid = rte->relid;
			if (entry->kind == DIST_KIND_HASH)
			{
				RteMember  *member = palloc0(sizeof(RteMember));

				if (context->haveHash && entry->colocationId != context->colocationId)
					fail(context, "the query reads tables that are not colocated");
				context->haveHash = true;
				context->colocationId = entry->colocationId;
				member->query = query;
				member->rtindex = rtindex;
				member->entry = entry;
				member->parent = list_length(context->members);
				context->members = lappend(context->members, member);
			}
		}
		else if (rte->rtekind == RTE_SUBQUERY)
			analyze_query(rte->subquery, context);
		else if (rte->rtekind == RTE_FUNCTION || rte->rtekind == RTE_VALUES ||
				 rte->rtekind == RTE_TABLEFUNC)
			(void) range_table_entry_walker(rte, find_sublinks, context, 0);
	}

	foreach(lc, query->cteList)
	{
		CommonTableExpr *cte = lfirst(lc);

		if (IsA(cte->ctequery, Query))
			analyze_query((Query *) cte->ctequery, context);
	}

	/* subqueries in expressions: WHERE, target list, HAVING, ON, ... */
	(void) query_tree_walker(query, find_sublinks, context,
							 QTW_IGNORE_RANGE_TABLE | QTW_IGNORE_CTE_SUBQUERIES);

	analyze_quals(query->jointree->quals, context, NULL, false);
	if (list_length(context->queryStack) == 1 && query->jointree->quals != NULL)
	{
		ListCell   *qc;

		/* IN lists, = ANY and OR of equalities prune shard groups */
		foreach(qc, make_ands_implicit((Expr *) query->jointree->quals))
		{
			int			m = -1;
			List	   *set = shard_set_for_clause(lfirst(qc), context, &m);

			if (set != NIL && m >= 0)
			{
				RteMember  *member = list_nth(context->members, m);

				member->shardSets = lappend(member->shardSets, set);
			}
		}
	}
	foreach(lc, query->jointree->fromlist)
		analyze_jointree(lfirst(lc), query, context, &nullable);

	context->queryStack = list_delete_first(context->queryStack);
}

/*
 * find_sublinks analyzes the subquery of every SubLink in an expression.
 */
static bool
find_sublinks(Node *node, RouterContext *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
	{
		SubLink    *sublink = (SubLink *) node;

		analyze_query((Query *) sublink->subselect, context);
		return find_sublinks(sublink->testexpr, context);
	}
	if (IsA(node, Query))
		return false;
	return expression_tree_walker(node, find_sublinks, context);
}

/*
 * reads_hash_distributed says whether a range table entry, or a query
 * tree, reads a hash-distributed table.
 */
static bool
reads_hash_distributed(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;
		DistTableEntry *entry;

		if (rte->rtekind == RTE_SUBQUERY)
			return reads_hash_distributed((Node *) rte->subquery, context);
		if (rte->rtekind != RTE_RELATION)
			return false;
		entry = LookupDistTable(rte->relid);
		return entry != NULL && entry->kind == DIST_KIND_HASH;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, reads_hash_distributed, context,
								 QTW_EXAMINE_RTES_BEFORE | QTW_IGNORE_RT_SUBQUERIES);
	return expression_tree_walker(node, reads_hash_distributed, context);
}

/*
 * join_side_reads_hash_distributed says whether a FROM item of query
 * reads a hash-distributed table.
 */
static bool
join_side_reads_hash_distributed(Node *jtnode, Query *query)
{
	Relids		relids = get_relids_in_jointree(jtnode, false);
	int			rtindex = -1;

	while ((rtindex = bms_next_member(relids, rtindex)) >= 0)
	{
		if (reads_hash_distributed((Node *) rt_fetch(rtindex, query->rtable), NULL))
			return true;
	}
	return false;
}

/*
 * analyze_jointree analyzes the ON clauses of the joins in a FROM item;
 * nullable collects the range table indexes on the nullable side of an
 * outer join.
 */
static void
analyze_jointree(Node *node, Query *query, RouterContext *context, Relids *nullable)
{
	if (node == NULL || IsA(node, RangeTblRef))
		return;
	if (IsA(node, FromExpr))
	{
		FromExpr   *from = (FromExpr *) node;
		ListCell   *lc;

		analyze_quals(from->quals, context, NULL, false);
		foreach(lc, from->fromlist)
			analyze_jointree(lfirst(lc), query, context, nullable);
		return;
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) node;
		Relids		nullableSide = NULL;

		analyze_jointree(join->larg, query, context, nullable);
		analyze_jointree(join->rarg, query, context, nullable);

		/* rows every shard group has, preserved against distributed rows */
		if (join->jointype == JOIN_LEFT || join->jointype == JOIN_RIGHT ||
			join->jointype == JOIN_FULL)
		{
			bool		left = join_side_reads_hash_distributed(join->larg, query);
			bool		right = join_side_reads_hash_distributed(join->rarg, query);

			if ((join->jointype != JOIN_RIGHT && !left && right) ||
				(join->jointype != JOIN_LEFT && left && !right))
				context->replicatedOuterRows = true;
		}

		switch (join->jointype)
		{
			case JOIN_INNER:
				analyze_quals(join->quals, context, NULL, false);
				break;
			case JOIN_LEFT:
				nullableSide = get_relids_in_jointree(join->rarg, false);
				analyze_quals(join->quals, context, nullableSide, true);
				break;
			case JOIN_RIGHT:
				nullableSide = get_relids_in_jointree(join->larg, false);
				analyze_quals(join->quals, context, nullableSide, true);
				break;
			default:
				/* FULL JOIN: its condition restricts neither side */
				break;
		}
		*nullable = bms_union(*nullable, nullableSide);
	}
}

/*
 * collation_keeps_shards says whether a comparison with member's
 * distribution column under input collation inputcollid finds equal only
 * values that the column's own collation hashes alike (so lie in one
 * shard): any deterministic collation (equal means the same bytes), or
 * the column's own.  A nondeterministic one (case-insensitive, say) may
 * find equal values that lie in different shards.
 */
static bool
collation_keeps_shards(RteMember *member, Oid inputcollid)
{
	return !OidIsValid(inputcollid) || inputcollid == member->entry->distCollation ||
		get_collation_isdeterministic(inputcollid);
}

/*
 * pin_for_value returns the ShardPin for "distribution column = value"
 * of member (compared under inputcollid), or NULL if value cannot choose
 * a shard.
 */
static ShardPin *
pin_for_value(RteMember *member, Oid opno, Oid inputcollid, Node *value)
{
	TypeCacheEntry *typentry;
	Oid			valueType;
	Oid			hashFunction;
	ShardPin   *pin;

	while (IsA(value, RelabelType))
		value = (Node *) ((RelabelType *) value)->arg;
	if (!(IsA(value, Const) ||
		  (IsA(value, Param) && ((Param *) value)->paramkind == PARAM_EXTERN)))
		return NULL;

	typentry = lookup_type_cache(member->entry->distType, TYPECACHE_HASH_OPFAMILY);
	if (!OidIsValid(typentry->hash_opf) ||
		get_op_opfamily_strategy(opno, typentry->hash_opf) != HTEqualStrategyNumber ||
		!collation_keeps_shards(member, inputcollid))
		return NULL;
	valueType = exprType(value);
	hashFunction = get_opfamily_proc(typentry->hash_opf, valueType, valueType,
									 HASHSTANDARD_PROC);
	if (!OidIsValid(hashFunction))
		return NULL;

	pin = palloc0(sizeof(ShardPin));
	pin->value = (Expr *) value;
	pin->hashFunction = hashFunction;
	pin->collation = member->entry->distCollation;
	return pin;
}

/*
 * analyze_quals records the equalities among the top-level conjuncts of
 * quals.  In the ON clause of an outer join (outerJoinOn), only
 * restrictions of the nullable side count.
 */
static void
analyze_quals(Node *quals, RouterContext *context, Relids nullable, bool outerJoinOn)
{
	ListCell   *lc;

	if (quals == NULL)
		return;

	foreach(lc, make_ands_implicit((Expr *) quals))
	{
		Node	   *clause = lfirst(lc);
		OpExpr	   *op;
		Node	   *left;
		Node	   *right;
		bool		leftOuter = false;
		bool		rightOuter = false;
		int			lmember;
		int			rmember;

		if (!IsA(clause, OpExpr) || list_length(((OpExpr *) clause)->args) != 2)
			continue;
		op = (OpExpr *) clause;
		left = linitial(op->args);
		right = lsecond(op->args);
		lmember = resolve_dist_column(left, context, &leftOuter);
		rmember = resolve_dist_column(right, context, &rightOuter);

		if (lmember >= 0 && rmember >= 0)
		{
			RteMember  *lm = list_nth(context->members, lmember);
			TypeCacheEntry *typentry = lookup_type_cache(lm->entry->distType,
														 TYPECACHE_HASH_OPFAMILY);

			if (!OidIsValid(typentry->hash_opf) ||
				get_op_opfamily_strategy(op->opno, typentry->hash_opf) != HTEqualStrategyNumber ||
				!collation_keeps_shards(lm, op->inputcollid) ||
				!collation_keeps_shards(list_nth(context->members, rmember), op->inputcollid))
				continue;

			if (leftOuter && rightOuter)
				continue;
			if (leftOuter)
				context->links = lappend_int(lappend_int(context->links, lmember), rmember);
			else if (rightOuter)
				context->links = lappend_int(lappend_int(context->links, rmember), lmember);
			else if (outerJoinOn)
			{
				RteMember  *rm = list_nth(context->members, rmember);
				bool		lnull = bms_is_member(lm->rtindex, nullable);
				bool		rnull = bms_is_member(rm->rtindex, nullable);

				if (lnull && rnull)
					union_members(context, lmember, rmember);
				else if (rnull)
					context->links = lappend_int(lappend_int(context->links, lmember), rmember);
				else if (lnull)
					context->links = lappend_int(lappend_int(context->links, rmember), lmember);
			}
			else
				union_members(context, lmember, rmember);
			continue;
		}

		/* column = value */
		if ((lmember >= 0 && !leftOuter) || (rmember >= 0 && !rightOuter))
		{
			int			m = (lmember >= 0 && !leftOuter) ? lmember : rmember;
			RteMember  *member = list_nth(context->members, m);
			ShardPin   *pin;

			if (outerJoinOn)
				continue;	/* restricts only null-extended matches */
			pin = pin_for_value(member, op->opno, op->inputcollid, m == lmember ? right : left);
			if (pin != NULL)
				member->pins = lappend(member->pins, pin);
		}
	}
}

/*
 * const_shard_index returns the shard index of a constant compared with
 * member's distribution column by operator opno, or -1 when the value
 * cannot choose a shard (the operator is not the hash equality, a NULL).
 */
static int
const_shard_index(RteMember *member, Oid opno, Oid inputcollid, Oid valueType,
				  Datum value, bool isnull)
{
	TypeCacheEntry *typentry = lookup_type_cache(member->entry->distType,
												 TYPECACHE_HASH_OPFAMILY);
	Oid			hashFunction;
	ShardPin	pin;

	if (isnull || !OidIsValid(typentry->hash_opf) ||
		get_op_opfamily_strategy(opno, typentry->hash_opf) != HTEqualStrategyNumber ||
		!collation_keeps_shards(member, inputcollid))
		return -1;
	hashFunction = get_opfamily_proc(typentry->hash_opf, valueType, valueType,
									 HASHSTANDARD_PROC);
	if (!OidIsValid(hashFunction))
		return -1;
	pin.hashFunction = hashFunction;
	pin.collation = member->entry->distCollation;
	pin.value = NULL;
	return ShardIndexForPin(&pin, value, member->entry->shardCount);
}

/*
 * has_outer_join says whether a join tree has an outer join.
 */
static bool
has_outer_join(Node *node)
{
	ListCell   *lc;

	if (node == NULL || IsA(node, RangeTblRef))
		return false;
	if (IsA(node, FromExpr))
	{
		foreach(lc, ((FromExpr *) node)->fromlist)
			if (has_outer_join(lfirst(lc)))
				return true;
		return false;
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) node;

		return join->jointype != JOIN_INNER || has_outer_join(join->larg) ||
			has_outer_join(join->rarg);
	}
	return true;
}

/*
 * shard_set_for_clause returns the shard indexes a WHERE conjunct
 * restricts one top-level member's rows to — "k = const",
 * "k IN (consts)", "k = ANY(const array)", "k IS NULL" (no row: one shard
 * group answers, when the query level has no outer join), or an OR of
 * those on the same member — setting *member; NIL when the clause
 * restricts no member so.
 */
static List *
shard_set_for_clause(Node *clause, RouterContext *context, int *member)
{
	List	   *result = NIL;

	if (IsA(clause, BoolExpr) && ((BoolExpr *) clause)->boolop == OR_EXPR)
	{
		ListCell   *lc;

		foreach(lc, ((BoolExpr *) clause)->args)
		{
			int			m = -1;
			List	   *arm = shard_set_for_clause(lfirst(lc), context, &m);

			if (arm == NIL || (*member >= 0 && m != *member))
				return NIL;
			*member = m;
			result = list_concat_unique_int(result, arm);
		}
		return result;
	}

	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;
		bool		outer = false;
		int			m = resolve_dist_column(linitial(op->args), context, &outer);
		Node	   *value = lsecond(op->args);
		int			index;

		if (m < 0)
		{
			outer = false;
			m = resolve_dist_column(lsecond(op->args), context, &outer);
			value = linitial(op->args);
		}
		value = strip_implicit_coercions(value);
		if (m < 0 || outer || !IsA(value, Const) ||
			((RteMember *) list_nth(context->members, m))->query !=
			linitial(context->queryStack))
			return NIL;
		index = const_shard_index(list_nth(context->members, m), op->opno, op->inputcollid,
								  ((Const *) value)->consttype,
								  ((Const *) value)->constvalue,
								  ((Const *) value)->constisnull);
		if (index < 0)
			return NIL;
		*member = m;
		return list_make1_int(index);
	}

	/*
	 * "k IS NULL": no row of a distributed table has a NULL distribution
	 * value, so one shard group answers; but an outer join makes NULLs of
	 * its nullable side, so only a query level without outer joins.
	 */
	if (IsA(clause, NullTest) && ((NullTest *) clause)->nulltesttype == IS_NULL &&
		!((NullTest *) clause)->argisrow &&
		!has_outer_join((Node *) ((Query *) linitial(context->queryStack))->jointree))
	{
		bool		outer = false;
		int			m = resolve_dist_column((Node *) ((NullTest *) clause)->arg, context, &outer);

		if (m < 0 || outer ||
			((RteMember *) list_nth(context->members, m))->query !=
			linitial(context->queryStack))
			return NIL;
		*member = m;
		return list_make1_int(0);
	}

	if (IsA(clause, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) clause)->useOr)
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;
		bool		outer = false;
		int			m = resolve_dist_column(linitial(saop->args), context, &outer);
		Node	   *array = strip_implicit_coercions(lsecond(saop->args));
		ArrayType  *arr;
		Datum	   *elements;
		bool	   *nulls;
		int			n;
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			i;

		if (m < 0 || outer ||
			((RteMember *) list_nth(context->members, m))->query !=
			linitial(context->queryStack))
			return NIL;

		/* "k IN (a, b)" is an ARRAY[...] of constants before planning */
		if (IsA(array, ArrayExpr))
		{
			ListCell   *lc;

			foreach(lc, ((ArrayExpr *) array)->elements)
			{
				Node	   *element = strip_implicit_coercions(lfirst(lc));
				int			index;

				if (!IsA(element, Const))
					return NIL;
				if (((Const *) element)->constisnull)
					continue;
				index = const_shard_index(list_nth(context->members, m), saop->opno, saop->inputcollid,
										  ((Const *) element)->consttype,
										  ((Const *) element)->constvalue, false);
				if (index < 0)
					return NIL;
				result = list_append_unique_int(result, index);
			}
			if (result == NIL)
				result = list_make1_int(0);
			*member = m;
			return result;
		}
		if (!IsA(array, Const) || ((Const *) array)->constisnull)
			return NIL;
		arr = DatumGetArrayTypeP(((Const *) array)->constvalue);
		get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
		deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
						  &elements, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			int			index;

			if (nulls[i])
				continue;
			index = const_shard_index(list_nth(context->members, m), saop->opno, saop->inputcollid,
									  ARR_ELEMTYPE(arr), elements[i], false);
			if (index < 0)
				return NIL;
			result = list_append_unique_int(result, index);
		}
		if (result == NIL)
			result = list_make1_int(0);
		*member = m;
		return result;
	}
	return NIL;
}

/*
 * resolve_dist_column returns the member whose distribution column node
 * is (a Var, possibly relabeled, possibly through simple subqueries and
 * joins), or -1.  *outer is set when the Var belongs to an outer query.
 */
static int
resolve_dist_column(Node *node, RouterContext *context, bool *outer)
{
	Var		   *var;
	Query	   *query;
	RangeTblEntry *rte;

	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node == NULL || !IsA(node, Var))
		return -1;
	var = (Var *) node;
	if (var->varlevelsup >= list_length(context->queryStack) || var->varattno <= 0)
		return -1;
	*outer = *outer || var->varlevelsup > 0;
	query = list_nth(context->queryStack, var->varlevelsup);
	if (var->varno < 1 || var->varno > list_length(query->rtable))
		return -1;
	rte = rt_fetch(var->varno, query->rtable);

	switch (rte->rtekind)
	{
		case RTE_RELATION:
			{
				int			m = find_member(context, query, var->varno);

				if (m >= 0 &&
					((RteMember *) list_nth(context->members, m))->entry->distAttnum == var->varattno)
					return m;
				return -1;
			}
		case RTE_JOIN:
			{
				Node	   *aliasvar;
				List	   *savedStack = context->queryStack;
				int			result;

				if (var->varattno > list_length(rte->joinaliasvars))
					return -1;
				aliasvar = list_nth(rte->joinaliasvars, var->varattno - 1);
				if (aliasvar == NULL || !IsA(aliasvar, Var))
					return -1;
				/* the alias var is relative to the join's own level */
				context->queryStack = list_copy_tail(context->queryStack, var->varlevelsup);
				result = resolve_dist_column(aliasvar, context, outer);
				context->queryStack = savedStack;
				return result;
			}
		case RTE_SUBQUERY:
			{
				TargetEntry *tle;
				List	   *savedStack = context->queryStack;
				int			result;
				bool		innerOuter = false;

				if (!is_simple_subquery(rte->subquery))
					return -1;
				tle = get_tle_by_resno(rte->subquery->targetList, var->varattno);
				if (tle == NULL || tle->resjunk)
					return -1;
				context->queryStack = lcons(rte->subquery,
											list_copy_tail(context->queryStack, var->varlevelsup));
				result = resolve_dist_column((Node *) tle->expr, context, &innerOuter);
				context->queryStack = savedStack;
				return innerOuter ? -1 : result;
			}
		default:
			return -1;
	}
}
