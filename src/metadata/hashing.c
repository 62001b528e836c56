/*-------------------------------------------------------------------------
 *
 * hashing.c
 *		  How a distribution value maps to a shard.
 *
 * A distributed table's rows are hashed with the hash support function
 * (number 1) of the default hash operator class of the distribution
 * column's type, under the column's collation: the same function
 * PostgreSQL uses for hash joins and hash indexes, so the mapping is
 * deterministic and does not depend on the server.  The 32-bit hash
 * space, taken as signed integers from INT32_MIN to INT32_MAX, is cut
 * into shard_count contiguous ranges of equal width 2^32 / shard_count;
 * the remainder of that division goes to the last shard.  Shard i thus
 * owns [INT32_MIN + i * width, INT32_MIN + (i + 1) * width - 1].
 *
 * NULL distribution values are not allowed: the coordinator refuses a
 * row without one (INSERT, COPY and create_distributed_table).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "shardexec/metadata.h"

#define HASH_SPACE ((uint64) 1 << 32)

/*
 * DistributionHashFunction returns the hash support function of typeId's
 * default hash operator class, or InvalidOid if there is none.  With
 * opclassId, the operator class is returned there too.
 */
Oid
DistributionHashFunction(Oid typeId, Oid *opclassId)
{
	TypeCacheEntry *typentry;

	typentry = lookup_type_cache(typeId, TYPECACHE_HASH_PROC | TYPECACHE_HASH_OPFAMILY);
	if (opclassId != NULL)
		*opclassId = GetDefaultOpClass(typeId, HASH_AM_OID);
	return typentry->hash_proc;
}

/*
 * ShardHashRange gives the inclusive hash range of shard shardIndex of a
 * table with shardCount shards.
 */
void
ShardHashRange(int shardCount, int shardIndex, int32 *hashMin, int32 *hashMax)
{
	uint64		width = HASH_SPACE / shardCount;
	uint64		low = (uint64) shardIndex * width;
	uint64		high = (shardIndex == shardCount - 1) ? HASH_SPACE - 1 :
		low + width - 1;

	*hashMin = (int32) ((int64) low + PG_INT32_MIN);
	*hashMax = (int32) ((int64) high + PG_INT32_MIN);
}

/*
 * ShardIndexForHash returns the index of the shard that owns hashValue.
 */
int
ShardIndexForHash(int shardCount, int32 hashValue)
{
	uint64		width = HASH_SPACE / shardCount;
	uint64		offset = (uint64) ((int64) hashValue - PG_INT32_MIN);
	uint64		index = offset / width;

	return (int) Min(index, (uint64) shardCount - 1);
}

/*
 * HashDistributionValue hashes a (non-NULL) distribution value of a hash
 * distributed table.
 */
int32
HashDistributionValue(DistTableEntry *entry, Datum value)
{
	Assert(entry->kind == DIST_KIND_HASH);
	return DatumGetInt32(FunctionCall1Coll(&entry->hashFunction,
										   entry->distCollation, value));
}

/*
 * FindShardForValue returns the shard of entry that holds rows whose
 * distribution column equals value.  For a reference table it is the
 * only shard.
 */
ShardInterval *
FindShardForValue(DistTableEntry *entry, Datum value)
{
	if (entry->kind == DIST_KIND_REFERENCE)
		return &entry->shards[0];

	return &entry->shards[ShardIndexForHash(entry->shardCount,
											HashDistributionValue(entry, value))];
}
