/*-------------------------------------------------------------------------
 *
 * deparse.c
 *		  SQL text sent to the nodes.
 *
 * Every identifier is quoted with quote_identifier() and every literal
 * with the standard escaping, and every relation is schema-qualified, so
 * that names with quotes, spaces or upper case work and the nodes'
 * search_path (set to pg_catalog by connection.c) cannot change what the
 * SQL means.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "shardexec/fdw.h"
#include "shardexec/metadata.h"

/*
 * AppendQualifiedShardName appends the quoted, schema-qualified name of
 * shard shardId of relation relid.
 */
void
AppendQualifiedShardName(StringInfo buf, Oid relid, int64 shardId)
{
	appendStringInfoString(buf, ShardQualifiedName(relid, shardId));
}

/*
 * AppendColumnList appends the quoted names of rel's columns that are not
 * dropped (nor, unless includeGenerated, generated), separated by commas,
 * each after prefix.
 */
void
AppendColumnList(StringInfo buf, Relation rel, const char *prefix,
				 bool includeGenerated)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	bool		first = true;
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);

		if (attr->attisdropped || (attr->attgenerated && !includeGenerated))
			continue;
		if (!first)
			appendStringInfoString(buf, ", ");
		first = false;
		if (prefix != NULL)
			appendStringInfoString(buf, prefix);
		appendStringInfoString(buf, quote_identifier(NameStr(attr->attname)));
	}
}

/*
 * DeparseShardSelect returns the query that reads every row of shard
 * shardId of rel, with the columns of rel (dropped columns excepted) in
 * attribute order.
 */
char *
DeparseShardSelect(Relation rel, int64 shardId)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	AppendColumnList(&buf, rel, NULL, true);
	appendStringInfoString(&buf, " FROM ");
	AppendQualifiedShardName(&buf, RelationGetRelid(rel), shardId);
	return buf.data;
}

/*
 * DeparseShardInsertPrefix returns "COPY shard (columns) FROM STDIN",
 * the command that loads rows into shard shardId of rel.
 */
char *
DeparseShardInsertPrefix(Relation rel, int64 shardId)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "COPY ");
	AppendQualifiedShardName(&buf, RelationGetRelid(rel), shardId);
	appendStringInfoString(&buf, " (");
	AppendColumnList(&buf, rel, NULL, false);
	appendStringInfoString(&buf, ") FROM STDIN");
	return buf.data;
}

/*
 * AppendStringLiteral appends val as a standard SQL string literal,
 * using the E'' form when it contains a backslash.
 */
void
AppendStringLiteral(StringInfo buf, const char *val)
{
	const char *c;

	if (strchr(val, '\\') != NULL)
		appendStringInfoChar(buf, 'E');
	appendStringInfoChar(buf, '\'');
	for (c = val; *c; c++)
	{
		if (SQL_STR_DOUBLE(*c, true))
			appendStringInfoChar(buf, *c);
		appendStringInfoChar(buf, *c);
	}
	appendStringInfoChar(buf, '\'');
}
