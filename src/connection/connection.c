/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  The backend's connections to nodes and the remote transactions
 *		  that follow the local one.
 *
 * Connections are kept in a hash table keyed by (foreign server, user)
 * and reused across statements and transactions.  A connection is opened
 * without blocking (PQconnectStartParams and PQconnectPoll on the
 * backend's latch), so that a node that does not answer fails the
 * statement after shardexec.connect_timeout and a cancel request is
 * honoured while connecting.
 *
 * Remote transactions: the first time a connection is used for a
 * distributed table inside a local transaction, a remote transaction is
 * started with the local isolation level and read-only flag; savepoints
 * are mirrored lazily, one level at a time, as postgres_fdw does.  At
 * pre-commit every remote transaction is committed; on abort each one is
 * rolled back, after a cancel request if a query was still running.  A
 * connection whose state cannot be restored is closed, never reused.
 *
 * When a foreign server or user mapping changes, the syscache callbacks
 * mark the connections built from it; they are closed as soon as no
 * remote transaction is open on them.
 *
 * Connection options: the foreign server's options (host, port, dbname
 * and any libpq option) and the user mapping's (user, password); with no
 * user mapping the local role name is used as the remote user.  As in
 * postgres_fdw, a non-superuser must connect with a password.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "shardexec/connection.h"
#include "shardexec/shardexec.h"

typedef struct ConnCacheKey
{
	Oid			serverId;
	Oid			userId;
} ConnCacheKey;

typedef struct ConnCacheEntry
{
	ConnCacheKey key;			/* hash key, must be first */
	PGconn	   *conn;			/* NULL if not connected */
	char	   *nodeName;		/* malloc'd: valid while conn is */
	int			xactDepth;		/* 0 = no remote xact, 1 = main, >1 = savepoints */
	bool		modified;		/* wrote something in this transaction */
	bool		changingXactState;	/* an xact command is in flight */
	bool		invalidated;	/* server or user mapping changed */
	uint32		serverHashValue;
	uint32		mappingHashValue;
} ConnCacheEntry;

static HTAB *connectionHash = NULL;

/* whether any connection has a remote transaction open */
static bool xactGotConnection = false;

static ConnCacheEntry *find_connection_entry(PGconn *conn);
static PGconn *connect_to_node(ShardexecNode *node, Oid userId);
static void configure_remote_session(PGconn *conn, const char *nodeName);
static void begin_remote_xact(ConnCacheEntry *entry);
static void disconnect_entry(ConnCacheEntry *entry);
static void connection_xact_callback(XactEvent event, void *arg);
static void connection_subxact_callback(SubXactEvent event,
										SubTransactionId mySubid,
										SubTransactionId parentSubid,
										void *arg);
static void connection_inval_callback(Datum arg, int cacheid, uint32 hashvalue);
static bool rollback_remote(ConnCacheEntry *entry, const char *command);

/*
 * InitConnectionManagement registers the transaction and invalidation
 * callbacks.  Called once from _PG_init.
 */
void
InitConnectionManagement(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(ConnCacheKey);
	ctl.entrysize = sizeof(ConnCacheEntry);
	connectionHash = hash_create("shardexec connections", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS);

	RegisterXactCallback(connection_xact_callback, NULL);
	RegisterSubXactCallback(connection_subxact_callback, NULL);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, connection_inval_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, connection_inval_callback, (Datum) 0);
}

/*
 * GetNodeConnection returns the current user's connection to node,
 * opening it if needed.  With CONNECTION_IN_TRANSACTION the connection is
 * inside a remote transaction (and savepoints) matching the local one.
 * The connection belongs to the cache: call ReleaseNodeConnection, never
 * PQfinish.
 */
PGconn *
GetNodeConnection(ShardexecNode *node, ConnectionPurpose purpose)
{
	ConnCacheKey key;
	ConnCacheEntry *entry;
	bool		found;

	key.serverId = node->serverId;
	key.userId = GetUserId();

	entry = hash_search(connectionHash, &key, HASH_ENTER, &found);
	if (!found)
	{
		entry->conn = NULL;
		entry->nodeName = NULL;
	}

	/* drop a connection that is broken or whose options changed */
	if (entry->conn != NULL && entry->xactDepth == 0 &&
		(entry->invalidated || PQstatus(entry->conn) != CONNECTION_OK))
		disconnect_entry(entry);

	if (entry->conn == NULL)
	{
		entry->xactDepth = 0;
		entry->modified = false;
		entry->changingXactState = false;
		entry->invalidated = false;
		entry->serverHashValue =
			GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(key.serverId));
		entry->mappingHashValue = 0;
		entry->conn = connect_to_node(node, key.userId);
		entry->nodeName = strdup(node->nodeName);
		if (entry->nodeName == NULL)
		{
			PQfinish(entry->conn);
			entry->conn = NULL;
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		}
	}
	else if (entry->changingXactState || PQstatus(entry->conn) != CONNECTION_OK)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_EXCEPTION),
				 errmsg("connection to node \"%s\" was lost", node->nodeName)));

	if (purpose == CONNECTION_IN_TRANSACTION)
		begin_remote_xact(entry);

	return entry->conn;
}

/*
 * ReleaseNodeConnection tells the cache that the caller no longer uses
 * conn.  The connection stays open for reuse.
 */
void
ReleaseNodeConnection(PGconn *conn)
{
	(void) conn;
}

/*
 * MarkConnectionModified records that conn wrote data in the current
 * transaction.
 */
void
MarkConnectionModified(PGconn *conn)
{
	ConnCacheEntry *entry = find_connection_entry(conn);

	if (entry != NULL)
		entry->modified = true;
}

/*
 * ConnectToNodeDirectly opens a connection to node that does not belong
 * to the cache and is in no transaction.  The caller must PQfinish it,
 * also on error (PG_FINALLY).
 */
PGconn *
ConnectToNodeDirectly(ShardexecNode *node)
{
	return connect_to_node(node, GetUserId());
}

static ConnCacheEntry *
find_connection_entry(PGconn *conn)
{
	HASH_SEQ_STATUS scan;
	ConnCacheEntry *entry;

	hash_seq_init(&scan, connectionHash);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry->conn == conn)
		{
			hash_seq_term(&scan);
			return entry;
		}
	}
	return NULL;
}

/*
 * find_user_mapping returns userId's user mapping for serverId, the
 * PUBLIC one if it has none, or NULL.
 */
static UserMapping *
find_user_mapping(Oid userId, Oid serverId)
{
	HeapTuple	tuple;

	tuple = SearchSysCache2(USERMAPPINGUSERSERVER,
							ObjectIdGetDatum(userId), ObjectIdGetDatum(serverId));
	if (!HeapTupleIsValid(tuple))
		tuple = SearchSysCache2(USERMAPPINGUSERSERVER,
								ObjectIdGetDatum(InvalidOid), ObjectIdGetDatum(serverId));
	if (!HeapTupleIsValid(tuple))
		return NULL;
	ReleaseSysCache(tuple);
	return GetUserMapping(userId, serverId);
}

/*
 * connect_to_node opens a connection to node as userId without blocking
 * the backend: it waits on the latch and the socket, honours interrupts
 * and gives up after shardexec.connect_timeout.
 */
static PGconn *
connect_to_node(ShardexecNode *node, Oid userId)
{
	ForeignServer *server = GetForeignServer(node->serverId);
	UserMapping *mapping = find_user_mapping(userId, node->serverId);
	List	   *options = list_copy(server->options);
	int			n;
	const char **keywords;
	const char **values;
	ListCell   *lc;
	bool		haveUser = false;
	bool		havePassword = false;
	PGconn	   *volatile conn = NULL;
	TimestampTz deadline;

	if (mapping != NULL)
		options = list_concat(options, mapping->options);

	n = list_length(options) + 4;
	keywords = palloc(n * sizeof(char *));
	values = palloc(n * sizeof(char *));
	n = 0;
	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);

		keywords[n] = def->defname;
		values[n] = defGetString(def);
		if (strcmp(def->defname, "user") == 0)
			haveUser = true;
		if (strcmp(def->defname, "password") == 0 && values[n][0] != '\0')
			havePassword = true;
		n++;
	}
	if (!haveUser)
	{
		keywords[n] = "user";
		values[n] = GetUserNameFromId(userId, false);
		n++;
	}
	keywords[n] = "fallback_application_name";
	values[n] = "shardexec";
	n++;
	keywords[n] = "client_encoding";
	values[n] = GetDatabaseEncodingName();
	n++;
	keywords[n] = NULL;
	values[n] = NULL;

	if (!superuser_arg(userId) && !havePassword)
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required to connect to node \"%s\"", node->nodeName),
				 errdetail("Non-superusers must provide a password in the user mapping.")));

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   ShardexecConnectTimeout * 1000);

	PG_TRY();
	{
		PostgresPollingStatusType status = PGRES_POLLING_WRITING;

		conn = PQconnectStartParams(keywords, values, false);
		if (conn == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while connecting to node \"%s\"",
							node->nodeName)));

		while (PQstatus(conn) != CONNECTION_BAD && status != PGRES_POLLING_OK)
		{
			int			events;
			long		timeout;
			int			rc;

			if (status == PGRES_POLLING_FAILED)
				break;

			timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (timeout <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
						 errmsg("could not connect to node \"%s\": timeout after %d seconds",
								node->nodeName, ShardexecConnectTimeout),
						 errhint("Check that the node is running, or raise shardexec.connect_timeout.")));

			events = (status == PGRES_POLLING_READING) ? WL_SOCKET_READABLE :
				WL_SOCKET_WRITEABLE;
			rc = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
								   PQsocket(conn), timeout, PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			if (rc & events)
				status = PQconnectPoll(conn);
		}

		if (PQstatus(conn) != CONNECTION_OK)
		{
			char	   *msg = pchomp(PQerrorMessage(conn));

			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to node \"%s\"", node->nodeName),
					 errdetail_internal("%s", msg)));
		}

		if (!superuser_arg(userId) && !PQconnectionUsedPassword(conn))
			ereport(ERROR,
					(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
					 errmsg("password is required to connect to node \"%s\"", node->nodeName),
					 errdetail("Non-superuser cannot connect if the node does not request a password."),
					 errhint("Target node's authentication method must be changed.")));

		configure_remote_session(conn, node->nodeName);
	}
	PG_CATCH();
	{
		if (conn != NULL)
			PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();

	pfree(keywords);
	pfree(values);
	return conn;
}

/*
 * configure_remote_session fixes the settings that decide how values are
 * printed and parsed, and the search path, so that the SQL shardexec
 * generates means the same on every node.  Values cross in these fixed
 * formats; the coordinator converts them under the same settings (see
 * remote_command.c).
 */
static void
configure_remote_session(PGconn *conn, const char *nodeName)
{
	ExecuteRemoteCommand(conn, nodeName,
						 "SET search_path = pg_catalog; SET timezone = 'UTC'; "
						 "SET datestyle = ISO; SET intervalstyle = postgres; "
						 "SET extra_float_digits = 3");
}

/*
 * begin_remote_xact starts the remote transaction, and the savepoints of
 * the current subtransaction nesting, on entry's connection.
 */
static void
begin_remote_xact(ConnCacheEntry *entry)
{
	int			curlevel = GetCurrentTransactionNestLevel();

	if (entry->xactDepth <= 0)
	{
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfoString(&sql, "START TRANSACTION ISOLATION LEVEL ");
		switch (XactIsoLevel)
		{
			case XACT_SERIALIZABLE:
				appendStringInfoString(&sql, "SERIALIZABLE");
				break;
			case XACT_REPEATABLE_READ:
				appendStringInfoString(&sql, "REPEATABLE READ");
				break;
			default:
				appendStringInfoString(&sql, "READ COMMITTED");
				break;
		}
		if (XactReadOnly)
			appendStringInfoString(&sql, " READ ONLY");

		entry->changingXactState = true;
		ExecuteRemoteCommand(entry->conn, entry->nodeName, sql.data);
		entry->changingXactState = false;
		entry->xactDepth = 1;
		xactGotConnection = true;
		pfree(sql.data);
	}

	while (entry->xactDepth < curlevel)
	{
		char		sql[64];

		snprintf(sql, sizeof(sql), "SAVEPOINT s%d", entry->xactDepth + 1);
		entry->changingXactState = true;
		ExecuteRemoteCommand(entry->conn, entry->nodeName, sql);
		entry->changingXactState = false;
		entry->xactDepth++;
	}
}

/*
 * disconnect_entry closes entry's connection.
 */
static void
disconnect_entry(ConnCacheEntry *entry)
{
	if (entry->conn != NULL)
	{
		PQfinish(entry->conn);
		entry->conn = NULL;
	}
	if (entry->nodeName != NULL)
	{
		free(entry->nodeName);
		entry->nodeName = NULL;
	}
	entry->xactDepth = 0;
	entry->modified = false;
	entry->changingXactState = false;
}

/*
 * rollback_remote brings entry's connection back to a known state with
 * command (ROLLBACK or ROLLBACK TO SAVEPOINT), after cancelling a running
 * query.  It never throws: on any failure it returns false and the
 * caller closes the connection.
 */
static bool
rollback_remote(ConnCacheEntry *entry, const char *command)
{
	PGresult   *res;

	if (entry->conn == NULL || PQstatus(entry->conn) != CONNECTION_OK)
		return false;

	if (PQtransactionStatus(entry->conn) == PQTRANS_ACTIVE)
	{
		CancelRemoteQuery(entry->conn);
		/* read and discard what the cancelled query still sends */
		while ((res = PQgetResult(entry->conn)) != NULL)
		{
			PQclear(res);
			if (PQstatus(entry->conn) != CONNECTION_OK)
				return false;
		}
	}

	res = PQexec(entry->conn, command);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

/*
 * connection_xact_callback commits or rolls back the remote transactions
 * with the local one.  An error while committing aborts the local
 * transaction, which rolls back what is left.
 */
static void
connection_xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS scan;
	ConnCacheEntry *entry;

	if (!xactGotConnection)
		return;

	hash_seq_init(&scan, connectionHash);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry->conn == NULL || entry->xactDepth == 0)
			continue;

		switch (event)
		{
			case XACT_EVENT_PARALLEL_PRE_COMMIT:
			case XACT_EVENT_PRE_COMMIT:
				entry->changingXactState = true;
				ExecuteRemoteCommand(entry->conn, entry->nodeName, "COMMIT TRANSACTION");
				entry->changingXactState = false;
				break;
			case XACT_EVENT_PRE_PREPARE:
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has used distributed tables")));
				break;
			case XACT_EVENT_PARALLEL_COMMIT:
			case XACT_EVENT_COMMIT:
			case XACT_EVENT_PREPARE:
				break;
			case XACT_EVENT_PARALLEL_ABORT:
			case XACT_EVENT_ABORT:
				if (entry->changingXactState ||
					!rollback_remote(entry, "ROLLBACK TRANSACTION"))
				{
					disconnect_entry(entry);
					continue;
				}
				break;
		}

		if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
			event == XACT_EVENT_PARALLEL_COMMIT ||
			event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
		{
			entry->xactDepth = 0;
			entry->modified = false;
			if (entry->invalidated || PQstatus(entry->conn) != CONNECTION_OK ||
				PQtransactionStatus(entry->conn) != PQTRANS_IDLE)
				disconnect_entry(entry);
		}
	}

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
		xactGotConnection = false;
}

/*
 * connection_subxact_callback releases or rolls back the remote
 * savepoint of the subtransaction that ends.
 */
static void
connection_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS scan;
	ConnCacheEntry *entry;
	int			curlevel;

	if (!xactGotConnection)
		return;
	if (event != SUBXACT_EVENT_PRE_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;

	curlevel = GetCurrentTransactionNestLevel();
	hash_seq_init(&scan, connectionHash);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		char		sql[100];

		if (entry->conn == NULL || entry->xactDepth < curlevel)
			continue;

		if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
		{
			snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT s%d", curlevel);
			entry->changingXactState = true;
			ExecuteRemoteCommand(entry->conn, entry->nodeName, sql);
			entry->changingXactState = false;
		}
		else
		{
			snprintf(sql, sizeof(sql),
					 "ROLLBACK TO SAVEPOINT s%d; RELEASE SAVEPOINT s%d",
					 curlevel, curlevel);
			if (entry->changingXactState || !rollback_remote(entry, sql))
			{
				/*
				 * The remote transaction is in an unknown state; the main
				 * transaction cannot commit on this node any more.
				 */
				entry->changingXactState = true;
				continue;
			}
		}
		entry->xactDepth--;
	}
}

/*
 * connection_inval_callback marks the connections built from a changed
 * foreign server or user mapping.  A hash value of 0 means "all".
 */
static void
connection_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	ConnCacheEntry *entry;

	hash_seq_init(&scan, connectionHash);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry->conn == NULL)
			continue;
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID && entry->serverHashValue == hashvalue) ||
			cacheid == USERMAPPINGOID)
		{
			if (entry->xactDepth == 0)
				disconnect_entry(entry);
			else
				entry->invalidated = true;
		}
	}
}
