/*-------------------------------------------------------------------------
 *
 * metadata_cache.c
 *		  Backend-local cache of shardexec's catalog tables.
 *
 * The planner hook asks, for every relation of every query, whether it is
 * distributed; that question must cost one hash lookup.  This file keeps
 * a hash table keyed by relation OID whose entries carry everything the
 * planner and executor need (kind, distribution column, hash function,
 * shards and their nodes), plus a list of nodes.  A relation that is not
 * distributed gets a negative entry.
 *
 * The catalog tables are read with index scans (not SPI), because this
 * code runs inside the planner hook and SPI would plan again.
 *
 * Invalidation: every change of the metadata calls
 * CacheInvalidateRelcacheByRelid() on the logical table it concerns (or
 * on shardexec.node for topology changes).  The relcache callback below
 * runs in every backend at its next AcceptInvalidationMessages() and
 * marks the entry stale; the next lookup rebuilds it.  Entries are never
 * removed from the hash table, so pointers handed out stay valid; the
 * memory of a rebuilt entry's old contents is freed at the end of the
 * transaction, not at once, because a caller may still read it.
 *
 * Whether the extension exists in this database is cached the same way:
 * once its catalog exists the answer is kept until a relcache
 * invalidation of shardexec.dist_table (DROP EXTENSION) clears it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "shardexec/metadata.h"
#include "shardexec/shardexec.h"

/* column numbers of the catalog tables, as in the install script */
#define Anum_node_node_id 1
#define Anum_node_node_name 2

#define Anum_colocation_colocation_id 1
#define Anum_colocation_shard_count 2
#define Anum_colocation_distribution_type 3
#define Anum_colocation_distribution_collation 4

#define Anum_dist_table_table_id 1
#define Anum_dist_table_kind 2
#define Anum_dist_table_distribution_attnum 3
#define Anum_dist_table_colocation_id 4

#define Anum_shard_shard_id 1
#define Anum_shard_table_id 2
#define Anum_shard_shard_index 3
#define Anum_shard_hash_min 4
#define Anum_shard_hash_max 5

#define Anum_placement_shard_id 1
#define Anum_placement_node_id 2

/* OIDs of the extension's catalog, valid while extensionLoaded */
typedef struct CatalogOids
{
	Oid			schemaId;
	Oid			nodeRel;
	Oid			colocationRel;
	Oid			colocationPkey;
	Oid			distTableRel;
	Oid			distTablePkey;
	Oid			shardRel;
	Oid			shardTableIndex;
	Oid			placementRel;
	Oid			placementPkey;
} CatalogOids;

static bool extensionLoaded = false;
static CatalogOids catalog;

static HTAB *distTableHash = NULL;
static MemoryContext metadataContext = NULL;

/* node list; NIL with nodeCacheValid false means "reload" */
static List *nodeList = NIL;
static bool nodeCacheValid = false;
static MemoryContext nodeContext = NULL;

/* per-entry contexts replaced during this transaction, freed at its end */
static List *staleContexts = NIL;

static void metadata_relcache_callback(Datum arg, Oid relid);
static void metadata_xact_callback(XactEvent event, void *arg);
static void build_dist_table_entry(DistTableEntry *entry);
static void load_shards(DistTableEntry *entry);
static int	node_id_cmp(const ListCell *a, const ListCell *b);
static List *load_placement_nodes(int64 shardId);
static Oid	catalog_relid(const char *relname);

/*
 * InitMetadataCache registers the invalidation callbacks.  Called once
 * from _PG_init.
 */
void
InitMetadataCache(void)
{
	CacheRegisterRelcacheCallback(metadata_relcache_callback, (Datum) 0);
	RegisterXactCallback(metadata_xact_callback, NULL);
}

/*
 * ShardexecExtensionLoaded says whether CREATE EXTENSION shardexec has
 * completed in this database.  While the extension script runs, or
 * outside a transaction, the answer is false.
 */
bool
ShardexecExtensionLoaded(void)
{
	Oid			schemaId;

	if (extensionLoaded)
		return true;

	if (!IsTransactionState())
		return false;

	schemaId = get_namespace_oid("shardexec", true);
	if (!OidIsValid(schemaId))
		return false;
	if (!OidIsValid(get_relname_relid("placement", schemaId)))
		return false;
	if (creating_extension &&
		CurrentExtensionObject == get_extension_oid("shardexec", true))
		return false;
	if (!OidIsValid(get_extension_oid("shardexec", true)))
		return false;

	catalog.schemaId = schemaId;
	catalog.nodeRel = catalog_relid("node");
	catalog.colocationRel = catalog_relid("colocation");
	catalog.colocationPkey = catalog_relid("colocation_pkey");
	catalog.distTableRel = catalog_relid("dist_table");
	catalog.distTablePkey = catalog_relid("dist_table_pkey");
	catalog.shardRel = catalog_relid("shard");
	catalog.shardTableIndex = catalog_relid("shard_table_id_shard_index_key");
	catalog.placementRel = catalog_relid("placement");
	catalog.placementPkey = catalog_relid("placement_pkey");

	extensionLoaded = true;
	return true;
}

/*
 * catalog_relid returns the OID of one of the extension's relations, or
 * fails if the catalog is damaged.
 */
static Oid
catalog_relid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, catalog.schemaId);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("shardexec catalog relation \"%s\" does not exist", relname),
				 errhint("Drop and recreate the extension.")));
	return relid;
}

/*
 * ShardexecSchemaId returns the OID of the shardexec schema; the
 * extension must be loaded.
 */
Oid
ShardexecSchemaId(void)
{
	if (!ShardexecExtensionLoaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"shardexec\" is not created in this database")));
	return catalog.schemaId;
}

/*
 * ShardexecExtensionOwner returns the role that owns the extension; the
 * catalog tables are written as that role.
 */
Oid
ShardexecExtensionOwner(void)
{
	HeapTuple	tuple;
	Oid			owner;

	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(ShardexecSchemaId()));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for namespace %u", catalog.schemaId);
	owner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * metadata_relcache_callback marks cached metadata stale.  An invalid
 * relid means "everything"; the node catalog means the node list (and,
 * since placements name nodes, every table); the table catalog going away
 * means the extension was dropped.
 */
static void
metadata_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) ||
		(extensionLoaded && (relid == catalog.distTableRel ||
							 relid == catalog.nodeRel)))
	{
		if (!OidIsValid(relid) || relid == catalog.distTableRel)
			extensionLoaded = false;
		nodeCacheValid = false;
		if (distTableHash != NULL)
		{
			HASH_SEQ_STATUS status;
			DistTableEntry *entry;

			hash_seq_init(&status, distTableHash);
			while ((entry = hash_seq_search(&status)) != NULL)
				entry->isValid = false;
		}
		return;
	}

	if (distTableHash != NULL)
	{
		DistTableEntry *entry = hash_search(distTableHash, &relid, HASH_FIND, NULL);

		if (entry != NULL)
			entry->isValid = false;
	}
}

/*
 * metadata_xact_callback frees the memory of entries rebuilt during the
 * transaction that ends.
 */
static void
metadata_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;

	foreach(lc, staleContexts)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(staleContexts);
	staleContexts = NIL;
}

/*
 * InvalidateDistTableCache sends a relcache invalidation for relid, so
 * that every backend (this one included, at the next command) reloads its
 * metadata.  A relation dropped in this transaction (the sql_drop event
 * trigger) needs nothing more: dropping it already invalidated it.
 */
void
InvalidateDistTableCache(Oid relid)
{
	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		CacheInvalidateRelcacheByRelid(relid);
	/* and at once in this backend, for the rest of this command */
	metadata_relcache_callback((Datum) 0, relid);
}

/*
 * InvalidateNodeCache sends an invalidation for the node catalog.
 */
void
InvalidateNodeCache(void)
{
	CacheInvalidateRelcacheByRelid(catalog.nodeRel);
	nodeCacheValid = false;
}

/*
 * LookupDistTable returns the metadata of relid, or NULL if relid is not
 * a distributed or reference table (or the extension is not loaded).  The
 * result stays valid until the end of the transaction.
 */
DistTableEntry *
LookupDistTable(Oid relid)
{
	DistTableEntry *entry;
	bool		found;

	if (!ShardexecExtensionLoaded())
		return NULL;

	/* shardexec's own catalog is never distributed */
	if (relid < FirstNormalObjectId)
		return NULL;

	if (distTableHash == NULL)
	{
		HASHCTL		info;

		metadataContext = AllocSetContextCreate(CacheMemoryContext,
												"shardexec metadata cache",
												ALLOCSET_DEFAULT_SIZES);
		info.keysize = sizeof(Oid);
		info.entrysize = sizeof(DistTableEntry);
		info.hcxt = metadataContext;
		distTableHash = hash_create("shardexec distributed tables", 64, &info,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	entry = hash_search(distTableHash, &relid, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) entry) + sizeof(Oid), 0,
			   sizeof(DistTableEntry) - sizeof(Oid));
		entry->isValid = false;
	}

	if (!entry->isValid)
		build_dist_table_entry(entry);

	return entry->isDistributed ? entry : NULL;
}

/*
 * IsDistributedTable says whether relid is a distributed or reference
 * table.
 */
bool
IsDistributedTable(Oid relid)
{
	return LookupDistTable(relid) != NULL;
}

/*
 * build_dist_table_entry reads the catalog rows of entry->relid.  The
 * entry is filled in a fresh memory context, and marked valid only when
 * everything was read, so an error leaves it stale rather than half
 * built.
 */
static void
build_dist_table_entry(DistTableEntry *entry)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	MemoryContext entryContext = NULL;
	MemoryContext oldContext;
	bool		isDistributed = false;
	char		kind = 0;
	AttrNumber	distAttnum = InvalidAttrNumber;
	int32		colocationId = 0;
	int			shardCount = 0;
	Oid			distType = InvalidOid;
	Oid			distCollation = InvalidOid;

	/* the entry's previous contents may still be read by a caller */
	if (entry->context != NULL)
	{
		MemoryContext oldContext = MemoryContextSwitchTo(TopMemoryContext);

		staleContexts = lappend(staleContexts, entry->context);
		MemoryContextSwitchTo(oldContext);
		entry->context = NULL;
		entry->shards = NULL;
		entry->placementNodeIds = NULL;
		entry->placementCount = 0;
		entry->shardCount = 0;
	}

	rel = table_open(catalog.distTableRel, AccessShareLock);
	ScanKeyInit(&key, Anum_dist_table_table_id, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(entry->relid));
	scan = systable_beginscan(rel, catalog.distTablePkey, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull[4];
		Datum		values[4];

		heap_deform_tuple(tuple, RelationGetDescr(rel), values, isnull);
		isDistributed = true;
		kind = DatumGetChar(values[Anum_dist_table_kind - 1]);
		distAttnum = DatumGetInt16(values[Anum_dist_table_distribution_attnum - 1]);
		colocationId = DatumGetInt32(values[Anum_dist_table_colocation_id - 1]);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (isDistributed)
	{
		Datum		values[4];
		bool		isnull[4];

		rel = table_open(catalog.colocationRel, AccessShareLock);
		ScanKeyInit(&key, Anum_colocation_colocation_id, BTEqualStrategyNumber,
					F_INT4EQ, Int32GetDatum(colocationId));
		scan = systable_beginscan(rel, catalog.colocationPkey, true, NULL, 1, &key);
		tuple = systable_getnext(scan);
		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "shardexec colocation group %d does not exist", colocationId);
		heap_deform_tuple(tuple, RelationGetDescr(rel), values, isnull);
		shardCount = DatumGetInt32(values[Anum_colocation_shard_count - 1]);
		distType = isnull[Anum_colocation_distribution_type - 1] ? InvalidOid :
			DatumGetObjectId(values[Anum_colocation_distribution_type - 1]);
		distCollation = DatumGetObjectId(values[Anum_colocation_distribution_collation - 1]);
		systable_endscan(scan);
		table_close(rel, AccessShareLock);

		entryContext = AllocSetContextCreate(metadataContext,
											 "shardexec table metadata",
											 ALLOCSET_SMALL_SIZES);
		oldContext = MemoryContextSwitchTo(entryContext);
		entry->kind = kind;
		entry->distAttnum = distAttnum;
		entry->distType = distType;
		entry->distCollation = distCollation;
		entry->colocationId = colocationId;
		entry->context = entryContext;
		load_shards(entry);
		if (entry->shardCount != shardCount && kind == DIST_KIND_HASH)
			elog(ERROR, "table %u has %d shards, its colocation group %d",
				 entry->relid, entry->shardCount, shardCount);
		if (kind == DIST_KIND_HASH)
		{
			Oid			hashProc = DistributionHashFunction(distType, NULL);

			fmgr_info_cxt(hashProc, &entry->hashFunction, entryContext);
		}
		MemoryContextSwitchTo(oldContext);
	}

	entry->isDistributed = isDistributed;
	entry->isValid = true;
}

/*
 * load_shards reads the shards of entry's table in shard-index order and
 * their placements, in the current memory context.
 */
static void
load_shards(DistTableEntry *entry)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	List	   *shards = NIL;
	ListCell   *lc;
	int			i;

	rel = table_open(catalog.shardRel, AccessShareLock);
	ScanKeyInit(&key, Anum_shard_table_id, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(entry->relid));
	scan = systable_beginscan(rel, catalog.shardTableIndex, true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		values[5];
		bool		isnull[5];
		ShardInterval *shard = palloc0(sizeof(ShardInterval));

		heap_deform_tuple(tuple, RelationGetDescr(rel), values, isnull);
		shard->shardId = DatumGetInt64(values[Anum_shard_shard_id - 1]);
		shard->shardIndex = DatumGetInt32(values[Anum_shard_shard_index - 1]);
		shard->hashMin = isnull[Anum_shard_hash_min - 1] ? 0 :
			DatumGetInt32(values[Anum_shard_hash_min - 1]);
		shard->hashMax = isnull[Anum_shard_hash_max - 1] ? 0 :
			DatumGetInt32(values[Anum_shard_hash_max - 1]);
		shards = lappend(shards, shard);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	entry->shardCount = list_length(shards);
	entry->shards = palloc0(sizeof(ShardInterval) * Max(entry->shardCount, 1));
	i = 0;
	foreach(lc, shards)
	{
		ShardInterval *shard = lfirst(lc);
		List	   *nodes = load_placement_nodes(shard->shardId);

		if (nodes == NIL)
			elog(ERROR, "shard " INT64_FORMAT " has no placement", shard->shardId);
		shard->nodeId = linitial_int(nodes);
		entry->shards[i++] = *shard;

		if (entry->kind == DIST_KIND_REFERENCE)
		{
			ListCell   *nc;
			int			j = 0;

			entry->placementCount = list_length(nodes);
			entry->placementNodeIds = palloc(sizeof(int32) * list_length(nodes));
			foreach(nc, nodes)
				entry->placementNodeIds[j++] = lfirst_int(nc);
		}
	}
}

/*
 * load_placement_nodes returns the node ids holding shardId, in node-id
 * order.
 */
static List *
load_placement_nodes(int64 shardId)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	List	   *nodes = NIL;

	rel = table_open(catalog.placementRel, AccessShareLock);
	ScanKeyInit(&key, Anum_placement_shard_id, BTEqualStrategyNumber,
				F_INT8EQ, Int64GetDatum(shardId));
	scan = systable_beginscan(rel, catalog.placementPkey, true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		nodeId = heap_getattr(tuple, Anum_placement_node_id,
										  RelationGetDescr(rel), &isnull);

		nodes = lappend_int(nodes, DatumGetInt32(nodeId));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nodes;
}

/*
 * DistributedTableList returns the OIDs of every distributed and
 * reference table, read from the catalog.
 */
List *
DistributedTableList(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	List	   *result = NIL;

	if (!ShardexecExtensionLoaded())
		return NIL;

	rel = table_open(catalog.distTableRel, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		relid = heap_getattr(tuple, Anum_dist_table_table_id,
										 RelationGetDescr(rel), &isnull);

		result = lappend_oid(result, DatumGetObjectId(relid));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * ShardexecNodeList returns every node, in node-id order.  The list and
 * its elements belong to the cache: callers must not change them.
 */
List *
ShardexecNodeList(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	List	   *nodes = NIL;
	MemoryContext newContext;
	MemoryContext oldContext;

	if (!ShardexecExtensionLoaded())
		return NIL;
	if (nodeCacheValid)
		return nodeList;

	newContext = AllocSetContextCreate(CacheMemoryContext,
									   "shardexec node cache",
									   ALLOCSET_SMALL_SIZES);
	rel = table_open(catalog.nodeRel, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	oldContext = MemoryContextSwitchTo(newContext);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		values[2];
		bool		isnull[2];
		ShardexecNode *node = palloc0(sizeof(ShardexecNode));
		HeapTuple	serverTuple;

		heap_deform_tuple(tuple, RelationGetDescr(rel), values, isnull);
		node->nodeId = DatumGetInt32(values[Anum_node_node_id - 1]);
		node->nodeName = pstrdup(NameStr(*DatumGetName(values[Anum_node_node_name - 1])));
		serverTuple = SearchSysCache1(FOREIGNSERVERNAME,
									  CStringGetDatum(node->nodeName));
		if (HeapTupleIsValid(serverTuple))
		{
			node->serverId = ((Form_pg_foreign_server) GETSTRUCT(serverTuple))->oid;
			ReleaseSysCache(serverTuple);
		}
		nodes = lappend(nodes, node);
	}
	MemoryContextSwitchTo(oldContext);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/* keep node-id order whatever the heap order */
	list_sort(nodes, node_id_cmp);

	if (nodeContext != NULL)
	{
		oldContext = MemoryContextSwitchTo(TopMemoryContext);
		staleContexts = lappend(staleContexts, nodeContext);
		MemoryContextSwitchTo(oldContext);
	}
	nodeContext = newContext;
	nodeList = nodes;
	nodeCacheValid = true;
	return nodeList;
}

/* node_id_cmp orders ShardexecNode list cells by node id */
static int
node_id_cmp(const ListCell *a, const ListCell *b)
{
	int32		left = ((ShardexecNode *) lfirst(a))->nodeId;
	int32		right = ((ShardexecNode *) lfirst(b))->nodeId;

	return (left > right) - (left < right);
}

/*
 * LookupNodeById returns the node with the given id; with missingOk a
 * missing node gives NULL, otherwise an error.
 */
ShardexecNode *
LookupNodeById(int32 nodeId, bool missingOk)
{
	ListCell   *lc;

	foreach(lc, ShardexecNodeList())
	{
		ShardexecNode *node = lfirst(lc);

		if (node->nodeId == nodeId)
			return node;
	}
	if (!missingOk)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("shardexec node %d does not exist", nodeId)));
	return NULL;
}

/*
 * LookupNodeByName returns the node called nodeName; with missingOk a
 * missing node gives NULL, otherwise an error.
 */
ShardexecNode *
LookupNodeByName(const char *nodeName, bool missingOk)
{
	ListCell   *lc;

	foreach(lc, ShardexecNodeList())
	{
		ShardexecNode *node = lfirst(lc);

		if (strcmp(node->nodeName, nodeName) == 0)
			return node;
	}
	if (!missingOk)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node \"%s\" does not exist", nodeName)));
	return NULL;
}
