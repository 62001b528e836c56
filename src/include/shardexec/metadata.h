/*-------------------------------------------------------------------------
 *
 * metadata.h
 *		  Nodes, distributed and reference tables, shards and placements.
 *
 * The catalog tables live in the shardexec schema (see the install
 * script).  Everything else reads them through the backend-local cache in
 * src/metadata/metadata_cache.c, which is dropped by relcache
 * invalidation whenever they change.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_METADATA_H
#define SHARDEXEC_METADATA_H

#include "access/attnum.h"
#include "fmgr.h"
#include "nodes/pg_list.h"

#define DIST_KIND_HASH		'h'
#define DIST_KIND_REFERENCE 'r'

#define SHARDEXEC_MAX_SHARD_COUNT 4096

/* a node: one foreign server of the shardexec wrapper */
typedef struct ShardexecNode
{
	int32		nodeId;
	char	   *nodeName;		/* equals the foreign server's name */
	Oid			serverId;
} ShardexecNode;

/* one shard of a distributed or reference table */
typedef struct ShardInterval
{
	int64		shardId;
	int32		shardIndex;
	int32		hashMin;		/* inclusive; unused for reference tables */
	int32		hashMax;		/* inclusive */
	int32		nodeId;			/* placement of a hash shard */
} ShardInterval;

/*
 * DistTableEntry is the cached metadata of one relation.  A relation that
 * is not distributed is cached too, with isDistributed false, so that the
 * planner hook's test for ordinary tables is one hash lookup.
 */
typedef struct DistTableEntry
{
	Oid			relid;			/* hash key */
	bool		isDistributed;
	bool		isValid;
	char		kind;			/* DIST_KIND_HASH or DIST_KIND_REFERENCE */
	AttrNumber	distAttnum;		/* InvalidAttrNumber for reference tables */
	Oid			distType;
	Oid			distCollation;
	int32		colocationId;
	int			shardCount;
	ShardInterval *shards;		/* shardCount entries, by shard index */
	int			placementCount; /* reference tables: nodes holding a copy */
	int32	   *placementNodeIds;
	FmgrInfo	hashFunction;	/* the type's hash support function */
	MemoryContext context;		/* holds shards and placementNodeIds */
} DistTableEntry;

/* metadata_cache.c */
extern bool ShardexecExtensionLoaded(void);
extern Oid	ShardexecSchemaId(void);
extern Oid	ShardexecExtensionOwner(void);
extern DistTableEntry *LookupDistTable(Oid relid);
extern bool IsDistributedTable(Oid relid);
extern List *DistributedTableList(void);
extern List *ShardexecNodeList(void);
extern ShardexecNode *LookupNodeById(int32 nodeId, bool missingOk);
extern ShardexecNode *LookupNodeByName(const char *nodeName, bool missingOk);
extern void InvalidateDistTableCache(Oid relid);
extern void InvalidateNodeCache(void);

/* node.c */
extern void ExecuteCatalogWrite(const char *sql, int nargs, Oid *argtypes,
								Datum *values);
extern int64 NextCatalogSequenceValue(const char *sequenceName);

/* ddl.c */

/*
 * A ShardCommandBuilder returns the SQL to run on shard shardId of table
 * relid (several statements joined by ";\n"), or NULL for none.
 */
typedef char *(*ShardCommandBuilder) (Oid relid, int64 shardId, void *arg);

extern void RunOnShards(DistTableEntry *entry, ShardCommandBuilder build, void *arg);

/* hashing.c */
extern int32 HashDistributionValue(DistTableEntry *entry, Datum value);
extern int	ShardIndexForHash(int shardCount, int32 hashValue);
extern void ShardHashRange(int shardCount, int shardIndex,
						   int32 *hashMin, int32 *hashMax);
extern ShardInterval *FindShardForValue(DistTableEntry *entry, Datum value);
extern Oid	DistributionHashFunction(Oid typeId, Oid *opclassId);

/* distribute.c */
extern char *ShardObjectName(const char *name, int64 shardId);
extern char *ShardTableName(const char *relname, int64 shardId);
extern char *ShardQualifiedName(Oid relid, int64 shardId);
extern char *ShardQualifiedNameFromParts(const char *nspname, const char *relname,
										 int64 shardId);
extern List *ShardPlacementNodes(DistTableEntry *entry, ShardInterval *shard);
extern void CheckDistributedTableOwner(Oid relid);
extern void ReplicateReferenceTablesToNode(ShardexecNode *node);
extern bool IsShippableDefault(Node *expr);
extern char *ShardIndexCommand(Oid indexId, int64 shardId);


#endif							/* SHARDEXEC_METADATA_H */
