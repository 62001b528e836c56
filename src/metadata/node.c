/*-------------------------------------------------------------------------
 *
 * node.c
 *		  add_node, remove_node, add_replica, and writes to the catalog.
 *
 * A node is a foreign server of the shardexec wrapper whose name is the
 * node's name, plus a row in shardexec.node that gives it the id that
 * placements refer to.  add_node creates both and then checks that the
 * node answers and is a primary; any failure rolls everything back, so
 * nothing is recorded for a node that cannot be used.
 *
 * Catalog writes go through SPI as the extension's owner, so that a role
 * allowed to distribute its own tables (or granted EXECUTE on add_node)
 * needs no privilege on the catalog tables themselves.
 *
 * Privileges: add_node, remove_node and add_replica are not executable by
 * PUBLIC; EXECUTE on them is all a role needs to manage nodes.  So the
 * foreign servers are created and dropped as the extension's owner (who
 * owns every node's server, whichever role added it), and a caller that is
 * not a superuser has the reachability check made as the extension's owner
 * too: it could not have a user mapping for a server that does not exist
 * yet, and without one a non-superuser may not connect.  A superuser's
 * check goes through its own user mapping, if any.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "shardexec/connection.h"
#include "shardexec/fdw.h"
#include "shardexec/metadata.h"

PG_FUNCTION_INFO_V1(shardexec_add_node);
PG_FUNCTION_INFO_V1(shardexec_remove_node);
PG_FUNCTION_INFO_V1(shardexec_add_replica);

static void check_port(int port);
static void lock_topology(void);

/*
 * ExecuteCatalogWrite runs one INSERT, UPDATE or DELETE on shardexec's
 * catalog as the extension's owner, with the given parameters.
 */
void
ExecuteCatalogWrite(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	Oid			savedUserId;
	int			savedSecContext;
	int			rc;

	GetUserIdAndSecContext(&savedUserId, &savedSecContext);
	SetUserIdAndSecContext(ShardexecExtensionOwner(),
						   savedSecContext | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, false, 0);
		if (rc < 0)
			elog(ERROR, "shardexec catalog write failed: %s", SPI_result_code_string(rc));
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(savedUserId, savedSecContext);
	}
	PG_END_TRY();
	CommandCounterIncrement();
}

/*
 * NextCatalogSequenceValue returns the next value of one of shardexec's
 * sequences, called as the extension's owner.
 */
int64
NextCatalogSequenceValue(const char *sequenceName)
{
	Oid			seqId = get_relname_relid(sequenceName, ShardexecSchemaId());
	Oid			savedUserId;
	int			savedSecContext;
	int64		value;

	if (!OidIsValid(seqId))
		elog(ERROR, "shardexec sequence \"%s\" does not exist", sequenceName);

	GetUserIdAndSecContext(&savedUserId, &savedSecContext);
	SetUserIdAndSecContext(ShardexecExtensionOwner(),
						   savedSecContext | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		value = DatumGetInt64(DirectFunctionCall1(nextval_oid, ObjectIdGetDatum(seqId)));
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(savedUserId, savedSecContext);
	}
	PG_END_TRY();
	return value;
}

/*
 * lock_topology serialises changes of the set of nodes.
 */
static void
lock_topology(void)
{
	LockRelationOid(get_relname_relid("node", ShardexecSchemaId()),
					ShareRowExclusiveLock);
}

static void
check_port(int port)
{
	if (port < 1 || port > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid port %d", port),
				 errdetail("A port is an integer between 1 and 65535.")));
}

/*
 * run_utility_as_owner runs one utility command built by shardexec (a
 * CREATE or DROP of a node's foreign server) through SPI, as the
 * extension's owner.
 */
static void
run_utility_as_owner(const char *sql)
{
	Oid			savedUserId;
	int			savedSecContext;

	GetUserIdAndSecContext(&savedUserId, &savedSecContext);
	SetUserIdAndSecContext(ShardexecExtensionOwner(),
						   savedSecContext | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(sql, false, 0) < 0)
			elog(ERROR, "could not run \"%s\"", sql);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(savedUserId, savedSecContext);
	}
	PG_END_TRY();
	CommandCounterIncrement();
}

/*
 * shardexec_add_node implements shardexec.add_node(node_name, host, port,
 * dbname): it creates the node's foreign server, records the node and
 * checks that it answers as a primary.  Returns the new node's id.
 */
Datum
shardexec_add_node(PG_FUNCTION_ARGS)
{
	char	   *nodeName;
	char	   *host;
	int			port;
	char	   *dbname;
	StringInfoData sql;
	ForeignServer *server;
	ShardexecNode node;
	int32		nodeId;
	PGconn	   *volatile conn = NULL;
	Oid			savedUserId;
	int			savedSecContext;
	Oid			argtypes[2] = {INT4OID, NAMEOID};
	Datum		values[2];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("node_name, host and port must not be null")));

	nodeName = text_to_cstring(PG_GETARG_TEXT_PP(0));
	host = text_to_cstring(PG_GETARG_TEXT_PP(1));
	port = PG_GETARG_INT32(2);
	dbname = PG_ARGISNULL(3) ? get_database_name(MyDatabaseId) :
		text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (nodeName[0] == '\0' || strlen(nodeName) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid node name \"%s\"", nodeName),
				 errdetail("A node name must have between 1 and %d bytes.", NAMEDATALEN - 1)));
	if (host[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("host must not be empty")));
	check_port(port);
	if (dbname[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dbname must not be empty")));

	lock_topology();

	if (LookupNodeByName(nodeName, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("node \"%s\" already exists", nodeName)));
	if (GetForeignServerByName(nodeName, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("server \"%s\" already exists", nodeName),
				 errhint("A node's name is the name of its foreign server; choose another name.")));

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE SERVER %s FOREIGN DATA WRAPPER shardexec OPTIONS (host ",
					 quote_identifier(nodeName));
	AppendStringLiteral(&sql, host);
	appendStringInfo(&sql, ", port '%d', dbname ", port);
	AppendStringLiteral(&sql, dbname);
	appendStringInfoChar(&sql, ')');
	run_utility_as_owner(sql.data);

	server = GetForeignServerByName(nodeName, false);
	nodeId = (int32) NextCatalogSequenceValue("node_id_seq");
	values[0] = Int32GetDatum(nodeId);
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(nodeName));
	ExecuteCatalogWrite("INSERT INTO shardexec.node (node_id, node_name) VALUES ($1, $2)",
						2, argtypes, values);
	InvalidateNodeCache();

	/*
	 * the node must answer, and must be a primary; a caller that is not a
	 * superuser checks as the extension's owner (see the file header)
	 */
	node.nodeId = nodeId;
	node.nodeName = nodeName;
	node.serverId = server->serverid;
	GetUserIdAndSecContext(&savedUserId, &savedSecContext);
	PG_TRY();
	{
		PGresult   *res;

		if (!superuser())
			SetUserIdAndSecContext(ShardexecExtensionOwner(),
								   savedSecContext | SECURITY_LOCAL_USERID_CHANGE);
		conn = ConnectToNodeDirectly(&node);
		res = ExecuteRemoteQuery(conn, nodeName, "SELECT pg_catalog.pg_is_in_recovery()",
								 0, NULL, PGRES_TUPLES_OK);
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" is a standby", nodeName),
					 errhint("Add the primary with add_node and the standby with add_replica.")));
		}
		PQclear(res);
	}
	PG_FINALLY();
	{
		if (conn != NULL)
			PQfinish(conn);
		SetUserIdAndSecContext(savedUserId, savedSecContext);
	}
	PG_END_TRY();

	/* a reference table has a copy on every node, this one included */
	ReplicateReferenceTablesToNode(LookupNodeById(nodeId, false));

	PG_RETURN_INT32(nodeId);
}

/*
 * shardexec_remove_node implements shardexec.remove_node(node_name): it
 * refuses while any shard is placed on the node, and otherwise drops the
 * node's record, replicas, foreign server and user mappings.
 */
Datum
shardexec_remove_node(PG_FUNCTION_ARGS)
{
	char	   *nodeName = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ShardexecNode *node;
	StringInfoData sql;
	int			rc;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];

	lock_topology();
	node = LookupNodeByName(nodeName, false);
	values[0] = Int32GetDatum(node->nodeId);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT pg_catalog.string_agg(DISTINCT s.table_id::text, ', ') "
							   "FROM shardexec.placement p JOIN shardexec.shard s USING (shard_id) "
							   "WHERE p.node_id = $1",
							   1, argtypes, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the placements of node \"%s\"", nodeName);
	{
		bool		isnull;
		Datum		tables = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot remove node \"%s\" because it holds shards", nodeName),
					 errdetail("Shards of these tables are placed on it: %s.",
							   TextDatumGetCString(tables)),
					 errhint("Undistribute or drop those tables first.")));
	}
	SPI_finish();

	ExecuteCatalogWrite("DELETE FROM shardexec.replica WHERE node_id = $1", 1, argtypes, values);
	ExecuteCatalogWrite("DELETE FROM shardexec.node WHERE node_id = $1", 1, argtypes, values);
	InvalidateNodeCache();

	initStringInfo(&sql);
	appendStringInfo(&sql, "DROP SERVER %s CASCADE", quote_identifier(nodeName));
	run_utility_as_owner(sql.data);

	PG_RETURN_VOID();
}

/*
 * shardexec_add_replica implements shardexec.add_replica(node_name, host,
 * port): it adds a streaming replica of the node's primary to the node's
 * host list.
 */
Datum
shardexec_add_replica(PG_FUNCTION_ARGS)
{
	char	   *nodeName = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *host = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			port = PG_GETARG_INT32(2);
	ShardexecNode *node;
	Oid			argtypes[3] = {INT4OID, TEXTOID, INT4OID};
	Datum		values[3];
	int			rc;

	if (host[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("host must not be empty")));
	check_port(port);

	lock_topology();
	node = LookupNodeByName(nodeName, false);
	values[0] = Int32GetDatum(node->nodeId);
	values[1] = CStringGetTextDatum(host);
	values[2] = Int32GetDatum(port);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT 1 FROM shardexec.replica "
							   "WHERE node_id = $1 AND host = $2 AND port = $3",
							   3, argtypes, values, NULL, true, 0);
	if (rc == SPI_OK_SELECT && SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("replica %s:%d of node \"%s\" already exists", host, port, nodeName)));
	SPI_finish();

	ExecuteCatalogWrite("INSERT INTO shardexec.replica (node_id, host, port) VALUES ($1, $2, $3)",
						3, argtypes, values);
	InvalidateNodeCache();

	PG_RETURN_VOID();
}
