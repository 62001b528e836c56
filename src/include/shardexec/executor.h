/*-------------------------------------------------------------------------
 *
 * executor.h
 *		  Running work on the shards: scans, row routing and conversion.
 *
 * src/executor/shard_scan.c is the CustomScan that reads the rows of a
 * distributed or reference table; shard_modify.c routes rows to their
 * shards (INSERT, COPY FROM and the row move of create_distributed_table)
 * with the COPY protocol.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_EXECUTOR_H
#define SHARDEXEC_EXECUTOR_H

#include "executor/tuptable.h"
#include "libpq-fe.h"
#include "nodes/extensible.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "utils/relcache.h"

#include "shardexec/metadata.h"

/* converts text rows of a remote result into slots of a tuple descriptor */
typedef struct RemoteRowConverter
{
	TupleDesc	tupdesc;
	int			ncolumns;		/* columns of the remote result */
	AttrNumber *attnums;		/* attribute of each remote column */
	FmgrInfo   *inputFunctions; /* per attribute */
	Oid		   *typioparams;	/* per attribute */
} RemoteRowConverter;

/*
 * ExecutionUnit: one SQL statement for one shard (or one group of
 * colocated shards) on one node.  Every statement that reaches the nodes
 * is a list of units; src/executor/distributed_executor.c runs them.
 */
typedef struct ExecutionUnit
{
	int32		nodeId;			/* the node that runs it */
	int64		shardId;		/* anchor shard, for EXPLAIN and errors */
	char	   *sql;			/* the statement, with $n parameters */
	bool		modifies;		/* writes the shard: the transaction keeps
								 * its connection for later statements */
} ExecutionUnit;

/*
 * DistributedExecution runs a list of units, grouped per node, in the
 * connection mode chosen per node (see distributed_executor.c), and
 * returns their rows.  Every unit's result has the columns of tupdesc,
 * in order.
 */
typedef struct DistributedExecution DistributedExecution;

/* how the rows of the units are combined */
typedef struct ExecutionMerge
{
	int			nkeys;			/* 0: unordered union */
	AttrNumber *attnums;		/* sort keys, in tupdesc */
	Oid		   *sortOperators;
	Oid		   *collations;
	bool	   *nullsFirst;
} ExecutionMerge;

/* distributed_executor.c */
extern DistributedExecution *BeginDistributedExecution(List *units,
													   TupleDesc tupdesc,
													   ExecutionMerge *merge,
													   int nParams,
													   const char *const *paramValues,
													   const Oid *paramTypes);
extern bool DistributedExecutionNextRow(DistributedExecution *execution,
										TupleTableSlot *slot);
extern uint64 DistributedExecutionRowsAffected(DistributedExecution *execution);
extern void EndDistributedExecution(DistributedExecution *execution);
extern void ExplainDistributedExecution(DistributedExecution *execution,
										struct ExplainState *es);

/* shard_scan.c */
extern RemoteRowConverter *MakeRemoteRowConverter(TupleDesc tupdesc,
												  bool includeGenerated);
extern void StoreRemoteRow(RemoteRowConverter *converter, PGresult *res,
						   int row, TupleTableSlot *slot);
extern CustomPath *CreateShardScanPath(PlannerInfo *root, RelOptInfo *rel,
									   RangeTblEntry *rte);

/* shard_modify.c */
typedef struct ShardCopyState ShardCopyState;

extern void RegisterShardModifyMethods(void);
extern ShardCopyState *ShardCopyBegin(Relation rel, DistTableEntry *entry);
extern void ShardCopyAppend(ShardCopyState *state, TupleTableSlot *slot);
extern void ShardCopySetLine(ShardCopyState *state, uint64 line);
extern uint64 ShardCopyFinish(ShardCopyState *state);
extern Plan *CreateShardInsertPlan(Plan *sourcePlan, Index resultRelation,
								   List *returningList, Oid relid);

#endif							/* SHARDEXEC_EXECUTOR_H */
