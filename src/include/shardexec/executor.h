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
extern uint64 ShardCopyFinish(ShardCopyState *state);
extern Plan *CreateShardInsertPlan(Plan *sourcePlan, Index resultRelation,
								   List *returningList, Oid relid);

#endif							/* SHARDEXEC_EXECUTOR_H */
