/*-------------------------------------------------------------------------
 *
 * executor_testing.c
 *		  A test entry point into the distributed executor.
 *
 * shardexec_test_execute runs one unit per shard of a distributed table
 * through the distributed executor with the options that no SQL path
 * uses yet (until the pushdown planner does): a filter with parameters,
 * an ordered k-way merge, and an early end after a number of rows.  It
 * is not part of the extension's SQL interface; tests declare it
 * themselves:
 *
 *	 CREATE FUNCTION test_execute(rel regclass, filter text, order_by text,
 *								  max_rows bigint, params text[])
 *	 RETURNS SETOF record AS 'shardexec', 'shardexec_test_execute' LANGUAGE C;
 *	 SELECT * FROM test_execute('t', 'id > $1', 'id', 10, '{100}')
 *		 AS r(id bigint, v text);
 *
 * filter is SQL appended as a WHERE clause to every shard's query,
 * order_by a column name (the rows come back in its ascending order, its
 * type's default sort order, nulls last), max_rows a number of rows after
 * which the execution is ended early (NULL: all), params the text values
 * of $1.. (types left to the node).  The table must have no dropped
 * columns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "shardexec/executor.h"
#include "shardexec/fdw.h"
#include "shardexec/metadata.h"

PG_FUNCTION_INFO_V1(shardexec_test_execute);

/*
 * shardexec_test_execute implements the test function described above.
 */
Datum
shardexec_test_execute(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = PG_GETARG_OID(0);
	char	   *filter = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *orderBy = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	int64		maxRows = PG_ARGISNULL(3) ? -1 : PG_GETARG_INT64(3);
	Relation	rel;
	TupleDesc	tupdesc;
	DistTableEntry *entry;
	List	   *units = NIL;
	ExecutionMerge merge;
	AttrNumber	sortAttnum = InvalidAttrNumber;
	Oid			sortOperator = InvalidOid;
	Oid			collation = InvalidOid;
	bool		nullsFirst = false;
	int			nParams = 0;
	char	  **paramValues = NULL;
	DistributedExecution *execution;
	TupleTableSlot *slot;
	int64		rows = 0;
	int			i;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	rel = relation_open(relid, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	entry = LookupDistTable(relid);
	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table \"%s\" is not distributed", RelationGetRelationName(rel))));
	for (i = 0; i < tupdesc->natts; i++)
	{
		if (TupleDescAttr(tupdesc, i)->attisdropped)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table \"%s\" has dropped columns", RelationGetRelationName(rel))));
	}
	if (rsinfo->expectedDesc == NULL || rsinfo->expectedDesc->natts != tupdesc->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the column definition list must have the table's %d columns",
						tupdesc->natts)));

	if (orderBy != NULL)
	{
		TypeCacheEntry *typentry;

		sortAttnum = get_attnum(relid, orderBy);
		if (sortAttnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" does not exist", orderBy)));
		typentry = lookup_type_cache(TupleDescAttr(tupdesc, sortAttnum - 1)->atttypid,
									 TYPECACHE_LT_OPR);
		sortOperator = typentry->lt_opr;
		collation = TupleDescAttr(tupdesc, sortAttnum - 1)->attcollation;
	}

	if (!PG_ARGISNULL(4))
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(4), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &nParams);
		paramValues = palloc(sizeof(char *) * Max(nParams, 1));
		for (i = 0; i < nParams; i++)
			paramValues[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	}

	for (i = 0; i < entry->shardCount; i++)
	{
		ShardInterval *shard = &entry->shards[i];
		ShardexecNode *node = linitial(ShardPlacementNodes(entry, shard));
		ExecutionUnit *unit = palloc0(sizeof(ExecutionUnit));
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfoString(&sql, DeparseShardSelect(rel, shard->shardId));
		if (filter != NULL)
			appendStringInfo(&sql, " WHERE %s", filter);
		if (orderBy != NULL)
			appendStringInfo(&sql, " ORDER BY %s", quote_identifier(orderBy));
		unit->nodeId = node->nodeId;
		unit->shardId = shard->shardId;
		unit->sql = sql.data;
		units = lappend(units, unit);
	}

	merge.nkeys = orderBy != NULL ? 1 : 0;
	merge.attnums = &sortAttnum;
	merge.sortOperators = &sortOperator;
	merge.collations = &collation;
	merge.nullsFirst = &nullsFirst;

	slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(tupdesc), &TTSOpsVirtual);
	execution = BeginDistributedExecution(units, tupdesc, &merge, nParams,
										  (const char *const *) paramValues, NULL);
	while ((maxRows < 0 || rows < maxRows) &&
		   DistributedExecutionNextRow(execution, slot))
	{
		slot_getallattrs(slot);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 slot->tts_values, slot->tts_isnull);
		rows++;
		CHECK_FOR_INTERRUPTS();
	}
	EndDistributedExecution(execution);
	ExecDropSingleTupleTableSlot(slot);
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}
