/*-------------------------------------------------------------------------
 *
 * planner.h
 *		  Distributed query planning: shard pruning, router and
 *		  multi-shard plans, and the SQL sent to the nodes.
 *
 * src/planner/planner.c holds the hooks, router.c finds the shard group
 * a query is pinned to, deparse_query.c writes queries back as SQL for a
 * shard group, distributed_scan.c is the CustomScan that runs a pushed
 * down query through the executor (src/executor/distributed_executor.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_PLANNER_H
#define SHARDEXEC_PLANNER_H

#include "lib/stringinfo.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"

/*
 * ShardPin: a value the distribution column of a group of colocated
 * tables is pinned to (a Const, or a Param known at execution), with the
 * hash function for the value's type.
 */
typedef struct ShardPin
{
	Expr	   *value;			/* Const or Param */
	Oid			hashFunction;	/* hash support function for value's type */
	Oid			collation;		/* the distribution column's collation */
} ShardPin;

/* what the router found */
typedef struct RouterAnalysis
{
	bool		isRouter;		/* the query runs whole on one shard group */
	const char *reason;			/* why not, if not */
	bool		isPushable;		/* only colocated and reference tables */
	bool		coPartitioned;	/* every row combination lies in one shard group */
	int			shardCount;		/* of the colocation group, if any */
	List	   *distColumns;	/* top-level distribution column Vars */
	List	   *shardIndexes;	/* shard groups left by the WHERE clause, or
								 * NIL for all */
	Oid			anchorRelid;	/* a distributed (or reference) table read */
	bool		referenceOnly;	/* only reference tables */
	List	   *pins;			/* ShardPin for the shard group */
	List	   *relationOids;	/* every table read, for plan invalidation */
} RouterAnalysis;

/* deparse_query.c */
extern char *DeparseShardQuery(Query *query, int shardIndex, bool includeJunk,
							   const char **failure);
extern char *DeparseShardQueryWithParams(Query *query, int shardIndex,
										 bool includeJunk, bool keepParams,
										 const char **failure);
extern bool ShardQueryIsShippable(Query *query, const char **failure);
extern Query *EvaluateCoordinatorExpressions(Query *query, ParamListInfo params);

typedef struct MasterDeparse MasterDeparse;

extern MasterDeparse *BeginMasterDeparse(Query *query, List *substitutions);
extern void MasterDeparseExpr(MasterDeparse *md, StringInfo buf, Node *expr);
extern void MasterDeparseSortClause(MasterDeparse *md, StringInfo buf,
									List *sortClause);
extern const char *MasterDeparseFailure(MasterDeparse *md);
extern char *DeparseTypeName(Oid typid, int32 typmod);
extern char *DeparseCollationName(Oid collid);

/* insert_planner.c */
extern PlannedStmt *PlanDistributedInsert(Query *parse, const char **failure);

/* multi_shard.c */
extern PlannedStmt *PlanMultiShardQuery(Query *parse, int cursorOptions,
										ParamListInfo boundParams,
										RouterAnalysis *analysis,
										const char **failure);
extern bool LookupPendingRemoteScan(int id, Query **workerQuery, Oid *anchorRelid,
									List **shardIndexes, bool *sorted);

/* router.c */
extern void AnalyzeRouterQuery(Query *query, RouterAnalysis *analysis);
extern int	ShardIndexForPin(ShardPin *pin, Datum value, int shardCount);

/* distributed_scan.c */
typedef enum DistributedPlanKind
{
	DISTRIBUTED_ROUTER,			/* one shard group */
	DISTRIBUTED_ALL_SHARDS,		/* every shard group */
	DISTRIBUTED_ALL_COPIES,		/* every copy of a reference table */
	DISTRIBUTED_INSERT_VALUES	/* rows grouped by shard at execution */
} DistributedPlanKind;

extern void RegisterDistributedScanMethods(void);
extern PlannedStmt *CreateRouterPlan(Query *query, RouterAnalysis *analysis);
extern PlannedStmt *CreateDistributedPlan(Query *query, RouterAnalysis *analysis,
										  DistributedPlanKind kind);
extern bool FlattenRelationRtes(Node *node, List **rtable);
extern CustomPath *CreateMultiShardScanPath(PlannerInfo *root, RelOptInfo *rel,
											Query *workerQuery, Oid anchorRelid,
											List *shardIndexes, bool sorted);
extern bool IsRemoteScanFunction(RangeTblEntry *rte, int *id);

#endif							/* SHARDEXEC_PLANNER_H */
