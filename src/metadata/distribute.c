/*-------------------------------------------------------------------------
 *
 * distribute.c
 *		  create_distributed_table, create_reference_table,
 *		  undistribute_table, shard_id_for_value and shard names.
 *
 * Distributing a table, all in the caller's transaction:
 *   1. check the table and the arguments, and lock the table against
 *      every other access;
 *   2. create the shard tables on the nodes, inside the remote
 *      transactions that follow the local one (connection.c), in a
 *      schema of the same name (created on a node that lacks it), with the
 *      table's columns, shippable defaults, NOT NULL, CHECK, primary key
 *      and unique constraints, and indexes;
 *   3. move the table's rows to their shards with the COPY protocol;
 *   4. empty the local table with a transactional TRUNCATE: it stays as
 *      the empty shell that carries the name, the columns, the
 *      privileges and the dependencies, and that every query is planned
 *      against;
 *   5. record the metadata and invalidate every backend's cache.
 * Any error aborts the local transaction, and with it the remote ones:
 * the shard tables vanish and the local rows are back.
 *
 * A shard's table is named <table>_<shard id> in the table's schema; a
 * name that would pass NAMEDATALEN - 1 bytes has its table part cut (on
 * a character boundary), which keeps it unique since shard ids are.  A
 * shard's constraints and indexes are named <name>_<shard id> likewise,
 * but a cut name gets a hash of the whole name before the shard id:
 * otherwise a long table's shard and its primary key index, or two long
 * index names that differ only in their last bytes, would get the same
 * name.
 *
 * Colocation: without colocate_with a table gets a colocation group of
 * its own, whose shard i is placed on node i mod n (nodes in id order).
 * With colocate_with it joins that table's group and its shards follow
 * the group's placement.  Reference tables share one group.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/tablecmds.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "shardexec/connection.h"
#include "shardexec/executor.h"
#include "shardexec/fdw.h"
#include "shardexec/metadata.h"

PG_FUNCTION_INFO_V1(shardexec_create_distributed_table);
PG_FUNCTION_INFO_V1(shardexec_create_reference_table);
PG_FUNCTION_INFO_V1(shardexec_undistribute_table);
PG_FUNCTION_INFO_V1(shardexec_shard_id_for_value);
PG_FUNCTION_INFO_V1(shardexec_shard_table_name);

static void distribute_table(Oid relid, char kind, const char *columnName,
							 int shardCount, Oid colocateWith);
static void check_table_can_be_distributed(Relation rel);
static List *shard_create_commands(Relation rel, int64 shardId);
static int32 find_or_create_colocation(char kind, int shardCount, Oid distType,
									   Oid distCollation);
static void move_rows_to_shards(Relation rel, DistTableEntry *entry);

/*
 * ShardObjectName returns the (unquoted) name on the nodes of a
 * constraint or index of shard shardId whose name on the coordinator is
 * name: name with "_<shardId>" appended, or, if that would not fit in
 * NAMEDATALEN - 1 bytes, name cut on a character boundary followed by
 * "_<hash of name>_<shardId>", which keeps cut names apart.
 */
char *
ShardObjectName(const char *name, int64 shardId)
{
	char		suffix[32];
	int			keep;

	snprintf(suffix, sizeof(suffix), "_" INT64_FORMAT, shardId);
	if (strlen(name) + strlen(suffix) > NAMEDATALEN - 1)
		snprintf(suffix, sizeof(suffix), "_%08x_" INT64_FORMAT,
				 hash_bytes((const unsigned char *) name, strlen(name)), shardId);
	keep = pg_mbcliplen(name, strlen(name), NAMEDATALEN - 1 - strlen(suffix));
	return psprintf("%.*s%s", keep, name, suffix);
}

/*
 * ShardTableName returns the (unquoted) name of shard shardId of the
 * table called relname: relname, cut on a character boundary if needed,
 * and "_<shardId>".
 */
char *
ShardTableName(const char *relname, int64 shardId)
{
	char		suffix[32];
	int			keep;

	snprintf(suffix, sizeof(suffix), "_" INT64_FORMAT, shardId);
	keep = pg_mbcliplen(relname, strlen(relname), NAMEDATALEN - 1 - strlen(suffix));
	return psprintf("%.*s%s", keep, relname, suffix);
}

/*
 * ShardQualifiedNameFromParts returns the quoted, schema-qualified name
 * of shard shardId of nspname.relname.
 */
char *
ShardQualifiedNameFromParts(const char *nspname, const char *relname, int64 shardId)
{
	return quote_qualified_identifier(nspname, ShardTableName(relname, shardId));
}

/*
 * ShardQualifiedName returns the quoted, schema-qualified name of shard
 * shardId of relation relid.
 */
char *
ShardQualifiedName(Oid relid, int64 shardId)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		elog(ERROR, "cache lookup failed for relation %u", relid);
	return ShardQualifiedNameFromParts(get_namespace_name(get_rel_namespace(relid)),
									   relname, shardId);
}

/*
 * ShardPlacementNodes returns the nodes holding shard: the node of a hash
 * shard, or every node holding the reference table.
 */
List *
ShardPlacementNodes(DistTableEntry *entry, ShardInterval *shard)
{
	List	   *nodes = NIL;

	if (entry->kind == DIST_KIND_REFERENCE)
	{
		int			i;

		for (i = 0; i < entry->placementCount; i++)
			nodes = lappend(nodes, LookupNodeById(entry->placementNodeIds[i], false));
	}
	else
		nodes = list_make1(LookupNodeById(shard->nodeId, false));
	return nodes;
}

/*
 * CheckDistributedTableOwner fails unless the current user owns relid.
 */
void
CheckDistributedTableOwner(Oid relid)
{
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER,
					   get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
}

/*
 * shardexec_create_distributed_table implements
 * shardexec.create_distributed_table(table_name, distribution_column,
 * shard_count, colocate_with).
 */
Datum
shardexec_create_distributed_table(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *columnName;
	int			shardCount;
	Oid			colocateWith = PG_ARGISNULL(3) ? InvalidOid : PG_GETARG_OID(3);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table_name, distribution_column and shard_count must not be null")));
	relid = PG_GETARG_OID(0);
	columnName = text_to_cstring(PG_GETARG_TEXT_PP(1));
	shardCount = PG_GETARG_INT32(2);

	if (shardCount < 1 || shardCount > SHARDEXEC_MAX_SHARD_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shard_count must be between 1 and %d", SHARDEXEC_MAX_SHARD_COUNT)));

	distribute_table(relid, DIST_KIND_HASH, columnName, shardCount, colocateWith);
	PG_RETURN_VOID();
}

/*
 * shardexec_create_reference_table implements
 * shardexec.create_reference_table(table_name): a full copy of the table
 * on every node.
 */
Datum
shardexec_create_reference_table(PG_FUNCTION_ARGS)
{
	distribute_table(PG_GETARG_OID(0), DIST_KIND_REFERENCE, NULL, 1, InvalidOid);
	PG_RETURN_VOID();
}

/*
 * check_table_can_be_distributed refuses, with a reason, the tables
 * shardexec cannot distribute.
 */
static void
check_table_can_be_distributed(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	char	   *relname = RelationGetRelationName(rel);
	Relation	conrel;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot distribute partitioned table \"%s\"", relname),
				 errdetail("Partitioned tables are not supported.")));
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", relname),
				 errdetail("Only ordinary tables can be distributed.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot distribute temporary table \"%s\"", relname)));
	if (rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot distribute partition \"%s\"", relname)));
	if (has_superclass(relid) || has_subclass(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot distribute table \"%s\" because it takes part in inheritance",
						relname)));
	if (rel->rd_rel->relrowsecurity)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot distribute table \"%s\" because it has row-level security enabled",
						relname)));
	if (rel->rd_rel->relhasrules)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot distribute table \"%s\" because it has rules", relname)));
	if (rel->trigdesc != NULL)
	{
		int			i;

		for (i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			if (!rel->trigdesc->triggers[i].tgisinternal)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot distribute table \"%s\" because it has trigger \"%s\"",
								relname, rel->trigdesc->triggers[i].tgname),
						 errhint("Drop the trigger first.")));
		}
	}

	/* foreign keys to or from the table */
	conrel = table_open(ConstraintRelationId, AccessShareLock);
	scan = systable_beginscan(conrel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tuple);

		if (con->contype != CONSTRAINT_FOREIGN)
			continue;
		if (con->confrelid == relid)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot distribute table \"%s\" because it is referenced by a foreign key",
							relname),
					 errdetail("Constraint \"%s\" on table \"%s\" references it.",
							   NameStr(con->conname), get_rel_name(con->conrelid)),
					 errhint("Drop the foreign key first.")));
		if (con->conrelid == relid)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot distribute table \"%s\" because it has a foreign key",
							relname),
					 errdetail("Constraint \"%s\" references table \"%s\".",
							   NameStr(con->conname), get_rel_name(con->confrelid)),
					 errhint("Drop the foreign key first.")));
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
}

/*
 * distribute_table does the work of create_distributed_table (kind
 * DIST_KIND_HASH) and create_reference_table (DIST_KIND_REFERENCE).
 */
static void
distribute_table(Oid relid, char kind, const char *columnName, int shardCount,
				 Oid colocateWith)
{
	Relation	rel;
	List	   *nodes = ShardexecNodeList();
	DistTableEntry entry;
	AttrNumber	distAttnum = InvalidAttrNumber;
	Oid			distType = InvalidOid;
	Oid			distCollation = InvalidOid;
	DistTableEntry *colocated = NULL;
	List	   *commands = NIL;
	ListCell   *lc;
	int			i;
	Oid			argtypes[5];
	Datum		values[5];

	if (!ShardexecExtensionLoaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"shardexec\" is not created in this database")));

	/* take the strongest lock at once: no lock upgrade, no reader sees a half-moved table */
	rel = table_open(relid, AccessExclusiveLock);
	CheckDistributedTableOwner(relid);

	if (IsDistributedTable(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table \"%s\" is already distributed", RelationGetRelationName(rel))));

	check_table_can_be_distributed(rel);

	if (nodes == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("there are no nodes to place shards on"),
				 errhint("Add nodes with shardexec.add_node().")));

	if (kind == DIST_KIND_HASH)
	{
		HeapTuple	atttuple = SearchSysCacheAttName(relid, columnName);
		Form_pg_attribute attr;

		if (!HeapTupleIsValid(atttuple))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							columnName, RelationGetRelationName(rel))));
		attr = (Form_pg_attribute) GETSTRUCT(atttuple);
		distAttnum = attr->attnum;
		distType = attr->atttypid;
		distCollation = attr->attcollation;
		ReleaseSysCache(atttuple);

		if (distAttnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot distribute by system column \"%s\"", columnName)));
		if (TupleDescAttr(RelationGetDescr(rel), distAttnum - 1)->attgenerated)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot distribute by generated column \"%s\"", columnName)));
		if (!OidIsValid(DistributionHashFunction(distType, NULL)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("cannot distribute by column \"%s\" of type %s",
							columnName, format_type_be(distType)),
					 errdetail("Type %s has no default hash operator class.",
							   format_type_be(distType))));

		if (OidIsValid(colocateWith))
		{
			colocated = LookupDistTable(colocateWith);
			if (colocated == NULL || colocated->kind != DIST_KIND_HASH)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cannot colocate with \"%s\" because it is not a distributed table",
								get_rel_name(colocateWith))));
			if (colocated->shardCount != shardCount)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cannot colocate table \"%s\" with \"%s\"",
								RelationGetRelationName(rel), get_rel_name(colocateWith)),
						 errdetail("\"%s\" has %d shards, the new table would have %d.",
								   get_rel_name(colocateWith), colocated->shardCount, shardCount),
						 errhint("Pass shard_count => %d.", colocated->shardCount)));
			if (colocated->distType != distType)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("cannot colocate table \"%s\" with \"%s\"",
								RelationGetRelationName(rel), get_rel_name(colocateWith)),
						 errdetail("Their distribution columns are of types %s and %s.",
								   format_type_be(distType), format_type_be(colocated->distType))));
			if (colocated->distCollation != distCollation)
				ereport(ERROR,
						(errcode(ERRCODE_COLLATION_MISMATCH),
						 errmsg("cannot colocate table \"%s\" with \"%s\"",
								RelationGetRelationName(rel), get_rel_name(colocateWith)),
						 errdetail("Their distribution columns have collations \"%s\" and \"%s\".",
								   get_collation_name(distCollation),
								   get_collation_name(colocated->distCollation))));
			if (get_rel_persistence(colocateWith) != rel->rd_rel->relpersistence)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cannot colocate table \"%s\" with \"%s\"",
								RelationGetRelationName(rel), get_rel_name(colocateWith)),
						 errdetail("One of them is unlogged and the other is not.")));
		}
	}
	else if (OidIsValid(colocateWith))
		elog(ERROR, "reference tables cannot be colocated explicitly");

	/* unique indexes must enforce uniqueness within a shard */
	if (kind == DIST_KIND_HASH)
	{
		List	   *indexes = RelationGetIndexList(rel);

		foreach(lc, indexes)
		{
			Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
			Form_pg_index indexForm = index->rd_index;
			bool		hasColumn = false;
			int			k;

			if (indexForm->indisexclusion)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot distribute table \"%s\" because it has exclusion constraint \"%s\"",
								RelationGetRelationName(rel), RelationGetRelationName(index))));
			for (k = 0; k < indexForm->indnkeyatts; k++)
				if (indexForm->indkey.values[k] == distAttnum)
					hasColumn = true;
			if (indexForm->indisunique && !hasColumn)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
						 errmsg("cannot distribute table \"%s\" by column \"%s\"",
								RelationGetRelationName(rel), columnName),
						 errdetail("Unique index \"%s\" does not include the distribution column, "
								   "so shards could not enforce it.",
								   RelationGetRelationName(index)),
						 errhint("Add \"%s\" to the primary key or unique constraint, or distribute by one of its columns.",
								 columnName)));
			index_close(index, AccessShareLock);
		}
	}

	/* build the metadata of the new table, not yet visible to anyone */
	memset(&entry, 0, sizeof(entry));
	entry.relid = relid;
	entry.isDistributed = true;
	entry.isValid = true;
	entry.kind = kind;
	entry.distAttnum = distAttnum;
	entry.distType = distType;
	entry.distCollation = distCollation;
	entry.shardCount = shardCount;
	entry.shards = palloc0(sizeof(ShardInterval) * shardCount);
	if (kind == DIST_KIND_HASH)
		fmgr_info(DistributionHashFunction(distType, NULL), &entry.hashFunction);
	else
	{
		entry.placementCount = list_length(nodes);
		entry.placementNodeIds = palloc(sizeof(int32) * entry.placementCount);
		i = 0;
		foreach(lc, nodes)
			entry.placementNodeIds[i++] = ((ShardexecNode *) lfirst(lc))->nodeId;
	}

	for (i = 0; i < shardCount; i++)
	{
		ShardInterval *shard = &entry.shards[i];

		shard->shardId = NextCatalogSequenceValue("shard_id_seq");
		shard->shardIndex = i;
		if (kind == DIST_KIND_HASH)
		{
			ShardHashRange(shardCount, i, &shard->hashMin, &shard->hashMax);
			shard->nodeId = colocated != NULL ? colocated->shards[i].nodeId :
				((ShardexecNode *) list_nth(nodes, i % list_length(nodes)))->nodeId;
		}
		else
			shard->nodeId = entry.placementNodeIds[0];
	}

	/*
	 * 2. create the shard tables, in the table's schema, which a node may
	 * not have yet: it is created first on every node (commands for one
	 * node run in list order).
	 */
	foreach(lc, nodes)
	{
		NodeCommand *command = palloc(sizeof(NodeCommand));

		command->node = lfirst(lc);
		command->sql = psprintf("CREATE SCHEMA IF NOT EXISTS %s",
								quote_identifier(get_namespace_name(RelationGetNamespace(rel))));
		commands = lappend(commands, command);
	}
	for (i = 0; i < shardCount; i++)
	{
		ShardInterval *shard = &entry.shards[i];
		List	   *shardCommands = shard_create_commands(rel, shard->shardId);
		StringInfoData sql;

		initStringInfo(&sql);
		foreach(lc, shardCommands)
		{
			if (sql.len > 0)
				appendStringInfoString(&sql, ";\n");
			appendStringInfoString(&sql, (char *) lfirst(lc));
		}
		foreach(lc, ShardPlacementNodes(&entry, shard))
		{
			NodeCommand *command = palloc(sizeof(NodeCommand));

			command->node = lfirst(lc);
			command->sql = sql.data;
			commands = lappend(commands, command);
		}
	}
	ExecuteOnNodesInParallel(commands);

	/* 3. move the rows */
	move_rows_to_shards(rel, &entry);

	/*
	 * 4. empty the local table, transactionally.  TRUNCATE refuses a
	 * relation this backend still has open, so close it, keeping the lock.
	 */
	{
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfo(&sql, "TRUNCATE ONLY %s",
						 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													RelationGetRelationName(rel)));
		table_close(rel, NoLock);
		rel = NULL;
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(sql.data, false, 0) < 0)
			elog(ERROR, "could not empty table \"%s\"", get_rel_name(relid));
		SPI_finish();
	}

	/* 5. record the metadata */
	entry.colocationId = colocated != NULL ? colocated->colocationId :
		find_or_create_colocation(kind, shardCount, distType, distCollation);

	argtypes[0] = OIDOID;
	argtypes[1] = CHAROID;
	argtypes[2] = INT2OID;
	argtypes[3] = INT4OID;
	values[0] = ObjectIdGetDatum(relid);
	values[1] = CharGetDatum(kind);
	values[2] = Int16GetDatum(distAttnum);
	values[3] = Int32GetDatum(entry.colocationId);
	ExecuteCatalogWrite("INSERT INTO shardexec.dist_table "
						"(table_id, kind, distribution_attnum, colocation_id) "
						"VALUES ($1, $2, $3, $4)", 4, argtypes, values);

	argtypes[0] = INT8OID;
	argtypes[1] = OIDOID;
	argtypes[2] = INT4OID;
	argtypes[3] = INT4OID;
	argtypes[4] = INT4OID;
	for (i = 0; i < shardCount; i++)
	{
		ShardInterval *shard = &entry.shards[i];
		Oid			ptypes[2] = {INT8OID, INT4OID};
		Datum		pvalues[2];

		values[0] = Int64GetDatum(shard->shardId);
		values[1] = ObjectIdGetDatum(relid);
		values[2] = Int32GetDatum(i);
		values[3] = Int32GetDatum(shard->hashMin);
		values[4] = Int32GetDatum(shard->hashMax);
		if (kind == DIST_KIND_HASH)
			ExecuteCatalogWrite("INSERT INTO shardexec.shard "
								"(shard_id, table_id, shard_index, hash_min, hash_max) "
								"VALUES ($1, $2, $3, $4, $5)", 5, argtypes, values);
		else
			ExecuteCatalogWrite("INSERT INTO shardexec.shard (shard_id, table_id, shard_index) "
								"VALUES ($1, $2, $3)", 3, argtypes, values);

		pvalues[0] = Int64GetDatum(shard->shardId);
		if (kind == DIST_KIND_HASH)
		{
			pvalues[1] = Int32GetDatum(shard->nodeId);
			ExecuteCatalogWrite("INSERT INTO shardexec.placement (shard_id, node_id) "
								"VALUES ($1, $2)", 2, ptypes, pvalues);
		}
		else
		{
			int			p;

			for (p = 0; p < entry.placementCount; p++)
			{
				pvalues[1] = Int32GetDatum(entry.placementNodeIds[p]);
				ExecuteCatalogWrite("INSERT INTO shardexec.placement (shard_id, node_id) "
									"VALUES ($1, $2)", 2, ptypes, pvalues);
			}
		}
	}

	InvalidateDistTableCache(relid);
}

/*
 * find_or_create_colocation returns the colocation group of a new table:
 * the reference tables' group, or a new group for a hash table.
 */
static int32
find_or_create_colocation(char kind, int shardCount, Oid distType, Oid distCollation)
{
	Oid			argtypes[4] = {INT4OID, INT4OID, OIDOID, OIDOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int32		colocationId;
	Oid			savedUserId;
	int			savedSecContext;

	if (kind == DIST_KIND_REFERENCE)
	{
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute("SELECT colocation_id FROM shardexec.colocation "
						 "WHERE distribution_type IS NULL ORDER BY colocation_id LIMIT 1",
						 true, 1);
		if (rc == SPI_OK_SELECT && SPI_processed == 1)
		{
			bool		isnull;

			colocationId = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 1, &isnull));
			SPI_finish();
			return colocationId;
		}
		SPI_finish();
	}

	colocationId = (int32) NextCatalogSequenceValue("colocation_id_seq");
	values[0] = Int32GetDatum(colocationId);
	values[1] = Int32GetDatum(shardCount);
	values[2] = ObjectIdGetDatum(distType);
	values[3] = ObjectIdGetDatum(distCollation);
	if (!OidIsValid(distType))
		nulls[2] = 'n';

	GetUserIdAndSecContext(&savedUserId, &savedSecContext);
	SetUserIdAndSecContext(ShardexecExtensionOwner(),
						   savedSecContext | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("INSERT INTO shardexec.colocation "
								  "(colocation_id, shard_count, distribution_type, distribution_collation) "
								  "VALUES ($1, $2, $3, $4)", 4, argtypes, values, nulls,
								  false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record colocation group");
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(savedUserId, savedSecContext);
	}
	PG_END_TRY();
	CommandCounterIncrement();
	return colocationId;
}

/*
 * move_rows_to_shards sends every row of rel's local storage to its
 * shard.
 */
static void
move_rows_to_shards(Relation rel, DistTableEntry *entry)
{
	ShardCopyState *copy = ShardCopyBegin(rel, entry);
	TableScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		ShardCopyAppend(copy, slot);
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	(void) ShardCopyFinish(copy);
}

/*
 * is_shippable_default_walker returns true at the first node of an
 * expression that a node could not evaluate.
 */
static bool
is_shippable_default_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, NextValueExpr) || IsA(node, SubLink) || IsA(node, Param))
		return true;
	if (IsA(node, FuncExpr))
	{
		Oid			funcid = ((FuncExpr *) node)->funcid;

		if (funcid >= FirstNormalObjectId || funcid == F_NEXTVAL)
			return true;
	}
	if (IsA(node, OpExpr) || IsA(node, DistinctExpr) || IsA(node, NullIfExpr))
	{
		if (((OpExpr *) node)->opno >= FirstNormalObjectId)
			return true;
	}
	if (IsA(node, Const) && ((Const *) node)->consttype >= FirstNormalObjectId)
		return true;
	return expression_tree_walker(node, is_shippable_default_walker, context);
}

/*
 * IsShippableDefault says whether a column default can be evaluated on
 * a node: only built-in functions and operators, and no sequence.
 */
bool
IsShippableDefault(Node *expr)
{
	return !is_shippable_default_walker(expr, NULL);
}

/*
 * shard_create_commands returns the commands that create shard shardId
 * of rel on a node: the table with its columns, defaults and NOT NULL,
 * then its constraints and indexes.  Names are deparsed under the
 * nodes' search_path (pg_catalog), so they are qualified where needed.
 */
static List *
shard_create_commands(Relation rel, int64 shardId)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	char	   *nspname = get_namespace_name(RelationGetNamespace(rel));
	char	   *relname = RelationGetRelationName(rel);
	char	   *shardName = ShardQualifiedNameFromParts(nspname, relname, shardId);
	List	   *commands = NIL;
	List	   *context;
	StringInfoData buf;
	bool		first = true;
	int			nestlevel;
	int			i;
	Relation	conrel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	ListCell   *lc;

	/* the nodes' search_path, and constants in the formats they parse */
	nestlevel = SetDeparseSearchPath();
	(void) SetTransmissionModes();	/* undone with nestlevel */
	context = deparse_context_for(relname, relid);

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE %sTABLE %s (",
					 rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED ? "UNLOGGED " : "",
					 shardName);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);

		if (attr->attisdropped)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		appendStringInfo(&buf, "%s %s", quote_identifier(NameStr(attr->attname)),
						 format_type_with_typemod(attr->atttypid, attr->atttypmod));
		if (OidIsValid(attr->attcollation) &&
			attr->attcollation != get_typcollation(attr->atttypid))
			appendStringInfo(&buf, " COLLATE %s", generate_collation_name(attr->attcollation));
		if (attr->attnotnull)
			appendStringInfoString(&buf, " NOT NULL");
		if (attr->atthasdef)
		{
			Node	   *expr = build_column_default(rel, attr->attnum);

			if (attr->attgenerated == ATTRIBUTE_GENERATED_STORED)
			{
				appendStringInfo(&buf, " GENERATED ALWAYS AS (%s) STORED",
								 deparse_expression(expr, context, false, false));
			}
			else if (expr != NULL && IsShippableDefault(expr))
				appendStringInfo(&buf, " DEFAULT %s",
								 deparse_expression(expr, context, false, false));
		}
	}
	appendStringInfoChar(&buf, ')');
	commands = lappend(commands, buf.data);

	/* CHECK, PRIMARY KEY and UNIQUE constraints */
	conrel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true,
							  NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tuple);
		char	   *def;

		if (con->contype != CONSTRAINT_CHECK && con->contype != CONSTRAINT_PRIMARY &&
			con->contype != CONSTRAINT_UNIQUE)
			continue;
		def = TextDatumGetCString(DirectFunctionCall1(pg_get_constraintdef,
													  ObjectIdGetDatum(con->oid)));
		commands = lappend(commands,
						   psprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", shardName,
									quote_identifier(ShardObjectName(NameStr(con->conname), shardId)),
									def));
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);

	/* indexes that do not back a constraint */
	foreach(lc, RelationGetIndexList(rel))
	{
		Oid			indexId = lfirst_oid(lc);

		if (OidIsValid(get_index_constraint(indexId)))
			continue;
		commands = lappend(commands, ShardIndexCommand(indexId, shardId));
	}

	ResetTransmissionModes(nestlevel);
	return commands;
}

/*
 * ShardIndexCommand returns the CREATE INDEX command that builds index
 * indexId of a distributed table on the table's shard shardId, named
 * ShardObjectName(index name, shardId).  The definition is deparsed from
 * the catalog under the nodes' search_path and date, interval and float
 * formats, so expressions and predicates mean the same there.
 */
char *
ShardIndexCommand(Oid indexId, int64 shardId)
{
	Oid			relid = IndexGetRelation(indexId, false);
	char	   *nspname = get_namespace_name(get_rel_namespace(relid));
	char	   *relname = get_rel_name(relid);
	char	   *indexName = get_rel_name(indexId);
	char	   *def;
	char	   *expected;
	bool		unique;
	int			nestlevel;
	Relation	index;

	index = index_open(indexId, AccessShareLock);
	unique = index->rd_index->indisunique;
	index_close(index, AccessShareLock);

	nestlevel = SetDeparseSearchPath();
	(void) SetTransmissionModes();	/* undone with nestlevel */
	def = pg_get_indexdef_string(indexId);
	ResetTransmissionModes(nestlevel);

	expected = psprintf("CREATE %sINDEX %s ON %s USING ", unique ? "UNIQUE " : "",
						quote_identifier(indexName),
						quote_qualified_identifier(nspname, relname));
	if (strncmp(def, expected, strlen(expected)) != 0)
		elog(ERROR, "unexpected definition of index \"%s\": %s", indexName, def);
	return psprintf("CREATE %sINDEX %s ON %s USING %s", unique ? "UNIQUE " : "",
					quote_identifier(ShardObjectName(indexName, shardId)),
					ShardQualifiedNameFromParts(nspname, relname, shardId),
					def + strlen(expected));
}

/*
 * put_copy_row sends one row of COPY data, which libpq allocated, to conn
 * (PutCopyData: a target that stops reading cannot hold the backend), and
 * frees it.
 */
static void
put_copy_row(PGconn *conn, const char *nodeName, const char *sql, char *data, int len,
			 size_t *pending)
{
	PG_TRY();
	{
		PutCopyData(conn, nodeName, sql, data, len, pending);
	}
	PG_CATCH();
	{
		PQfreemem(data);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PQfreemem(data);
}

/*
 * copy_between_nodes streams the rows of a shard table from one node to
 * another with COPY TO STDOUT and COPY FROM STDIN, without converting
 * them; both connections are in the current remote transactions.
 */
static void
copy_between_nodes(ShardexecNode *source, ShardexecNode *target,
				   const char *shardName, const char *columns)
{
	PGconn	   *from = GetNodeConnection(source, CONNECTION_IN_TRANSACTION);
	PGconn	   *to = GetNodeConnection(target, CONNECTION_IN_TRANSACTION);
	char	   *copyOut = psprintf("COPY (SELECT %s FROM %s) TO STDOUT", columns, shardName);
	char	   *copyIn = psprintf("COPY %s (%s) FROM STDIN", shardName, columns);
	PGresult   *res;
	size_t		pending = 0;

	MarkConnectionModified(to);
	SendRemoteQuery(from, source->nodeName, copyOut, 0, NULL);
	res = GetRemoteResult(from, source->nodeName);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
		ReportRemoteError(res, from, source->nodeName, copyOut);
	PQclear(res);
	SendRemoteQuery(to, target->nodeName, copyIn, 0, NULL);
	res = GetRemoteResult(to, target->nodeName);
	if (PQresultStatus(res) != PGRES_COPY_IN)
		ReportRemoteError(res, to, target->nodeName, copyIn);
	PQclear(res);

	for (;;)
	{
		char	   *data = NULL;
		int			len = PQgetCopyData(from, &data, 1);

		if (len > 0)
		{
			put_copy_row(to, target->nodeName, copyIn, data, len, &pending);
			continue;
		}
		if (len == -1)
			break;
		if (len == -2)
			ReportRemoteError(NULL, from, source->nodeName, copyOut);
		/* no data yet: wait for the source, with interrupts */
		(void) WaitLatchOrSocket(MyLatch,
								 WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
								 PQsocket(from), -1L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (!PQconsumeInput(from))
			ReportRemoteError(NULL, from, source->nodeName, copyOut);
	}
	while ((res = GetRemoteResult(from, source->nodeName)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			ReportRemoteError(res, from, source->nodeName, copyOut);
		PQclear(res);
	}
	EndCopyData(to, target->nodeName, copyIn);
	while ((res = GetRemoteResult(to, target->nodeName)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			ReportRemoteError(res, to, target->nodeName, copyIn);
		PQclear(res);
	}
}

/*
 * ReplicateReferenceTablesToNode gives a newly added node a copy of every
 * reference table: the shard table is created there and its rows are
 * streamed from an existing copy, under a lock that keeps writers out
 * until the transaction ends; then the placement is recorded.
 */
void
ReplicateReferenceTablesToNode(ShardexecNode *node)
{
	ListCell   *lc;

	foreach(lc, DistributedTableList())
	{
		Oid			relid = lfirst_oid(lc);
		DistTableEntry *entry = LookupDistTable(relid);
		Relation	rel;
		List	   *commands = NIL;
		NodeCommand *command;
		StringInfoData columns;
		ListCell   *cc;
		Oid			argtypes[2] = {INT8OID, INT4OID};
		Datum		values[2];
		int			i;
		bool		present = false;

		if (entry == NULL || entry->kind != DIST_KIND_REFERENCE)
			continue;
		for (i = 0; i < entry->placementCount; i++)
			if (entry->placementNodeIds[i] == node->nodeId)
				present = true;
		if (present || entry->placementCount == 0)
			continue;

		rel = table_open(relid, ExclusiveLock);
		command = palloc(sizeof(NodeCommand));
		command->node = node;
		command->sql = psprintf("CREATE SCHEMA IF NOT EXISTS %s",
								quote_identifier(get_namespace_name(RelationGetNamespace(rel))));
		commands = lappend(commands, command);
		foreach(cc, shard_create_commands(rel, entry->shards[0].shardId))
		{
			command = palloc(sizeof(NodeCommand));
			command->node = node;
			command->sql = lfirst(cc);
			commands = lappend(commands, command);
		}
		ExecuteOnNodesInParallel(commands);

		initStringInfo(&columns);
		AppendColumnList(&columns, rel, NULL, false);
		copy_between_nodes(LookupNodeById(entry->placementNodeIds[0], false), node,
						   ShardQualifiedName(relid, entry->shards[0].shardId), columns.data);

		values[0] = Int64GetDatum(entry->shards[0].shardId);
		values[1] = Int32GetDatum(node->nodeId);
		ExecuteCatalogWrite("INSERT INTO shardexec.placement (shard_id, node_id) VALUES ($1, $2)",
							2, argtypes, values);
		InvalidateDistTableCache(relid);
		table_close(rel, NoLock);
	}
}

/*
 * drop_shard_sql returns the command that drops a shard's table.
 */
static char *
drop_shard_sql(Oid relid, int64 shardId, void *arg)
{
	return psprintf("DROP TABLE IF EXISTS %s", ShardQualifiedName(relid, shardId));
}

/*
 * shardexec_undistribute_table implements
 * shardexec.undistribute_table(table_name): the rows come back into the
 * local table, the shards are dropped and the metadata removed.
 */
Datum
shardexec_undistribute_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	DistTableEntry *entry;
	RemoteRowConverter *converter;
	TupleTableSlot *slot;
	EState	   *estate;
	ResultRelInfo *resultRelInfo;
	int			i;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	rel = table_open(relid, AccessExclusiveLock);
	CheckDistributedTableOwner(relid);
	entry = LookupDistTable(relid);
	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table \"%s\" is not distributed", RelationGetRelationName(rel))));

	/* bring the rows back, with the table's indexes and constraints */
	estate = CreateExecutorState();
	resultRelInfo = makeNode(ResultRelInfo);
	InitResultRelInfo(resultRelInfo, rel, 1, NULL, 0);
	ExecOpenIndices(resultRelInfo, false);
	converter = MakeRemoteRowConverter(RelationGetDescr(rel), true);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);

	for (i = 0; i < entry->shardCount; i++)
	{
		ShardInterval *shard = &entry->shards[i];
		ShardexecNode *node = linitial(ShardPlacementNodes(entry, shard));
		PGconn	   *conn = GetNodeConnection(node, CONNECTION_IN_TRANSACTION);
		char	   *sql = DeparseShardSelect(rel, shard->shardId);
		PGresult   *res;

		SendRemoteQuery(conn, node->nodeName, sql, 0, NULL);
		if (!PQsetSingleRowMode(conn))
			elog(ERROR, "could not set single-row mode");
		while ((res = GetRemoteResult(conn, node->nodeName)) != NULL)
		{
			if (PQresultStatus(res) == PGRES_SINGLE_TUPLE)
			{
				ExprContext *econtext = GetPerTupleExprContext(estate);
				MemoryContext oldContext;

				/* the row's values live in the per-row context */
				oldContext = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
				StoreRemoteRow(converter, res, 0, slot);
				MemoryContextSwitchTo(oldContext);
				PQclear(res);
				if (rel->rd_att->constr)
					ExecConstraints(resultRelInfo, slot, estate);
				table_tuple_insert(rel, slot, GetCurrentCommandId(true), 0, NULL);
				if (resultRelInfo->ri_NumIndices > 0)
					list_free(ExecInsertIndexTuples(resultRelInfo, slot, estate,
													false, false, NULL, NIL));
				ResetExprContext(econtext);
				CHECK_FOR_INTERRUPTS();
			}
			else if (PQresultStatus(res) == PGRES_TUPLES_OK)
				PQclear(res);
			else
			{
				DrainRemoteResults(conn, node->nodeName);
				ReportRemoteError(res, conn, node->nodeName, sql);
			}
		}
		ReleaseNodeConnection(conn);
	}
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(resultRelInfo);
	FreeExecutorState(estate);

	/* drop the shards */
	RunOnShards(entry, drop_shard_sql, NULL);

	values[0] = ObjectIdGetDatum(relid);
	ExecuteCatalogWrite("DELETE FROM shardexec.dist_table WHERE table_id = $1",
						1, argtypes, values);
	ExecuteCatalogWrite("DELETE FROM shardexec.colocation c WHERE c.distribution_type IS NOT NULL "
						"AND NOT EXISTS (SELECT 1 FROM shardexec.dist_table d "
						"WHERE d.colocation_id = c.colocation_id)", 0, NULL, NULL);
	InvalidateDistTableCache(relid);
	table_close(rel, NoLock);

	PG_RETURN_VOID();
}

/*
 * shardexec_shard_id_for_value implements
 * shardexec.shard_id_for_value(table_name, value): the shard that holds
 * (or would hold) rows whose distribution column equals value.  A value
 * of another type is converted to the column's type first.
 */
Datum
shardexec_shard_id_for_value(PG_FUNCTION_ARGS)
{
	Oid			relid;
	DistTableEntry *entry;
	Datum		value;
	Oid			valueType = get_fn_expr_argtype(fcinfo->flinfo, 1);

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	entry = LookupDistTable(relid);
	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table \"%s\" is not distributed", get_rel_name(relid))));
	if (entry->kind == DIST_KIND_REFERENCE)
		PG_RETURN_INT64(entry->shards[0].shardId);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the distribution column cannot be null")));

	value = PG_GETARG_DATUM(1);
	if (valueType != entry->distType)
	{
		Oid			outFunc;
		Oid			inFunc;
		Oid			ioParam;
		bool		isVarlena;
		char	   *text;

		getTypeOutputInfo(valueType, &outFunc, &isVarlena);
		getTypeInputInfo(entry->distType, &inFunc, &ioParam);
		text = OidOutputFunctionCall(outFunc, value);
		value = OidInputFunctionCall(inFunc, text, ioParam, -1);
	}

	PG_RETURN_INT64(FindShardForValue(entry, value)->shardId);
}

/*
 * shardexec_shard_table_name implements shardexec.shard_table_name(
 * table_name, shard_id): the qualified name of a shard's table.
 */
Datum
shardexec_shard_table_name(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int64		shardId = PG_GETARG_INT64(1);

	if (get_rel_name(relid) == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(ShardQualifiedName(relid, shardId)));
}
