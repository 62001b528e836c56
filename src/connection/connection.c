/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  The backend's pool of connections to nodes, and the remote
 *		  transactions (one-phase or two-phase) that follow the local one.
 *
 * Connection sets.  A backend keeps its connections in sets: one set per
 * (node, route, connection options).  The options are the libpq options
 * the connection is opened with: the foreign server's (host, port,
 * dbname, ...), the user mapping's (user, password, ...), the local role
 * name as user when the mapping gives none; whether the role connecting
 * is a superuser is part of the identity too, since a non-superuser's
 * connection must have used a password.  So two local roles with the
 * same credentials on a node share connections, and a change of options
 * (ALTER SERVER, ALTER USER MAPPING) leads to another set.  While a
 * plugin subscribes to the connect pipeline, which may change the options
 * as it likes (a password for some roles and not for others), the local
 * role is part of the identity as well: a connection is only reused by
 * the role the pipeline made it for.  "route" is 0, or 1 for connections
 * made for replicas (the plugins' read/write splitting), so that they are
 * pooled apart.  A (node, local role) pair finds its set
 * through a small cache of routes, filled on first use and dropped by
 * the syscache callbacks of servers and user mappings; a route is not
 * moved to another set while its set has a remote transaction open, so
 * a transaction keeps its connections.
 *
 * A set's connections are numbered by slot from 0, opened on demand and
 * kept open for reuse across statements and transactions.  A statement
 * that runs work on several shards of a node at once (the distributed
 * executor) claims as many connections of the set as it needs with
 * ClaimNodeConnections, all of them at once, and releases them at its
 * end; GetNodeConnection, for the callers that run one command at a time
 * (DDL, COPY routing, undistribute), takes one connection of the set
 * without holding it, since such a caller is done with it before anyone
 * else runs.
 *
 * A claim is a reference held by one statement ("claimed by a statement"
 * count on the connection); a claim is "busy" while its statement has a
 * query in flight on the connection.  A statement that needs a connection
 * another statement of the same backend is busy on (a cursor being read,
 * the other side of a join) gets it only after the other statement has
 * finished its work there: the other statement's ConnectionFinishCallback
 * reads the rest of its results into a tuplestore.  This happens only
 * for connections that must be shared, see "Writes" below; otherwise a
 * statement takes connections no one holds, opening new ones as needed.
 * Claims are released at the end of the statement, or orphaned when the
 * subtransaction or transaction that made them aborts.
 *
 * The shared cap.  Every open connection holds a slot of its node in
 * shared memory (shared_pool.c), reserved before it is opened and given
 * back when it is closed.  A statement first takes the connections it
 * must use and the open ones no one holds; it then needs one new
 * connection on each node where it has none: those are reserved all at
 * once, waiting up to shardexec.pool_wait_timeout while a node is at
 * shardexec.max_shared_pool_size, and never holding a reservation while
 * waiting for another; the rest are reserved without waiting, as many as
 * there is room for, and ClaimNodeConnections says how many each node
 * got: the executor runs connection-strict with them.  Waiting while
 * holding connections could last forever (two backends each holding
 * what the other waits for), so: before it waits, a backend closes its
 * idle connections to nodes at the cap; and a transaction block, at its
 * first use of a connection, reserves a slot on every node it holds
 * none of ("spare" slots, given back at its end), all at once, so that
 * its later statements never wait.  A statement outside a transaction
 * block holds nothing it could not give back while it waits.  What is
 * left (a function that runs several statements in one transaction
 * outside a block) ends, at worst, with the pool_wait_timeout error.
 *
 * Idle connections.  At the end of every transaction, connections that
 * no one holds are closed when they have not been used for
 * shardexec.connection_idle_timeout, when the backend keeps more than
 * shardexec.max_idle_connections_per_node of them to one node (the least
 * recently used go), and, all of them, when their node is at the shared
 * cap or someone waits for it, so that the cap is shared rather than
 * hoarded.  There is no timer: a backend that stays idle keeps its idle
 * connections (and their slots) until its next transaction ends or it
 * exits; shardexec.close_idle_connections() closes them at once.
 *
 * Opening a connection does not block the backend: PQconnectStartParams
 * and PQconnectPoll are driven on a WaitEventSet with the latch, so a
 * cancel request is honoured while connecting, and a node that does not
 * answer fails the statement after shardexec.connect_timeout.  Before an
 * idle connection is reused it is checked for a closed socket (the node
 * restarted, or closed it), and replaced if so.
 *
 * Remote transactions: the first time a connection is used for a
 * distributed table inside a local transaction, a remote transaction is
 * started with the local isolation level and read-only flag, and with
 * lock_timeout = shardexec.remote_lock_timeout; savepoints are mirrored
 * lazily, one level at a time, as postgres_fdw does.  Every connection of
 * a set has its own remote transaction.  On abort each one is rolled
 * back, after a cancel request if a query was still running, with a
 * bounded wait (ConnectionCleanupTimeout) after which the connection
 * is closed instead, so that the backend never hangs on a node that does
 * not answer.  A connection whose state cannot be restored is closed,
 * never reused.
 *
 * Deadlocks across nodes.  Two coordinator transactions can wait for each
 * other's locks on different nodes, a cycle that no node's deadlock
 * detector sees.  The remote lock_timeout breaks it: the waiting
 * statement fails with the node's lock timeout error, naming the node,
 * and its transaction rolls back everywhere.  The price is that an
 * ordinary lock wait on a node longer than the timeout fails too; 30s
 * by default, far above the lock waits of a healthy OLTP workload.
 *
 * Commit.  At pre-commit, if shardexec.use_2pc asks for it (auto: the
 * transaction wrote through more than one remote transaction, on several
 * nodes or over several connections to one node; on: it wrote at all),
 * every remote transaction that wrote gets PREPARE TRANSACTION, all in
 * parallel, with a name of its own (PreparedTransactionGid: this
 * coordinator's system identifier and database, the local transaction's
 * full id, the node and a number), and the others a plain COMMIT.  Before
 * anything is prepared, every node that is to prepare is asked once per
 * connection for max_prepared_transactions, and refused with a clear
 * error if it is 0, and a commit record per transaction to prepare is
 * inserted into shardexec.transaction_record in the local transaction,
 * whose commit, forced to be synchronous, is the decision.  PostgreSQL
 * turns statement_timeout off before it commits, so every round of remote
 * commands of a commit (the check, the PREPAREs and COMMITs, a RELEASE
 * SAVEPOINT) gets statement_timeout of its own: a node that stops
 * answering fails the commit rather than holding it forever.  The records
 * are flushed to the WAL before the PREPAREs are sent, which makes the
 * local transaction id in the names durable: after a crash it is never
 * given to another transaction, and recovery sees it as over.  After the
 * local commit (XACT_EVENT_COMMIT) every prepared transaction gets
 * COMMIT PREPARED, in parallel; a failure there is only a WARNING, since
 * the decision is made: recovery (transaction_recovery.c) finishes it
 * and deletes the records.  If the local transaction aborts after
 * something was prepared, those get ROLLBACK PREPARED; what cannot be
 * reached is left to recovery, which rolls back prepared transactions
 * that have no record once their local transaction is over.  Without
 * two-phase commit, every remote transaction gets COMMIT, all in
 * parallel (one-phase).
 *
 * Writes.  Different connections are different remote transactions,
 * which do not see each other's uncommitted writes and can block on each
 * other's locks.  So within a transaction, a shard written through one
 * connection is read and written through that connection only: the
 * executor asks RequiredConnectionSlot, which answers from the shards
 * recorded by RecordShardModification.  A caller of GetNodeConnection
 * that writes (MarkConnectionModified) does not say which shards, so its
 * connection becomes the only one used for that node for the rest of the
 * transaction.  A node written over several connections cannot then be
 * given to a single-connection caller; that is refused with an error.
 *
 * When a foreign server or user mapping changes, the syscache callbacks
 * drop the routes and mark the connections that may be affected; those
 * are closed as soon as no remote transaction is open on them and no
 * statement holds them.
 *
 * As in postgres_fdw, a non-superuser must connect with a password.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <poll.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "pgtime.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "shardexec/connection.h"
#include "shardexec/plugin.h"
#include "shardexec/shardexec.h"

/*
 * fixes how values are printed and parsed; TimeZone follows the local
 * session's (see session_settings_sql)
 */
#define CONFIGURE_SQL \
	"SET search_path = pg_catalog; " \
	"SET datestyle = ISO; SET intervalstyle = postgres; " \
	"SET extra_float_digits = 3"

/* poll() events that say the peer closed its end, where the OS has one */
#ifdef POLLRDHUP
#define CLOSED_SOCKET_EVENTS POLLRDHUP
#else
#define CLOSED_SOCKET_EVENTS 0
#endif

/* WaitForNodeConnection: the position of the socket, and the sets kept */
#define CONNECTION_SOCKET_POS 2
#define MAX_CONNECTION_WAIT_SETS 32

/* application_name of pooled connections, unless the server sets one */
#define POOL_APPLICATION_NAME "shardexec"

/*
 * The connections of one (node, route, options): see the file header.
 * Everything it points to lives in its memory context.
 */
typedef struct ConnectionSet
{
	dlist_node	listNode;		/* in connectionSets */
	MemoryContext context;
	Oid			serverId;
	int32		nodeId;
	int32		route;			/* 0: the primary (see the file header) */
	bool		superuser;		/* opened for a superuser */
	char	   *nodeName;		/* follows renames of the server */
	char	   *key;			/* every option, the set's identity */
	char	   *displayKey;		/* the key with secrets masked */
	const char **keywords;		/* NULL-terminated, for libpq */
	const char **values;
	const char *host;			/* in values, or NULL */
	const char *port;
	const char *user;
	int			routes;			/* routes that lead here */
	int			nslots;
	int			maxslots;
	NodeConnection **slots;		/* stable pointers */
	bool		xactFailed;		/* lost a connection that wrote in this xact */
} ConnectionSet;

/* which set a (server, local role, route) uses */
typedef struct RouteKey
{
	Oid			serverId;
	Oid			userId;
	int32		route;
} RouteKey;

typedef struct Route
{
	RouteKey	key;			/* hash key, must be first */
	ConnectionSet *set;			/* NULL until first use */
	uint32		serverHashValue;
	bool		valid;			/* false: rebuild the options on next use */
	uint64		pluginGeneration;	/* of the plugin chain it was built with */
} Route;

/* a shard written through a connection in the current transaction */
typedef struct ShardPinKey
{
	int64		shardId;
	ConnectionSet *set;
} ShardPinKey;

typedef struct ShardPin
{
	ShardPinKey key;			/* hash key, must be first */
	int			slot;
} ShardPin;

/* one connection being opened by connect_in_parallel */
typedef struct PendingConnect
{
	const char *nodeName;
	const char **keywords;
	const char **values;
	PGconn	   *conn;
	PostgresPollingStatusType status;
	bool		done;
} PendingConnect;

/* every set, in TopMemoryContext */
static dlist_head connectionSets = DLIST_STATIC_INIT(connectionSets);

static HTAB *routeHash = NULL;

/* shards written in this transaction; in TopTransactionContext */
static HTAB *shardPins = NULL;

/* claims not yet released nor orphaned */
static dlist_head liveClaims = DLIST_STATIC_INIT(liveClaims);

/*
 * ShardexecReadWithoutRemoteTransaction: set by a caller around a claim for
 * a read-only statement outside a transaction block; the claimed
 * connections that are not yet in a remote transaction run the statement
 * in autocommit, saving the START TRANSACTION and COMMIT round trips.
 * Nothing of the statement needs undoing and no other statement shares
 * the transaction, so nothing is lost.
 */
bool		ShardexecReadWithoutRemoteTransaction = false;

/* whether any connection has a remote transaction open */
static bool xactGotConnection = false;

/* whether a remote transaction was prepared in this transaction */
static bool xactPrepared = false;

/* connections open in this backend */
static int	openConnections = 0;

/* sets kept by WaitForNodeConnection */
static int	connectionWaitSets = 0;

/*
 * Slots of the shared count reserved for the current transaction block
 * but not used by a connection yet (see reserve_new_slots), per server.
 */
typedef struct SpareSlots
{
	Oid			serverId;
	int			count;
} SpareSlots;

static SpareSlots *spareSlots = NULL;
static int	nspareSlots = 0;
static int	maxSpareSlots = 0;
static bool xactSlotsReserved = false;

/* bumped by every invalidation of servers or user mappings */
static uint64 invalidations = 0;

static ConnectionSet *get_connection_set(ShardexecNode *node, bool create);
static ConnectionSet *find_or_create_set(ShardexecNode *node, Oid userId, int32 route,
										 const char *applicationName, bool create);
static bool set_in_transaction(ConnectionSet *set);
static NodeConnection *new_slot(ConnectionSet *set);
static NodeConnection *choose_single_connection(ConnectionSet *set);
static NodeConnection *choose_free_connection(ConnectionSet *set);
static int	required_slot(ConnectionSet *set, int64 shardId);
static NodeConnection *find_connection(PGconn *conn);
static void claim_connection(ConnectionClaim *claim, NodeConnection *connection,
							 ConnectionFinishCallback finishWork, void *finishArg);
static void finish_busy_work(NodeConnection *connection);
static void orphan_claim(ConnectionClaim *claim);
static void reserve_slots(NodeConnection **conns, int n);
static bool reserve_new_slots(int n, const Oid *servers, const int *counts,
							  const char **names, bool wait);
static SpareSlots *spare_slot(Oid serverId);
static void add_spare_slots(Oid serverId, int count);
static void release_spare_slots(void);
static bool holds_slot(Oid serverId);
static int	close_idle_at_cap(void);
static void pool_full_error(int n, const Oid *serverIds, const char **nodeNames)
			pg_attribute_noreturn();
static void release_unopened_slots(void);
static void prepare_connections(NodeConnection **conns, int n, bool inTransaction);
static void check_idle_connections(NodeConnection **conns, int n);
static void connect_in_parallel(PendingConnect *pending, int n, Oid userId);
static void start_connect(PendingConnect *pending, Oid userId);
static void finish_connect(PendingConnect *pending, Oid userId);
static char *begin_xact_sql(NodeConnection *connection, int curlevel);
static char *session_settings_sql(NodeConnection *connection);
static void forget_time_zone(NodeConnection *connection);
static void disconnect(NodeConnection *connection);
static void node_notice_receiver(void *arg, const PGresult *res);
static WaitEventSet *make_wait_set(pgsocket sock, uint32 events);
static int	close_idle_connections(bool all);
static void pre_commit_connections(void);
static long commit_round_timeout(void);
static void run_commit_commands(NodeConnection **targets, ParallelCommand *commands,
								int n, bool use2pc);
static void note_commit_outcomes(NodeConnection **targets, ParallelCommand *commands,
								 int n, bool use2pc);
static void check_prepared_transactions_allowed(NodeConnection **conns, int n);
static void commit_prepared_transactions(void);
static void abort_connections(void);
static void end_of_xact(void);
static void test_fault_sleep(const char *where);
static void connection_xact_callback(XactEvent event, void *arg);
static void connection_subxact_callback(SubXactEvent event,
										SubTransactionId mySubid,
										SubTransactionId parentSubid,
										void *arg);
static void connection_inval_callback(Datum arg, int cacheid, uint32 hashvalue);

PG_FUNCTION_INFO_V1(shardexec_connections);
PG_FUNCTION_INFO_V1(shardexec_close_idle_connections);

/*
 * InitConnectionManagement registers the transaction and invalidation
 * callbacks.  Called once from _PG_init.
 */
void
InitConnectionManagement(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(RouteKey);
	ctl.entrysize = sizeof(Route);
	routeHash = hash_create("shardexec connection routes", 16, &ctl,
							HASH_ELEM | HASH_BLOBS);

	RegisterXactCallback(connection_xact_callback, NULL);
	RegisterSubXactCallback(connection_subxact_callback, NULL);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, connection_inval_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, connection_inval_callback, (Datum) 0);
}

/*
 * get_connection_set returns the current user's connection set for node,
 * finding or creating it when create is true; without create it returns
 * the set the route led to last, or NULL.
 */
static ConnectionSet *
get_connection_set(ShardexecNode *node, bool create)
{
	RouteKey	key;
	Route	   *route;
	bool		found;
	ConnectionSet *set;
	uint64		seen = invalidations;

	/* a change of the plugin chain may change the set (see the file header) */
	(void) PluginCallbacksActive(0);

	memset(&key, 0, sizeof(key));
	key.serverId = node->serverId;
	key.userId = GetUserId();
	/* plugins (src/plugin/): 1 while a statement routed to replicas claims */
	key.route = PluginConnectionRoute(node);
	route = hash_search(routeHash, &key, create ? HASH_ENTER : HASH_FIND, &found);
	if (route == NULL)
		return NULL;
	if (!found)
	{
		route->set = NULL;
		route->valid = false;
		route->serverHashValue =
			GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(key.serverId));
	}
	set = route->set;
	if (!create ||
		(set != NULL && ((route->valid && route->pluginGeneration == PluginChainGeneration) ||
						 set_in_transaction(set))))
	{
		if (set != NULL && strcmp(set->nodeName, node->nodeName) != 0)
		{
			/* the server was renamed */
			char	   *name = MemoryContextStrdup(set->context, node->nodeName);
			int			i;

			set->nodeName = name;
			for (i = 0; i < set->nslots; i++)
				set->slots[i]->nodeName = name;
		}
		return set;
	}

	set = find_or_create_set(node, key.userId, key.route, POOL_APPLICATION_NAME, true);
	if (route->set != set)
	{
		if (route->set != NULL)
			route->set->routes--;
		set->routes++;
		route->set = set;
	}
	/* an invalidation that came while the options were read wins */
	route->valid = (invalidations == seen);
	route->pluginGeneration = PluginChainGeneration;
	return set;
}

/*
 * find_or_create_set returns the set of node whose options are those
 * userId connects with, creating it (empty) if create is true, or NULL.
 */
static ConnectionSet *
find_or_create_set(ShardexecNode *node, Oid userId, int32 route,
				   const char *applicationName, bool create)
{
	const char **keywords;
	const char **values;
	StringInfoData key;
	StringInfoData display;
	bool		superuser = superuser_arg(userId);
	dlist_iter	iter;
	ConnectionSet *set;
	MemoryContext context;
	MemoryContext oldContext;
	int			n;
	int			i;

	BuildConnectionOptions(node->serverId, userId, node->nodeName, applicationName,
						   !PluginConnectActive(), &keywords, &values);

	initStringInfo(&key);
	initStringInfo(&display);
	appendStringInfo(&key, "%u %d %d", node->serverId, route, superuser);
	/* what the connect pipeline makes of the options may depend on the role */
	if (PluginCallbacksActive(PLUGIN_BIT(PLUGIN_CB_CONNECT)))
		appendStringInfo(&key, " role=%u", userId);
	for (n = 0; keywords[n] != NULL; n++)
	{
		bool		secret = strcmp(keywords[n], "password") == 0 ||
			strcmp(keywords[n], "sslpassword") == 0;

		/* lengths make the key unambiguous whatever the values hold */
		appendStringInfo(&key, " %zu:%s=%zu:%s", strlen(keywords[n]), keywords[n],
						 strlen(values[n]), values[n]);
		if (strcmp(keywords[n], "fallback_application_name") == 0 ||
			strcmp(keywords[n], "client_encoding") == 0)
			continue;
		appendStringInfo(&display, "%s%s=%s", display.len > 0 ? " " : "",
						 keywords[n], secret ? "********" : values[n]);
	}

	dlist_foreach(iter, &connectionSets)
	{
		set = dlist_container(ConnectionSet, listNode, iter.cur);
		if (set->serverId == node->serverId && strcmp(set->key, key.data) == 0)
		{
			pfree(key.data);
			pfree(display.data);
			return set;
		}
	}
	if (!create)
		return NULL;

	context = AllocSetContextCreate(TopMemoryContext, "shardexec connection set",
									ALLOCSET_SMALL_SIZES);
	oldContext = MemoryContextSwitchTo(context);
	set = palloc0(sizeof(ConnectionSet));
	set->context = context;
	set->serverId = node->serverId;
	set->nodeId = node->nodeId;
	set->route = route;
	set->superuser = superuser;
	set->nodeName = pstrdup(node->nodeName);
	set->key = pstrdup(key.data);
	set->displayKey = pstrdup(display.data);
	set->keywords = palloc0(sizeof(char *) * (n + 1));
	set->values = palloc0(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		set->keywords[i] = pstrdup(keywords[i]);
		set->values[i] = pstrdup(values[i]);
		if (strcmp(keywords[i], "host") == 0 || strcmp(keywords[i], "hostaddr") == 0)
			set->host = set->values[i];
		else if (strcmp(keywords[i], "port") == 0)
			set->port = set->values[i];
		else if (strcmp(keywords[i], "user") == 0)
			set->user = set->values[i];
	}
	MemoryContextSwitchTo(oldContext);
	dlist_push_tail(&connectionSets, &set->listNode);
	pfree(key.data);
	pfree(display.data);
	return set;
}

/*
 * set_in_transaction says whether set has a connection that the current
 * transaction uses (remote transaction, claims, writes).
 */
static bool
set_in_transaction(ConnectionSet *set)
{
	int			i;

	if (set->xactFailed)
		return true;
	for (i = 0; i < set->nslots; i++)
	{
		NodeConnection *connection = set->slots[i];

		if (connection->xactDepth > 0 || connection->claimCount > 0 ||
			connection->modified || connection->prepared)
			return true;
	}
	return false;
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
 * BuildConnectionOptions returns in *keywords and *values (palloc'd,
 * NULL-terminated) the libpq options userId connects to serverId with:
 * the server's options, then the user mapping's, the role name as user if
 * the mapping gives none, applicationName as fallback_application_name
 * and the database encoding.  With checkPassword, a non-superuser without
 * a password is refused here, before anything is opened; a caller whose
 * options go through the connect pipeline leaves that to its end, since a
 * plugin may give the password (CheckConnectionPassword).
 */
void
BuildConnectionOptions(Oid serverId, Oid userId, const char *nodeName,
					   const char *applicationName, bool checkPassword,
					   const char ***keywords, const char ***values)
{
	ForeignServer *server = GetForeignServer(serverId);
	UserMapping *mapping = find_user_mapping(userId, serverId);
	List	   *options = list_copy(server->options);
	const char **k;
	const char **v;
	ListCell   *lc;
	bool		haveUser = false;
	int			n;

	if (mapping != NULL)
		options = list_concat(options, mapping->options);

	k = palloc0((list_length(options) + 4) * sizeof(char *));
	v = palloc0((list_length(options) + 4) * sizeof(char *));
	n = 0;
	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);

		k[n] = def->defname;
		v[n] = defGetString(def);
		if (strcmp(def->defname, "user") == 0)
			haveUser = true;
		n++;
	}
	if (!haveUser)
	{
		k[n] = "user";
		v[n] = GetUserNameFromId(userId, false);
		n++;
	}
	k[n] = "fallback_application_name";
	v[n] = applicationName;
	n++;
	k[n] = "client_encoding";
	v[n] = GetDatabaseEncodingName();
	n++;

	if (checkPassword)
		CheckConnectionPassword(userId, nodeName, k, v);
	*keywords = k;
	*values = v;
}

/*
 * ConnectionPasswordMissing says whether userId, a non-superuser, would
 * connect without a password: none among the libpq options
 * keywords/values (NULL-terminated).
 */
bool
ConnectionPasswordMissing(Oid userId, const char *const *keywords,
						  const char *const *values)
{
	int			n;

	if (superuser_arg(userId))
		return false;
	for (n = 0; keywords[n] != NULL; n++)
	{
		if (strcmp(keywords[n], "password") == 0 && values[n][0] != '\0')
			return false;
	}
	return true;
}

/*
 * CheckConnectionPassword refuses, as postgres_fdw does, to let a
 * non-superuser connect to nodeName without a password among the libpq
 * options keywords/values.
 */
void
CheckConnectionPassword(Oid userId, const char *nodeName, const char *const *keywords,
						const char *const *values)
{
	if (ConnectionPasswordMissing(userId, keywords, values))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required to connect to node \"%s\"", nodeName),
				 errdetail("Non-superusers must provide a password in the user mapping.")));
}

/*
 * new_slot appends a closed connection to set.
 */
static NodeConnection *
new_slot(ConnectionSet *set)
{
	NodeConnection *connection;

	if (set->nslots == set->maxslots)
	{
		int			newmax = Max(8, set->maxslots * 2);

		if (set->slots == NULL)
			set->slots = MemoryContextAlloc(set->context,
											newmax * sizeof(NodeConnection *));
		else
			set->slots = repalloc(set->slots, newmax * sizeof(NodeConnection *));
		set->maxslots = newmax;
	}
	connection = MemoryContextAllocZero(set->context, sizeof(NodeConnection));
	connection->slot = set->nslots;
	connection->set = set;
	connection->nodeName = set->nodeName;
	set->slots[set->nslots++] = connection;
	return connection;
}

/*
 * GetNodeConnection returns one of the current user's connections to
 * node, opening it if needed, for a caller that runs its commands to
 * completion before it returns (it does not hold the connection).  With
 * CONNECTION_IN_TRANSACTION the connection is inside a remote transaction
 * (and savepoints) matching the local one.  Within a transaction that
 * wrote to the node, it is the connection that wrote.  The connection
 * belongs to the pool: call ReleaseNodeConnection, never PQfinish.
 */
PGconn *
GetNodeConnection(ShardexecNode *node, ConnectionPurpose purpose)
{
	ConnectionSet *set = get_connection_set(node, true);
	NodeConnection *connection = choose_single_connection(set);

	if (connection->busyClaim != NULL)
		finish_busy_work(connection);
	prepare_connections(&connection, 1, purpose == CONNECTION_IN_TRANSACTION);
	connection->uses++;
	connection->usedInXact = true;
	return connection->conn;
}

/*
 * choose_single_connection picks the connection of set that
 * GetNodeConnection returns: the one this transaction wrote through, else
 * an open one that no statement holds, else an open one no statement has
 * work in flight on, else a closed slot.
 */
static NodeConnection *
choose_single_connection(ConnectionSet *set)
{
	NodeConnection *modified = NULL;
	int			nmodified = 0;
	int			i;

	for (i = 0; i < set->nslots; i++)
	{
		NodeConnection *connection = set->slots[i];

		if (connection->nodeWidePin)
			return connection;
		if (connection->modified)
		{
			modified = connection;
			nmodified++;
		}
	}
	if (nmodified == 1)
		return modified;
	if (nmodified > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot run this command on node \"%s\" after writing to it over several connections in the same transaction",
						set->nodeName),
				 errhint("Run the command in its own transaction, or set shardexec.max_connections_per_query to 1 before the writes.")));

	return choose_free_connection(set);
}

/*
 * choose_free_connection picks an open connection of set that no
 * statement holds, else an open one no statement has work in flight on,
 * else a closed slot, else a new one.
 */
static NodeConnection *
choose_free_connection(ConnectionSet *set)
{
	int			pass;
	int			i;

	for (pass = 0; pass < 3; pass++)
	{
		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (pass == 0 && connection->conn != NULL &&
				connection->claimCount == 0 && connection->busyClaim == NULL)
				return connection;
			if (pass == 1 && connection->conn != NULL && connection->busyClaim == NULL)
				return connection;
			if (pass == 2 && connection->conn == NULL && connection->claimCount == 0)
				return connection;
		}
	}
	return new_slot(set);
}

/*
 * ReleaseNodeConnection tells the pool that the caller no longer uses
 * conn.  The connection stays open for reuse.
 */
void
ReleaseNodeConnection(PGconn *conn)
{
	(void) conn;
}

/*
 * GetShardConnection is GetNodeConnection (CONNECTION_IN_TRANSACTION) for
 * a caller that works on one shard, shardId, of node: it returns the
 * connection that must do so (the one that wrote to the shard, or to the
 * node without naming shards, in this transaction), else one that already
 * wrote to the node, else a free one.  A caller that writes records it
 * with MarkShardModified, so that the node's other connections stay
 * usable for its other shards.
 */
PGconn *
GetShardConnection(ShardexecNode *node, int64 shardId)
{
	ConnectionSet *set = get_connection_set(node, true);
	NodeConnection *connection = NULL;
	int			slot = required_slot(set, shardId);
	int			i;

	if (slot >= 0)
		connection = set->slots[slot];
	for (i = 0; i < set->nslots && connection == NULL; i++)
	{
		if (set->slots[i]->modified && set->slots[i]->conn != NULL &&
			set->slots[i]->busyClaim == NULL)
			connection = set->slots[i];
	}
	if (connection == NULL)
		connection = choose_free_connection(set);

	if (connection->busyClaim != NULL)
		finish_busy_work(connection);
	prepare_connections(&connection, 1, true);
	connection->uses++;
	connection->usedInXact = true;
	return connection->conn;
}

/*
 * MarkShardModified records that conn, from GetShardConnection, wrote to
 * shard shardId in the current transaction.
 */
void
MarkShardModified(PGconn *conn, int64 shardId)
{
	NodeConnection *connection = find_connection(conn);

	if (connection != NULL)
		RecordShardModification(connection, shardId);
}

/*
 * MarkConnectionModified records that conn wrote data in the current
 * transaction, on shards the caller does not name: every later statement
 * of the transaction uses this connection, and only it, for its node.
 */
void
MarkConnectionModified(PGconn *conn)
{
	NodeConnection *connection = find_connection(conn);

	if (connection != NULL)
	{
		connection->modified = true;
		connection->nodeWidePin = true;
	}
}

/*
 * RecordShardModification records that connection wrote to shard shardId
 * in the current transaction: later work on that shard in the
 * transaction must use the same connection (RequiredConnectionSlot).
 */
void
RecordShardModification(NodeConnection *connection, int64 shardId)
{
	ShardPinKey key;
	ShardPin   *pin;
	bool		found;

	if (shardPins == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(ShardPinKey);
		ctl.entrysize = sizeof(ShardPin);
		ctl.hcxt = TopTransactionContext;
		shardPins = hash_create("shardexec shard pins", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.shardId = shardId;
	key.set = connection->set;
	pin = hash_search(shardPins, &key, HASH_ENTER, &found);
	pin->slot = connection->slot;
	connection->modified = true;
}

/*
 * RequiredConnectionSlot returns the slot of the current user's
 * connection to node that must run work on shard shardId in the current
 * transaction, because the transaction wrote through it, or -1 when any
 * connection will do.
 */
int
RequiredConnectionSlot(ShardexecNode *node, int64 shardId)
{
	ConnectionSet *set = get_connection_set(node, false);

	return set != NULL ? required_slot(set, shardId) : -1;
}

/*
 * required_slot is RequiredConnectionSlot within set.
 */
static int
required_slot(ConnectionSet *set, int64 shardId)
{
	int			i;

	for (i = 0; i < set->nslots; i++)
	{
		if (set->slots[i]->nodeWidePin)
			return i;
	}
	if (shardPins != NULL)
	{
		ShardPinKey key;
		ShardPin   *pin;

		memset(&key, 0, sizeof(key));
		key.shardId = shardId;
		key.set = set;
		pin = hash_search(shardPins, &key, HASH_FIND, NULL);
		if (pin != NULL && pin->slot < set->nslots)
			return pin->slot;
	}
	return -1;
}

/*
 * claim_connection makes claim a live claim of connection.
 */
static void
claim_connection(ConnectionClaim *claim, NodeConnection *connection,
				 ConnectionFinishCallback finishWork, void *finishArg)
{
	claim->connection = connection;
	claim->finishWork = finishWork;
	claim->finishArg = finishArg;
	claim->subid = GetCurrentSubTransactionId();
	claim->live = true;
	dlist_push_tail(&liveClaims, &claim->listNode);
	connection->claimCount++;
	connection->uses++;
	connection->usedInXact = true;
}

/*
 * ClaimNodeConnections claims, for one statement, the connections that
 * requests (a list of ConnectionRequest) ask for, all at once, and
 * returns how many it claimed in all.  For each request: its required
 * slots, then open connections that no other statement holds, then new
 * ones (opened all in parallel, within shardexec.connect_timeout).  A new
 * connection needs a slot of the node's shared count: the first new one
 * of every request that has no connection yet is reserved for all of them
 * at once, waiting up to shardexec.pool_wait_timeout while a node is at
 * shardexec.max_shared_pool_size (an error when the time is up); the
 * others only as far as there is room, so a request may get fewer
 * connections than it asked for (request->granted says how many, at
 * least one).  Every connection is inside the remote transaction that
 * follows the local one.  finishWork and finishArg are recorded in every
 * claim (see ConnectionFinishCallback).
 *
 * All or nothing: on error nothing is left claimed by the time the
 * (sub)transaction has aborted; connections opened meanwhile stay in the
 * pool.  The caller must release every claim with ReleaseConnectionClaim
 * before freeing the claims' memory.
 */
int
ClaimNodeConnections(List *requests, ConnectionFinishCallback finishWork,
					 void *finishArg)
{
	NodeConnection **all;
	ConnectionSet **sets;
	int		   *minNew;
	Oid		   *waitServers;
	int		   *waitCounts;
	const char **waitNames;
	int			nwait = 0;
	int			total = 0;
	int			n = 0;
	int			attempt;
	int			r;
	ListCell   *lc;

	foreach(lc, requests)
	{
		ConnectionRequest *request = lfirst(lc);
		int			i;

		total += request->count;
		request->granted = 0;
		for (i = 0; i < request->count; i++)
			request->claims[i].live = false;
	}
	all = palloc(sizeof(NodeConnection *) * Max(total, 1));
	sets = palloc(sizeof(ConnectionSet *) * Max(list_length(requests), 1));
	minNew = palloc(sizeof(int) * Max(list_length(requests), 1));
	waitServers = palloc(sizeof(Oid) * Max(list_length(requests), 1));
	waitCounts = palloc(sizeof(int) * Max(list_length(requests), 1));
	waitNames = palloc(sizeof(char *) * Max(list_length(requests), 1));

	r = 0;
	foreach(lc, requests)
		sets[r++] = get_connection_set(((ConnectionRequest *) lfirst(lc))->node, true);

	/*
	 * The new connections the statement cannot do without (one on every
	 * node where it has no connection it can use), reserved all at once.
	 * If a node is full, this backend's idle connections to full nodes are
	 * closed (so that two statements waiting for each other's nodes cannot
	 * both sit on an idle connection) and the statement waits, holding no
	 * reservation, for all it needs.
	 */
	for (attempt = 0;; attempt++)
	{
		nwait = 0;
		r = 0;
		foreach(lc, requests)
		{
			ConnectionRequest *request = lfirst(lc);
			ConnectionSet *set = sets[r];
			int			usable = 0;
			int			i;
			int			j;
			bool		known = false;

			for (i = 0; i < request->count && request->requiredSlots != NULL &&
				 request->requiredSlots[i] >= 0; i++)
				usable++;
			for (i = 0; i < set->nslots; i++)
			{
				NodeConnection *candidate = set->slots[i];

				if (candidate->conn != NULL && candidate->claimCount == 0 &&
					candidate->busyClaim == NULL)
					usable++;
			}
			minNew[r++] = (request->count > 0 && usable == 0) ? 1 : 0;
			if (minNew[r - 1] == 0)
				continue;
			for (j = 0; j < nwait; j++)
			{
				if (waitServers[j] == set->serverId)
				{
					waitCounts[j]++;
					known = true;
				}
			}
			if (!known)
			{
				waitServers[nwait] = set->serverId;
				waitNames[nwait] = set->nodeName;
				waitCounts[nwait++] = 1;
			}
		}
		if (reserve_new_slots(nwait, waitServers, waitCounts, waitNames, attempt > 0))
			break;
		(void) close_idle_at_cap();
	}

	/*
	 * Then, per request: its required slots, open connections no one
	 * holds, the new ones reserved above, and more new ones as far as
	 * there is room.
	 */
	r = 0;
	foreach(lc, requests)
	{
		ConnectionRequest *request = lfirst(lc);
		ConnectionSet *set = sets[r];
		int			reserved = minNew[r++];
		int			pass;
		int			i;
		int			k;

		for (i = 0; i < request->count; i++)
		{
			int			required = request->requiredSlots != NULL ?
			request->requiredSlots[i] : -1;

			if (required < 0)
				break;
			Assert(i == request->granted);
			if (required >= set->nslots)
				elog(ERROR, "connection slot %d of node \"%s\" does not exist",
					 required, set->nodeName);
			claim_connection(&request->claims[request->granted++], set->slots[required],
							 finishWork, finishArg);
			all[n++] = set->slots[required];
		}
		/*
		 * Connections already in the remote transaction first (one that
		 * wrote included: its writes are visible to what it runs next): no
		 * START TRANSACTION to send, and a transaction that stays on one
		 * connection per node commits with fewer remote transactions (one
		 * phase, or fewer PREPAREs).
		 */
		for (pass = 0; pass < 2; pass++)
		{
			for (i = 0; i < set->nslots && request->granted < request->count; i++)
			{
				NodeConnection *candidate = set->slots[i];

				if (candidate->conn != NULL && candidate->claimCount == 0 &&
					candidate->busyClaim == NULL &&
					(candidate->xactDepth > 0 || candidate->modified) == (pass == 0))
				{
					claim_connection(&request->claims[request->granted++], candidate,
									 finishWork, finishArg);
					all[n++] = candidate;
				}
			}
		}
		reserved += SharedPoolReserve(set->serverId,
									  request->count - request->granted - reserved);
		for (k = 0; k < reserved; k++)
		{
			NodeConnection *connection = NULL;
			int			j;

			for (j = 0; j < set->nslots && connection == NULL; j++)
			{
				NodeConnection *candidate = set->slots[j];

				if (candidate->conn == NULL && candidate->claimCount == 0 &&
					candidate->busyClaim == NULL && !candidate->modified)
					connection = candidate;
			}
			if (connection == NULL)
				connection = new_slot(set);
			Assert(!connection->counted);
			connection->counted = true;
			claim_connection(&request->claims[request->granted++], connection,
							 finishWork, finishArg);
			all[n++] = connection;
		}
	}

	/* a required connection may still carry another statement's work */
	for (r = 0; r < n; r++)
	{
		if (all[r]->busyClaim != NULL)
			finish_busy_work(all[r]);
	}

	prepare_connections(all, n, !ShardexecReadWithoutRemoteTransaction);
	pfree(all);
	pfree(sets);
	pfree(minNew);
	pfree(waitServers);
	pfree(waitCounts);
	pfree(waitNames);
	return n;
}

/*
 * SetConnectionClaimBusy says whether claim's statement has work in
 * flight on the connection.  While it does, anyone else who needs the
 * connection calls the claim's finish callback first.
 */
void
SetConnectionClaimBusy(ConnectionClaim *claim, bool busy)
{
	NodeConnection *connection = claim->connection;

	if (!claim->live)
		return;
	if (busy)
	{
		Assert(connection->busyClaim == NULL || connection->busyClaim == claim);
		connection->busyClaim = claim;
	}
	else if (connection->busyClaim == claim)
		connection->busyClaim = NULL;
}

/*
 * ReleaseConnectionClaim ends claim; the connection stays open for
 * reuse.  Releasing a claim that the end of its (sub)transaction already
 * orphaned does nothing.
 */
void
ReleaseConnectionClaim(ConnectionClaim *claim)
{
	if (claim->live)
		orphan_claim(claim);
}

static void
orphan_claim(ConnectionClaim *claim)
{
	NodeConnection *connection = claim->connection;

	dlist_delete(&claim->listNode);
	claim->live = false;
	connection->claimCount--;
	if (connection->busyClaim == claim)
		connection->busyClaim = NULL;
}

/*
 * finish_busy_work has the statement that has work in flight on
 * connection finish it, so that someone else can use the connection.
 */
static void
finish_busy_work(NodeConnection *connection)
{
	ConnectionClaim *claim = connection->busyClaim;

	claim->finishWork(claim->finishArg, connection);
	if (connection->busyClaim != NULL)
		elog(ERROR, "connection to node \"%s\" is still busy", connection->nodeName);
}

/*
 * AbandonConnectionWork is called by a statement that no longer wants the
 * results of the work in flight on connections: a LIMIT was satisfied,
 * or (statementFailed) an error is about to be raised.  receiving[i]
 * says whether the node has been sending rows on connections[i] (it will
 * notice at once that the connection is gone).
 *
 * A connection that wrote in this transaction, or whose remote
 * transaction must keep its snapshot (repeatable read and above, in a
 * transaction block, unless the statement failed), must stay: after an
 * error its work is cancelled and drained (bounded); otherwise what is
 * left is read and discarded, however long that takes (interruptible).
 *
 * Any other connection loses nothing with its remote transaction.  What
 * is left is read for ABANDON_DRAIN_MS, which keeps connections whose
 * work was nearly done.  A connection whose node has been sending is then
 * closed rather than drained, since the node may already have pushed
 * megabytes into the socket; it is opened again when needed.  One whose
 * node has sent nothing yet, not even while it was drained, may be
 * waiting (and would not notice a closed socket): it gets a cancel
 * request, is drained (bounded) and its remote transaction rolled back
 * (begun again on its next use), and stays open.  The caller still holds
 * its claims.
 */
void
AbandonConnectionWork(NodeConnection **connections, const bool *receiving, int n,
					  bool statementFailed)
{
	ParallelCommand *kept = palloc0(sizeof(ParallelCommand) * Max(n, 1));
	ParallelCommand *dropped = palloc0(sizeof(ParallelCommand) * Max(n, 1));
	NodeConnection **keptConns = palloc(sizeof(NodeConnection *) * Max(n, 1));
	NodeConnection **droppedConns = palloc(sizeof(NodeConnection *) * Max(n, 1));
	bool	   *droppedReceiving = palloc(sizeof(bool) * Max(n, 1));
	int			nkept = 0;
	int			ndropped = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = connections[i];
		bool		keep;

		if (connection->conn == NULL)
			continue;
		keep = connection->modified ||
			(!statementFailed && XactIsoLevel >= XACT_REPEATABLE_READ &&
			 IsTransactionBlock());
		if (keep)
		{
			kept[nkept].conn = connection->conn;
			kept[nkept].owner = connection;
			kept[nkept].nodeName = connection->nodeName;
			kept[nkept].cancel = statementFailed;
			keptConns[nkept++] = connection;
		}
		else
		{
			dropped[ndropped].conn = connection->conn;
			dropped[ndropped].owner = connection;
			dropped[ndropped].nodeName = connection->nodeName;
			droppedReceiving[ndropped] = receiving[i];
			droppedConns[ndropped++] = connection;
		}
	}

	if (ndropped > 0)
	{
		int			ncancelled = 0;

		CleanUpConnections(dropped, ndropped, ABANDON_DRAIN_MS);
		for (i = 0; i < ndropped; i++)
		{
			NodeConnection *connection = droppedConns[i];

			if (dropped[i].ok)
				continue;
			if (droppedReceiving[i] || dropped[i].received ||
				connection->conn == NULL ||
				PQstatus(connection->conn) != CONNECTION_OK)
			{
				disconnect(connection);
				continue;
			}
			/* not sending yet: cancel, and keep the connection */
			dropped[ncancelled] = dropped[i];
			dropped[ncancelled].cancel = true;
			dropped[ncancelled].sql = (!statementFailed && connection->xactDepth > 0) ?
				"ROLLBACK TRANSACTION" : NULL;
			if (dropped[ncancelled].sql != NULL)
			{
				connection->changingXactState = true;
				forget_time_zone(connection);
			}
			droppedConns[ncancelled++] = connection;
		}
		if (ncancelled > 0)
		{
			CleanUpConnections(dropped, ncancelled, ConnectionCleanupTimeout());
			for (i = 0; i < ncancelled; i++)
			{
				NodeConnection *connection = droppedConns[i];

				if (!dropped[i].ok)
					disconnect(connection);
				else if (dropped[i].sql != NULL)
				{
					connection->changingXactState = false;
					connection->xactDepth = 0;
				}
			}
		}
	}
	if (nkept > 0)
	{
		CleanUpConnections(kept, nkept,
						   statementFailed ? ConnectionCleanupTimeout() : -1);
		for (i = 0; i < nkept; i++)
		{
			if (!kept[i].ok)
				disconnect(keptConns[i]);
		}
	}
	pfree(kept);
	pfree(dropped);
	pfree(keptConns);
	pfree(droppedConns);
	pfree(droppedReceiving);
}

/*
 * make_wait_set returns a WaitEventSet, in TopMemoryContext, of the latch,
 * postmaster death and sock (for events, at CONNECTION_SOCKET_POS).
 */
static WaitEventSet *
make_wait_set(pgsocket sock, uint32 events)
{
	WaitEventSet *set = CreateWaitEventSet(TopMemoryContext, 3);

	PG_TRY();
	{
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		AddWaitEventToSet(set, events, sock, NULL, NULL);
	}
	PG_CATCH();
	{
		FreeWaitEventSet(set);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return set;
}

/*
 * WaitForNodeConnection is WaitForSockets for connection's socket alone,
 * on a WaitEventSet kept with the connection until it is closed: a router
 * statement, or a transaction command on one node, would otherwise spend
 * five system calls (epoll create, three adds, close) on a set for the
 * wait, more than on the statement's own send and receive.  Each kept set
 * holds a file descriptor, so at most MAX_CONNECTION_WAIT_SETS are kept
 * per backend; other connections wait on a set made for the wait.
 * Returns the events the socket is ready for (0 if none); a set latch is
 * reset and interrupts are processed.
 */
uint32
WaitForNodeConnection(NodeConnection *connection, uint32 events, long timeoutMs)
{
	pgsocket	sock = PQsocket(connection->conn);
	WaitEvent	fired[3];
	uint32		occurred = 0;
	bool		latchSet = false;
	int			nfired;
	int			i;

	/* libpq closes the socket of a connection it found broken: reading says so */
	if (sock == PGINVALID_SOCKET)
		return WL_SOCKET_READABLE;
	if (connection->waitSet != NULL && connection->waitSocket != sock)
	{
		FreeWaitEventSet(connection->waitSet);
		connection->waitSet = NULL;
		connectionWaitSets--;
	}
	if (connection->waitSet == NULL && sock != PGINVALID_SOCKET &&
		connectionWaitSets < MAX_CONNECTION_WAIT_SETS)
	{
		connection->waitSet = make_wait_set(sock, events);
		connection->waitSocket = sock;
		connection->waitEvents = events;
		connectionWaitSets++;
	}
	if (connection->waitSet == NULL)
	{
		(void) WaitForSockets(1, &sock, &events, &occurred, timeoutMs);
		return occurred;
	}
	if (connection->waitEvents != events)
	{
		ModifyWaitEvent(connection->waitSet, CONNECTION_SOCKET_POS, events, NULL);
		connection->waitEvents = events;
	}
	nfired = WaitEventSetWait(connection->waitSet, timeoutMs, fired, 3, PG_WAIT_EXTENSION);
	for (i = 0; i < nfired; i++)
	{
		if (fired[i].events & WL_LATCH_SET)
			latchSet = true;
		else if (fired[i].pos == CONNECTION_SOCKET_POS)
			occurred = fired[i].events & WL_SOCKET_MASK;
	}
	if (latchSet)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return occurred;
}

/*
 * node_notice_receiver writes a notice or warning that a node sent on a
 * pooled connection (arg) to the server log, naming the node, instead of
 * libpq's default, a bare line on standard error.
 */
static void
node_notice_receiver(void *arg, const PGresult *res)
{
	NodeConnection *connection = (NodeConnection *) arg;
	const char *message = PQresultErrorMessage(res);
	int			len = strlen(message);

	if (len > 0 && message[len - 1] == '\n')
		len--;
	ereport(LOG,
			(errmsg_internal("shardexec: node \"%s\": %.*s",
							 connection->nodeName, len, message),
			 errhidestmt(true)));
}

/*
 * ConnectionCleanupTimeout returns how long, in ms, the cleanup of a
 * statement's connections after an error or a cancel (the statement's,
 * or the transaction's abort) waits for the nodes before it closes what
 * did not come back: CONNECTION_CLEANUP_TIMEOUT_MS, or
 * shardexec.node_response_timeout if that is shorter (a node that sends
 * nothing for that long is taken for gone anyway).  COMMIT PREPARED and
 * the rollback of a savepoint, which the transaction goes on after, keep
 * the longer bound.
 */
int
ConnectionCleanupTimeout(void)
{
	if (ShardexecNodeResponseTimeout > 0)
		return Min(ShardexecNodeResponseTimeout, CONNECTION_CLEANUP_TIMEOUT_MS);
	return CONNECTION_CLEANUP_TIMEOUT_MS;
}

/*
 * DiscardNodeConnection closes connection, whose state is unknown.  If
 * the current transaction wrote through it, the transaction can no longer
 * commit.
 */
void
DiscardNodeConnection(NodeConnection *connection)
{
	disconnect(connection);
}

/*
 * ConnectToNodeDirectly opens a connection to node, as the current user,
 * that does not belong to the pool (nor count in its shared cap) and is
 * in no transaction.  The caller must PQfinish it, also on error
 * (PG_FINALLY).
 */
PGconn *
ConnectToNodeDirectly(ShardexecNode *node)
{
	return ConnectToNodeWithName(node, POOL_APPLICATION_NAME);
}

/*
 * ConnectToNodeWithName is ConnectToNodeDirectly with applicationName as
 * the connection's fallback application name.
 */
PGconn *
ConnectToNodeWithName(ShardexecNode *node, const char *applicationName)
{
	PendingConnect pending;
	PGconn	   *volatile conn = NULL;

	memset(&pending, 0, sizeof(pending));
	pending.nodeName = node->nodeName;
	BuildConnectionOptions(node->serverId, GetUserId(), node->nodeName, applicationName,
						   !PluginConnectActive(), &pending.keywords, &pending.values);
	connect_in_parallel(&pending, 1, GetUserId());
	conn = pending.conn;
	PG_TRY();
	{
		ExecuteRemoteCommand(conn, node->nodeName,
							 psprintf("%s; SET timezone = %s", CONFIGURE_SQL,
									  quote_literal_cstr(pg_get_timezone_name(session_timezone))));
	}
	PG_CATCH();
	{
		PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return conn;
}

static NodeConnection *
find_connection(PGconn *conn)
{
	dlist_iter	iter;

	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);
		int			i;

		for (i = 0; i < set->nslots; i++)
		{
			if (set->slots[i]->conn == conn)
				return set->slots[i];
		}
	}
	return NULL;
}

/*
 * reserve_slots reserves a slot of the shared count for every closed
 * connection in conns that has none, all at once (see reserve_new_slots;
 * in a transaction block, its first use reserves a slot on every node).
 * When a node is full, this backend's idle connections to full nodes are
 * closed, those in conns too (they are then opened again), and it waits
 * for all it needs, up to shardexec.pool_wait_timeout; an error when the
 * time is up.
 */
static void
reserve_slots(NodeConnection **conns, int n)
{
	Oid		   *servers = palloc(sizeof(Oid) * Max(n, 1));
	int		   *counts = palloc(sizeof(int) * Max(n, 1));
	const char **names = palloc(sizeof(char *) * Max(n, 1));
	NodeConnection **targets = palloc(sizeof(NodeConnection *) * Max(n, 1));
	int			nservers;
	int			ntargets;
	int			attempt;
	int			i;

	for (attempt = 0;; attempt++)
	{
		nservers = 0;
		ntargets = 0;
		for (i = 0; i < n; i++)
		{
			NodeConnection *connection = conns[i];
			bool		known = false;
			int			j;

			if (connection->conn != NULL || connection->counted)
				continue;
			for (j = 0; j < ntargets; j++)
				known |= (targets[j] == connection);
			if (known)
				continue;
			targets[ntargets++] = connection;
			for (j = 0; j < nservers && !known; j++)
			{
				if (servers[j] == connection->set->serverId)
				{
					counts[j]++;
					known = true;
				}
			}
			if (!known)
			{
				servers[nservers] = connection->set->serverId;
				names[nservers] = connection->nodeName;
				counts[nservers++] = 1;
			}
		}
		if (reserve_new_slots(nservers, servers, counts, names, attempt > 0))
			break;
		(void) close_idle_at_cap();
	}
	for (i = 0; i < ntargets; i++)
		targets[i]->counted = true;
	pfree(servers);
	pfree(counts);
	pfree(names);
	pfree(targets);
}

/*
 * spare_slot returns the entry of serverId among the spare slots, or
 * NULL.
 */
static SpareSlots *
spare_slot(Oid serverId)
{
	int			i;

	for (i = 0; i < nspareSlots; i++)
	{
		if (spareSlots[i].serverId == serverId)
			return &spareSlots[i];
	}
	return NULL;
}

/*
 * add_spare_slots records count more spare slots of serverId.
 */
static void
add_spare_slots(Oid serverId, int count)
{
	SpareSlots *spare = spare_slot(serverId);

	if (spare == NULL)
	{
		if (nspareSlots == maxSpareSlots)
		{
			maxSpareSlots = Max(8, maxSpareSlots * 2);
			spareSlots = spareSlots == NULL ?
				MemoryContextAlloc(TopMemoryContext, sizeof(SpareSlots) * maxSpareSlots) :
				repalloc(spareSlots, sizeof(SpareSlots) * maxSpareSlots);
		}
		spare = &spareSlots[nspareSlots++];
		spare->serverId = serverId;
		spare->count = 0;
	}
	spare->count += count;
}

/*
 * release_spare_slots gives back the spare slots of the transaction.  It
 * never throws.
 */
static void
release_spare_slots(void)
{
	int			i;

	for (i = 0; i < nspareSlots; i++)
		SharedPoolRelease(spareSlots[i].serverId, spareSlots[i].count);
	nspareSlots = 0;
	xactSlotsReserved = false;
}

/*
 * holds_slot says whether this backend holds a slot of serverId: an open
 * connection, or a spare.
 */
static bool
holds_slot(Oid serverId)
{
	SpareSlots *spare = spare_slot(serverId);
	dlist_iter	iter;

	if (spare != NULL && spare->count > 0)
		return true;
	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);
		int			i;

		if (set->serverId != serverId)
			continue;
		for (i = 0; i < set->nslots; i++)
		{
			if (set->slots[i]->conn != NULL)
				return true;
		}
	}
	return false;
}

/*
 * reserve_new_slots reserves counts[i] new slots of servers[i] (distinct;
 * names[i] is its node), taking the transaction's spare slots first, all
 * at once.  In a transaction block under a cap, the first call also
 * reserves a spare slot on every node this backend holds none of, so
 * that no later statement of the transaction has to wait for a node
 * while holding connections to others (which could wait for each other
 * without end).  With wait false it returns false, having reserved
 * nothing, when a node is full; with wait true it waits up to
 * shardexec.pool_wait_timeout, an error when the time is up.
 */
static bool
reserve_new_slots(int n, const Oid *servers, const int *counts, const char **names,
				  bool wait)
{
	bool		addSpares = ShardexecMaxSharedPoolSize > 0 && IsTransactionBlock() &&
		!xactSlotsReserved;
	List	   *nodes = addSpares ? ShardexecNodeList() : NIL;
	int			max = n + list_length(nodes);
	Oid		   *all = palloc(sizeof(Oid) * Max(max, 1));
	int		   *allCounts = palloc(sizeof(int) * Max(max, 1));
	const char **allNames = palloc(sizeof(char *) * Max(max, 1));
	int		   *fromSpare = palloc(sizeof(int) * Max(n, 1));
	int			nall = 0;
	int			nneeded;
	ListCell   *lc;
	int			i;

	for (i = 0; i < n; i++)
	{
		SpareSlots *spare = spare_slot(servers[i]);

		fromSpare[i] = spare != NULL ? Min(spare->count, counts[i]) : 0;
		if (counts[i] > fromSpare[i])
		{
			all[nall] = servers[i];
			allNames[nall] = names[i];
			allCounts[nall++] = counts[i] - fromSpare[i];
		}
	}
	nneeded = nall;
	foreach(lc, nodes)
	{
		ShardexecNode *node = lfirst(lc);
		bool		listed = false;

		for (i = 0; i < n; i++)
			listed |= (servers[i] == node->serverId && counts[i] > 0);
		if (listed || holds_slot(node->serverId))
			continue;
		all[nall] = node->serverId;
		allNames[nall] = node->nodeName;
		allCounts[nall++] = 1;
	}

	if (nall > 0 &&
		!SharedPoolReserveAll(nall, all, allCounts, wait ? ShardexecPoolWaitTimeout : 0))
	{
		if (wait)
			pool_full_error(nall, all, allNames);
		pfree(all);
		pfree(allCounts);
		pfree(allNames);
		pfree(fromSpare);
		return false;
	}
	for (i = 0; i < n; i++)
	{
		if (fromSpare[i] > 0)
			spare_slot(servers[i])->count -= fromSpare[i];
	}
	for (i = nneeded; i < nall; i++)
		add_spare_slots(all[i], allCounts[i]);
	if (addSpares)
		xactSlotsReserved = true;
	pfree(all);
	pfree(allCounts);
	pfree(allNames);
	pfree(fromSpare);
	return true;
}

/*
 * close_idle_at_cap closes this backend's idle connections (no statement
 * holds them, no remote transaction) to nodes at the shared cap or with
 * backends waiting, before this backend waits for a node itself.
 * Returns how many it closed.
 */
static int
close_idle_at_cap(void)
{
	dlist_iter	iter;
	int			nclosed = 0;

	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);
		bool		atCap = SharedPoolAtCap(set->serverId);
		int			i;

		for (i = 0; i < set->nslots && atCap; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (connection->conn == NULL || connection->claimCount > 0 ||
				connection->busyClaim != NULL || connection->xactDepth > 0 ||
				connection->changingXactState || connection->prepared ||
				connection->modified)
				continue;
			disconnect(connection);
			nclosed++;
		}
	}
	return nclosed;
}

/*
 * pool_full_error reports that no connection to one of the nodes could be
 * had within shardexec.pool_wait_timeout.
 */
static void
pool_full_error(int n, const Oid *serverIds, const char **nodeNames)
{
	const char *name = nodeNames[0];
	int			i;

	for (i = 0; i < n; i++)
	{
		if (SharedPoolCount(serverIds[i]) >= ShardexecMaxSharedPoolSize)
		{
			name = nodeNames[i];
			break;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
			 errmsg("could not get a connection to node \"%s\": the node has shardexec.max_shared_pool_size (%d) connections",
					name, ShardexecMaxSharedPoolSize),
			 errdetail("No connection became free within shardexec.pool_wait_timeout (%d ms).",
					   ShardexecPoolWaitTimeout),
			 errhint("Raise shardexec.max_shared_pool_size or shardexec.pool_wait_timeout, or lower the number of concurrent transactions.")));
}

/*
 * release_unopened_slots gives back the slots reserved for connections
 * that were not opened after all (an error came first).
 */
static void
release_unopened_slots(void)
{
	dlist_iter	iter;

	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);
		int			i;

		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (connection->conn == NULL && connection->counted)
			{
				connection->counted = false;
				SharedPoolRelease(set->serverId, 1);
			}
		}
	}
}

/*
 * prepare_connections makes every connection in conns usable: idle ones
 * that turn out broken or outdated are replaced, closed ones are opened
 * (all in parallel, after reserving their slots of the shared count),
 * new ones get the session settings, and with inTransaction each one is
 * brought into the remote transaction and the savepoints of the current
 * subtransaction level (all in parallel).
 */
static void
prepare_connections(NodeConnection **conns, int n, bool inTransaction)
{
	Oid			userId = GetUserId();
	int			curlevel = GetCurrentTransactionNestLevel();
	PendingConnect *pending;
	ParallelCommand *commands;
	NodeConnection **targets;
	int			npending = 0;
	int			ncommands = 0;
	int			i;

	if (n == 0)
		return;

	check_idle_connections(conns, n);

	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = conns[i];

		if (connection->conn != NULL &&
			(connection->changingXactState || PQstatus(connection->conn) != CONNECTION_OK))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_EXCEPTION),
					 errmsg("connection to node \"%s\" was lost", connection->nodeName)));
	}

	/* open the closed ones, all at once */
	reserve_slots(conns, n);
	pending = palloc0(sizeof(PendingConnect) * n);
	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = conns[i];
		int			j;
		bool		duplicate = false;

		if (connection->conn != NULL)
			continue;
		for (j = 0; j < i; j++)
			duplicate |= (conns[j] == connection);
		if (duplicate)
			continue;
		pending[npending].nodeName = connection->nodeName;
		pending[npending].keywords = connection->set->keywords;
		pending[npending].values = connection->set->values;
		npending++;
	}
	if (npending > 0)
	{
		int			k = 0;

		PG_TRY();
		{
			connect_in_parallel(pending, npending, userId);
		}
		PG_CATCH();
		{
			release_unopened_slots();
			PG_RE_THROW();
		}
		PG_END_TRY();
		for (i = 0; i < n; i++)
		{
			NodeConnection *connection = conns[i];

			if (connection->conn != NULL)
				continue;
			connection->conn = pending[k++].conn;
			PQsetNoticeReceiver(connection->conn, node_notice_receiver, connection);
			connection->connectedAt = GetCurrentTimestamp();
			connection->lastUsedAt = connection->connectedAt;
			connection->configured = false;
			connection->xactDepth = 0;
			connection->changingXactState = false;
			connection->invalidated = false;
			connection->preparedChecked = false;
			openConnections++;
		}
	}
	pfree(pending);

	/* session settings of the new ones, and the local TimeZone */
	commands = palloc0(sizeof(ParallelCommand) * n);
	targets = palloc(sizeof(NodeConnection *) * n);
	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = conns[i];
		char	   *sql = session_settings_sql(connection);
		int			j;
		bool		duplicate = false;

		for (j = 0; j < ncommands; j++)
			duplicate |= (targets[j] == connection);
		if (sql == NULL || duplicate)
			continue;
		commands[ncommands].conn = connection->conn;
		commands[ncommands].owner = connection;
		commands[ncommands].nodeName = connection->nodeName;
		commands[ncommands].sql = sql;
		targets[ncommands++] = connection;
	}
	if (ncommands > 0)
	{
		const char *timeZone = pg_get_timezone_name(session_timezone);

		ExecuteParallelCommands(commands, ncommands);
		for (i = 0; i < ncommands; i++)
		{
			targets[i]->configured = true;
			forget_time_zone(targets[i]);
			targets[i]->timeZone = MemoryContextStrdup(TopMemoryContext, timeZone);
		}
	}

	/*
	 * Without inTransaction, only connections already in the remote
	 * transaction follow the local one's savepoints; the others stay in
	 * autocommit (see ShardexecReadWithoutRemoteTransaction).
	 */
	if (!inTransaction)
	{
		bool		anyInXact = false;

		for (i = 0; i < n; i++)
			anyInXact |= conns[i]->xactDepth > 0;
		if (!anyInXact)
			return;
	}

	/* the remote transaction and savepoints */
	ncommands = 0;
	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = conns[i];
		int			j;
		bool		duplicate = false;

		for (j = 0; j < ncommands; j++)
			duplicate |= (targets[j] == connection);
		if (connection->xactDepth >= curlevel || duplicate ||
			(!inTransaction && connection->xactDepth == 0))
			continue;
		commands[ncommands].conn = connection->conn;
		commands[ncommands].owner = connection;
		commands[ncommands].nodeName = connection->nodeName;
		commands[ncommands].sql = begin_xact_sql(connection, curlevel);
		targets[ncommands++] = connection;
	}
	if (ncommands > 0)
	{
		for (i = 0; i < ncommands; i++)
			targets[i]->changingXactState = true;
		xactGotConnection = true;
		ExecuteParallelCommands(commands, ncommands);
		for (i = 0; i < ncommands; i++)
		{
			targets[i]->changingXactState = false;
			targets[i]->xactDepth = curlevel;
		}
	}
	pfree(commands);
	pfree(targets);
}

/*
 * session_settings_sql returns the commands that give connection's
 * session the settings it must have: those of CONFIGURE_SQL once, and the
 * local session's TimeZone whenever it differs from the one last sent;
 * NULL when nothing is to be sent.  Computations that depend on TimeZone
 * (timestamptz to date, date_trunc, ...) are pushed down to the nodes
 * (see deparse_query.c), so a node must compute in the local session's
 * time zone.  A SET inside a remote transaction is undone by its
 * rollback, which therefore forgets the time zone (forget_time_zone).
 */
static char *
session_settings_sql(NodeConnection *connection)
{
	const char *timeZone = pg_get_timezone_name(session_timezone);
	char	   *set;

	if (connection->configured && connection->timeZone != NULL &&
		strcmp(connection->timeZone, timeZone) == 0)
		return NULL;
	set = psprintf("SET timezone = %s", quote_literal_cstr(timeZone));
	if (!connection->configured)
		return psprintf("%s; %s", CONFIGURE_SQL, set);
	return set;
}

/*
 * forget_time_zone says that connection's session may no longer have the
 * time zone last sent (a rollback undid it).
 */
static void
forget_time_zone(NodeConnection *connection)
{
	if (connection->timeZone != NULL)
		pfree(connection->timeZone);
	connection->timeZone = NULL;
}

/*
 * begin_xact_sql returns the commands that bring connection's remote
 * transaction to subtransaction level curlevel: START TRANSACTION with
 * the local isolation level and read-only flag, the remote lock timeout,
 * then the savepoints.
 */
static char *
begin_xact_sql(NodeConnection *connection, int curlevel)
{
	StringInfoData sql;
	int			depth = connection->xactDepth;

	initStringInfo(&sql);
	if (depth <= 0)
	{
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
		if (ShardexecRemoteLockTimeout > 0)
			appendStringInfo(&sql, "; SET LOCAL lock_timeout = %d", ShardexecRemoteLockTimeout);
		depth = 1;
	}
	while (depth < curlevel)
	{
		depth++;
		appendStringInfo(&sql, "%sSAVEPOINT s%d", sql.len > 0 ? "; " : "", depth);
	}
	return sql.data;
}

/*
 * check_idle_connections closes the connections in conns that are not in
 * a remote transaction and are broken, outdated, or whose socket the node
 * closed (it restarted, or terminated the session), so that they are
 * opened anew instead of failing the statement.
 */
static void
check_idle_connections(NodeConnection **conns, int n)
{
	struct pollfd *fds = palloc(sizeof(struct pollfd) * n);
	NodeConnection **checked = palloc(sizeof(NodeConnection *) * n);
	int			nchecked = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = conns[i];
		int			j;
		bool		duplicate = false;

		if (connection->conn == NULL || connection->xactDepth > 0 ||
			connection->busyClaim != NULL)
			continue;
		if (connection->invalidated || PQstatus(connection->conn) != CONNECTION_OK ||
			PQtransactionStatus(connection->conn) != PQTRANS_IDLE ||
		/* plugins (src/plugin/): its host moved, or the plugin chain changed */
			(PluginConnectActive() &&
			 PluginConnectionOutdated(connection->conn, connection->nodeName,
									  connection->set->route)))
		{
			disconnect(connection);
			continue;
		}
		for (j = 0; j < nchecked; j++)
			duplicate |= (checked[j] == connection);
		if (duplicate)
			continue;
		fds[nchecked].fd = PQsocket(connection->conn);
		fds[nchecked].events = POLLIN | CLOSED_SOCKET_EVENTS;
		fds[nchecked].revents = 0;
		checked[nchecked++] = connection;
	}

	/*
	 * One poll() with no wait: a WaitEventSet would cost five system calls
	 * on every statement for what is nearly always nothing.
	 */
	if (nchecked > 0 && poll(fds, nchecked, 0) > 0)
	{
		for (i = 0; i < nchecked; i++)
		{
			NodeConnection *connection = checked[i];

			if (fds[i].revents == 0)
				continue;
			/* an idle connection has nothing to say but a notice */
			if ((fds[i].revents & (POLLHUP | POLLERR | POLLNVAL | CLOSED_SOCKET_EVENTS)) ||
				!PQconsumeInput(connection->conn) ||
				PQstatus(connection->conn) != CONNECTION_OK)
				disconnect(connection);
		}
	}
	pfree(fds);
	pfree(checked);
}

/*
 * start_connect starts opening pending's connection with its options.
 */
static void
start_connect(PendingConnect *pending, Oid userId)
{
	/* plugins (src/plugin/): host selection and the connect pipeline */
	if (PluginConnectActive())
		pending->conn = PluginStartConnect(pending->nodeName, pending->keywords,
										   pending->values);
	else
	{
		/*
		 * The options may have been built while a connect plugin, which may
		 * give the password, was active: check them now.
		 */
		CheckConnectionPassword(userId, pending->nodeName, pending->keywords,
								pending->values);
		pending->conn = PQconnectStartParams(pending->keywords, pending->values, false);
	}
	if (pending->conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while connecting to node \"%s\"",
						pending->nodeName)));
	pending->status = PGRES_POLLING_WRITING;
	pending->done = false;
}

/*
 * finish_connect checks pending's connection, which libpq reports done:
 * it must be up, and a non-superuser must have used a password.
 */
static void
finish_connect(PendingConnect *pending, Oid userId)
{
	if (PQstatus(pending->conn) != CONNECTION_OK)
	{
		char	   *msg = pchomp(PQerrorMessage(pending->conn));

		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to node \"%s\"", pending->nodeName),
				 errdetail_internal("%s", msg)));
	}
	if (!superuser_arg(userId) && !PQconnectionUsedPassword(pending->conn))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required to connect to node \"%s\"", pending->nodeName),
				 errdetail("Non-superuser cannot connect if the node does not request a password."),
				 errhint("Target node's authentication method must be changed.")));
	pending->done = true;
}

/*
 * connect_in_parallel opens the n connections in pending as userId, all
 * at once, without blocking the backend: the connects are driven on one
 * WaitEventSet with the latch, interrupts are honoured, and the whole
 * lot must be done within shardexec.connect_timeout.  All or nothing: on
 * error every connection of the lot is closed.
 */
static void
connect_in_parallel(PendingConnect *pending, int n, Oid userId)
{
	TimestampTz deadline;
	pgsocket   *sockets = palloc(sizeof(pgsocket) * n);
	uint32	   *events = palloc(sizeof(uint32) * n);
	uint32	   *occurred = palloc(sizeof(uint32) * n);
	int		   *index = palloc(sizeof(int) * n);
	int			i;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   ShardexecConnectTimeout * 1000);
	PG_TRY();
	{
		for (i = 0; i < n; i++)
			start_connect(&pending[i], userId);

		for (;;)
		{
			int			nwait = 0;
			long		timeout;

			for (i = 0; i < n; i++)
			{
				PendingConnect *p = &pending[i];

				if (p->done)
					continue;
				if (PQstatus(p->conn) == CONNECTION_BAD ||
					p->status == PGRES_POLLING_FAILED ||
					p->status == PGRES_POLLING_OK)
				{
					finish_connect(p, userId);
					continue;
				}
				sockets[nwait] = PQsocket(p->conn);
				events[nwait] = (p->status == PGRES_POLLING_READING) ?
					WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
				index[nwait++] = i;
			}
			if (nwait == 0)
				break;

			timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (timeout <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
						 errmsg("could not connect to node \"%s\": timeout after %d seconds",
								pending[index[0]].nodeName, ShardexecConnectTimeout),
						 errhint("Check that the node is running, or raise shardexec.connect_timeout.")));

			if (WaitForSockets(nwait, sockets, events, occurred, timeout) > 0)
			{
				for (i = 0; i < nwait; i++)
				{
					if (occurred[i] != 0)
						pending[index[i]].status = PQconnectPoll(pending[index[i]].conn);
				}
			}
		}
	}
	PG_CATCH();
	{
		for (i = 0; i < n; i++)
		{
			if (pending[i].conn != NULL)
				PQfinish(pending[i].conn);
			pending[i].conn = NULL;
		}
		PG_RE_THROW();
	}
	PG_END_TRY();

	pfree(sockets);
	pfree(events);
	pfree(occurred);
	pfree(index);
}

/*
 * disconnect closes connection's session and gives back its slot of the
 * shared count.  Losing a remote transaction that wrote something makes
 * the local transaction fail at commit.  It never throws.
 */
static void
disconnect(NodeConnection *connection)
{
	if (connection->waitSet != NULL)
	{
		FreeWaitEventSet(connection->waitSet);
		connection->waitSet = NULL;
		connectionWaitSets--;
	}
	if (connection->conn != NULL)
	{
		PQfinish(connection->conn);
		connection->conn = NULL;
		openConnections--;
	}
	if (connection->counted)
	{
		connection->counted = false;
		SharedPoolRelease(connection->set->serverId, 1);
	}
	if (connection->xactDepth > 0 && connection->modified)
		connection->set->xactFailed = true;
	connection->xactDepth = 0;
	connection->changingXactState = false;
	connection->configured = false;
	forget_time_zone(connection);
	connection->invalidated = false;
	connection->busyClaim = NULL;
	connection->preparedChecked = false;
	list_free_deep(connection->statements);
	connection->statements = NIL;
}

/*
 * PreparedStatementNumber returns the number n of the statement
 * "shardexec_n" prepared with sql on connection's session, or -1; with
 * add, a statement not prepared yet is recorded (the caller prepares it)
 * and its number returned, unless the session already holds as many as
 * it may (then -1).
 */
int
PreparedStatementNumber(NodeConnection *connection, const char *sql, bool add)
{
	ListCell   *lc;
	MemoryContext oldContext;

	foreach(lc, connection->statements)
	{
		if (strcmp((char *) lfirst(lc), sql) == 0)
			return foreach_current_index(lc);
	}
	if (!add || list_length(connection->statements) >= SHARDEXEC_MAX_PREPARED_STATEMENTS)
		return -1;
	oldContext = MemoryContextSwitchTo(TopMemoryContext);
	connection->statements = lappend(connection->statements, pstrdup(sql));
	MemoryContextSwitchTo(oldContext);
	return list_length(connection->statements) - 1;
}

/*
 * ForgetPreparedStatement records that statement number was not prepared
 * after all (its PREPARE failed); its number is not reused.
 */
void
ForgetPreparedStatement(NodeConnection *connection, int number)
{
	ListCell   *lc = list_nth_cell(connection->statements, number);

	pfree(lfirst(lc));
	lfirst(lc) = MemoryContextStrdup(TopMemoryContext, "");
}

/* an idle connection and when it was last used, for close_idle_connections */
typedef struct IdleConnection
{
	NodeConnection *connection;
	Oid			serverId;
	TimestampTz lastUsedAt;
} IdleConnection;

static int
compare_idle(const void *a, const void *b)
{
	const IdleConnection *x = (const IdleConnection *) a;
	const IdleConnection *y = (const IdleConnection *) b;

	if (x->serverId != y->serverId)
		return x->serverId < y->serverId ? -1 : 1;
	/* most recently used first */
	if (x->lastUsedAt != y->lastUsedAt)
		return x->lastUsedAt > y->lastUsedAt ? -1 : 1;
	return 0;
}

/*
 * close_idle_connections closes the connections that no statement holds
 * and that are in no remote transaction: all of them, or those that the
 * idle policy (see the file header) does not keep.  Returns how many it
 * closed.  It never throws.
 */
static int
close_idle_connections(bool all)
{
	IdleConnection *idle;
	TimestampTz now = GetCurrentTimestamp();
	dlist_iter	iter;
	int			nidle = 0;
	int			nclosed = 0;
	int			i;

	if (openConnections <= 0)
		return 0;
	idle = palloc(sizeof(IdleConnection) * openConnections);
	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);

		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (connection->conn == NULL || connection->claimCount > 0 ||
				connection->busyClaim != NULL || connection->xactDepth > 0 ||
				connection->changingXactState || connection->prepared)
				continue;
			if (all || connection->invalidated ||
				(ShardexecConnectionIdleTimeout > 0 &&
				 now - connection->lastUsedAt >=
				 (TimestampTz) ShardexecConnectionIdleTimeout * USECS_PER_SEC) ||
				nidle >= openConnections)
			{
				disconnect(connection);
				nclosed++;
				continue;
			}
			idle[nidle].connection = connection;
			idle[nidle].serverId = set->serverId;
			idle[nidle].lastUsedAt = connection->lastUsedAt;
			nidle++;
		}
	}

	/* per node, the most recently used up to the limit; none at the cap */
	qsort(idle, nidle, sizeof(IdleConnection), compare_idle);
	for (i = 0; i < nidle;)
	{
		Oid			serverId = idle[i].serverId;
		int			keep = SharedPoolAtCap(serverId) ? 0 : ShardexecMaxIdleConnectionsPerNode;
		int			kept = 0;

		for (; i < nidle && idle[i].serverId == serverId; i++)
		{
			if (kept < keep)
				kept++;
			else
			{
				disconnect(idle[i].connection);
				nclosed++;
			}
		}
	}
	pfree(idle);
	return nclosed;
}

/*
 * PreparedTransactionGid writes into gid the name of the prepared
 * transaction of connection, the number-th prepared by the current
 * transaction: the coordinator's prefix (its system identifier and
 * database), the local transaction's full id, the node's id and number.
 */
static void
prepared_transaction_gid(char *gid, NodeConnection *connection, int number)
{
	FullTransactionId fxid = GetTopFullTransactionId();

	snprintf(gid, SHARDEXEC_GID_SIZE, "%s" UINT64_FORMAT "_%d_%d",
			 PreparedTransactionGidPrefix(), U64FromFullTransactionId(fxid),
			 connection->set->nodeId, number);
}

/*
 * pre_commit_connections ends every remote transaction: with one-phase
 * commit each gets COMMIT, all in parallel; with two-phase commit (see
 * the file header) those that wrote are prepared and the commit records
 * inserted.  An error aborts the local transaction, which rolls back
 * what is left.
 */
static void
pre_commit_connections(void)
{
	dlist_iter	iter;
	NodeConnection **targets;
	NodeConnection **written;
	ParallelCommand *commands;
	int			ntargets = 0;
	int			nwritten = 0;
	int			max = 0;
	bool		use2pc;
	int			i;

	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);

		max += set->nslots;
	}
	targets = palloc(sizeof(NodeConnection *) * Max(max, 1));
	written = palloc(sizeof(NodeConnection *) * Max(max, 1));

	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);

		if (set->xactFailed)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("cannot commit: the connection to node \"%s\" was lost after it wrote in this transaction",
							set->nodeName)));
		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (connection->conn == NULL || connection->xactDepth == 0)
				continue;
			if (connection->changingXactState)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_EXCEPTION),
						 errmsg("cannot commit: the remote transaction on node \"%s\" is in an unknown state",
								connection->nodeName)));
			if (connection->busyClaim != NULL ||
				PQtransactionStatus(connection->conn) == PQTRANS_ACTIVE)
				elog(ERROR, "connection to node \"%s\" is still busy at commit",
					 connection->nodeName);
			targets[ntargets++] = connection;
			if (connection->modified)
				written[nwritten++] = connection;
		}
	}
	if (ntargets == 0)
		return;

	use2pc = (ShardexecUse2pc == SHARDEXEC_2PC_ON && nwritten >= 1) ||
		(ShardexecUse2pc == SHARDEXEC_2PC_AUTO && nwritten >= 2);
	if (use2pc)
		check_prepared_transactions_allowed(written, nwritten);

	commands = palloc0(sizeof(ParallelCommand) * ntargets);
	for (i = 0; i < ntargets; i++)
	{
		NodeConnection *connection = targets[i];

		commands[i].conn = connection->conn;
		commands[i].owner = connection;
		commands[i].nodeName = connection->nodeName;
		commands[i].sql = "COMMIT TRANSACTION";
		if (use2pc && connection->modified)
		{
			prepared_transaction_gid(connection->gid, connection, i);
			commands[i].sql = psprintf("PREPARE TRANSACTION '%s'", connection->gid);
		}
	}

	if (use2pc)
	{
		char	  **gids = palloc(sizeof(char *) * nwritten);
		int32	   *nodeIds = palloc(sizeof(int32) * nwritten);
		int			n = 0;

		/*
		 * The commit records, before anything is prepared: they become
		 * visible only if the local transaction commits.  Flushing them
		 * also makes the transaction id in the names durable: after a
		 * crash the coordinator never gives it to another transaction
		 * (whose names would be the same), and recovery sees it as over
		 * rather than not begun yet.
		 */
		for (i = 0; i < ntargets; i++)
		{
			if (targets[i]->modified)
			{
				gids[n] = targets[i]->gid;
				nodeIds[n++] = targets[i]->set->nodeId;
			}
		}
		InsertTransactionRecords(n, gids, nodeIds);
		XLogFlush(XactLastRecEnd);
		pfree(gids);
		pfree(nodeIds);

		/* from here on, the abort must roll back what was prepared */
		xactPrepared = true;
		ForceSyncCommit();
	}
	for (i = 0; i < ntargets; i++)
		targets[i]->changingXactState = true;
	run_commit_commands(targets, commands, ntargets, use2pc);

	if (ShardexecTest2pcFault == SHARDEXEC_FAULT_ERROR_AFTER_PREPARE && use2pc)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("shardexec.test_2pc_fault: error after prepare")));
	if (ShardexecTest2pcFault == SHARDEXEC_FAULT_SLEEP_AFTER_PREPARE && use2pc)
		test_fault_sleep("after prepare");
	pfree(commands);
	pfree(targets);
	pfree(written);
}

/*
 * commit_round_timeout returns the time limit, in ms, of one round of
 * remote commands run while the local transaction or subtransaction
 * commits (COMMIT, PREPARE TRANSACTION, RELEASE SAVEPOINT, the check of
 * max_prepared_transactions), or -1 for none.  PostgreSQL turns
 * statement_timeout off before it commits, so each round gets
 * statement_timeout of its own: a node that stops answering then fails
 * the commit instead of holding it forever.
 */
static long
commit_round_timeout(void)
{
	return StatementTimeout > 0 ? StatementTimeout : -1;
}

/*
 * run_commit_commands runs the COMMIT or PREPARE TRANSACTION commands of
 * the n connections targets, all in parallel, and records how each
 * remote transaction ended, also when one failed (the error is then
 * raised).
 */
static void
run_commit_commands(NodeConnection **targets, ParallelCommand *commands, int n,
					bool use2pc)
{
	PG_TRY();
	{
		ExecuteParallelCommandsWithin(commands, n, commit_round_timeout());
	}
	PG_CATCH();
	{
		note_commit_outcomes(targets, commands, n, use2pc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	note_commit_outcomes(targets, commands, n, use2pc);
}

/*
 * note_commit_outcomes records how the remote transactions of
 * run_commit_commands ended.
 */
static void
note_commit_outcomes(NodeConnection **targets, ParallelCommand *commands, int n,
					 bool use2pc)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = targets[i];
		bool		preparing = use2pc && connection->modified;

		if (commands[i].ok ||
			(PQstatus(connection->conn) == CONNECTION_OK &&
			 PQtransactionStatus(connection->conn) == PQTRANS_IDLE))
		{
			/* done, or failed and rolled back by the node */
			connection->changingXactState = false;
			connection->xactDepth = 0;
			connection->prepared = preparing && commands[i].ok;
			/* a rollback undoes a SET timezone sent inside the transaction */
			if (!commands[i].ok)
				forget_time_zone(connection);
		}
		/* else unknown: abort closes it; recovery resolves a PREPARE */
	}
}

/*
 * check_prepared_transactions_allowed asks every connection in conns that
 * was not asked yet for the node's max_prepared_transactions (in
 * parallel), and refuses, before anything is prepared, to go on if a
 * node has none.
 */
static void
check_prepared_transactions_allowed(NodeConnection **conns, int n)
{
	ParallelCommand *commands = palloc0(sizeof(ParallelCommand) * n);
	NodeConnection **asked = palloc(sizeof(NodeConnection *) * n);
	int			nasked = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (conns[i]->preparedChecked)
			continue;
		commands[nasked].conn = conns[i]->conn;
		commands[nasked].owner = conns[i];
		commands[nasked].nodeName = conns[i]->nodeName;
		commands[nasked].sql = "SHOW max_prepared_transactions";
		commands[nasked].wantValue = true;
		asked[nasked++] = conns[i];
	}
	if (nasked > 0)
	{
		ExecuteParallelCommandsWithin(commands, nasked, commit_round_timeout());
		for (i = 0; i < nasked; i++)
		{
			asked[i]->preparedChecked = true;
			asked[i]->preparedAllowed =
				commands[i].value != NULL && atoi(commands[i].value) > 0;
		}
	}
	for (i = 0; i < n; i++)
	{
		if (!conns[i]->preparedAllowed)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" does not allow prepared transactions",
							conns[i]->nodeName),
					 errdetail("This transaction wrote on the node and needs two-phase commit, but max_prepared_transactions is 0 there."),
					 errhint("Set max_prepared_transactions above zero on the node and restart it, or set shardexec.use_2pc to off.")));
	}
	pfree(commands);
	pfree(asked);
}

/*
 * commit_prepared_transactions sends COMMIT PREPARED for every remote
 * transaction prepared at pre-commit, all in parallel, once the local
 * transaction has committed.  It never throws: what fails is left to
 * recovery, with a WARNING.
 */
static void
commit_prepared_transactions(void)
{
	dlist_iter	iter;
	ParallelCommand *commands;
	NodeConnection **targets;
	int			max = 0;
	int			n = 0;
	int			i;

	if (ShardexecTest2pcFault == SHARDEXEC_FAULT_SLEEP_BEFORE_COMMIT_PREPARED)
		test_fault_sleep("before commit prepared");

	dlist_foreach(iter, &connectionSets)
		max += dlist_container(ConnectionSet, listNode, iter.cur)->nslots;
	commands = palloc0(sizeof(ParallelCommand) * Max(max, 1));
	targets = palloc(sizeof(NodeConnection *) * Max(max, 1));
	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);

		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (!connection->prepared)
				continue;
			if (connection->conn == NULL || PQstatus(connection->conn) != CONNECTION_OK)
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not commit prepared transaction \"%s\" on node \"%s\": the connection was lost",
								connection->gid, connection->nodeName),
						 errhint("shardexec.recover_prepared_transactions() will commit it.")));
				connection->prepared = false;
				continue;
			}
			commands[n].conn = connection->conn;
			commands[n].owner = connection;
			commands[n].nodeName = connection->nodeName;
			commands[n].sql = psprintf("COMMIT PREPARED '%s'", connection->gid);
			targets[n++] = connection;
		}
	}
	if (n > 0)
	{
		CleanUpConnections(commands, n, CONNECTION_CLEANUP_TIMEOUT_MS);
		for (i = 0; i < n; i++)
		{
			NodeConnection *connection = targets[i];

			connection->prepared = false;
			if (commands[i].ok)
				continue;
			ereport(WARNING,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not commit prepared transaction \"%s\" on node \"%s\"",
							connection->gid, connection->nodeName),
					 errdetail_internal("%s", pchomp(PQerrorMessage(connection->conn))),
					 errhint("shardexec.recover_prepared_transactions() will commit it.")));
			if (PQstatus(connection->conn) != CONNECTION_OK ||
				PQtransactionStatus(connection->conn) != PQTRANS_IDLE)
				disconnect(connection);
		}
	}
	pfree(commands);
	pfree(targets);
}

/*
 * abort_connections rolls back every remote transaction (ROLLBACK, or
 * ROLLBACK PREPARED for one prepared at pre-commit) and brings every
 * connection with work in flight back to idle (cancel, then read what is
 * left), all in parallel and within CONNECTION_CLEANUP_TIMEOUT_MS; what
 * does not make it is closed.  It never throws.
 */
static void
abort_connections(void)
{
	dlist_iter	iter;
	NodeConnection **targets;
	ParallelCommand *commands;
	int			max = 0;
	int			n = 0;
	int			i;

	dlist_foreach(iter, &connectionSets)
		max += dlist_container(ConnectionSet, listNode, iter.cur)->nslots;
	if (max == 0)
		return;

	targets = palloc(sizeof(NodeConnection *) * max);
	commands = palloc0(sizeof(ParallelCommand) * max);
	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);

		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];
			bool		active;

			if (connection->conn == NULL)
			{
				connection->prepared = false;
				continue;
			}
			active = PQtransactionStatus(connection->conn) == PQTRANS_ACTIVE ||
				PQpipelineStatus(connection->conn) != PQ_PIPELINE_OFF;
			if (connection->xactDepth == 0 && !active && !connection->prepared)
				continue;
			if (connection->changingXactState ||
				PQstatus(connection->conn) != CONNECTION_OK)
			{
				/* a PREPARE in an unknown state is left to recovery */
				connection->prepared = false;
				disconnect(connection);
				continue;
			}
			commands[n].conn = connection->conn;
			commands[n].owner = connection;
			commands[n].nodeName = connection->nodeName;
			commands[n].cancel = active;
			if (connection->prepared)
				commands[n].sql = psprintf("ROLLBACK PREPARED '%s'", connection->gid);
			else
				commands[n].sql = connection->xactDepth > 0 ? "ROLLBACK TRANSACTION" : NULL;
			if (connection->xactDepth > 0 && !connection->prepared)
				forget_time_zone(connection);
			targets[n++] = connection;
		}
	}

	if (n > 0)
	{
		CleanUpConnections(commands, n, ConnectionCleanupTimeout());
		for (i = 0; i < n; i++)
		{
			NodeConnection *connection = targets[i];

			if (connection->prepared && !commands[i].ok)
				ereport(WARNING,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not roll back prepared transaction \"%s\" on node \"%s\"",
								connection->gid, connection->nodeName),
						 errhint("shardexec.recover_prepared_transactions() will roll it back.")));
			connection->prepared = false;
			if (!commands[i].ok)
				disconnect(connection);
		}
	}
	pfree(targets);
	pfree(commands);
}

/*
 * end_of_xact forgets the transaction's state: remote transaction depths,
 * writes, shard pins and claims; connections that are broken, outdated or
 * not idle are closed, and the idle ones the idle policy does not keep.
 */
static void
end_of_xact(void)
{
	dlist_iter	iter;
	dlist_mutable_iter miter;
	TimestampTz now = 0;

	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);
		int			i;

		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (connection->usedInXact && connection->conn != NULL)
			{
				if (now == 0)
					now = GetCurrentTimestamp();
				connection->lastUsedAt = now;
			}
			connection->usedInXact = false;
			connection->xactDepth = 0;
			connection->modified = false;
			connection->nodeWidePin = false;
			connection->prepared = false;
			if (connection->conn != NULL &&
				(connection->invalidated || connection->changingXactState ||
				 PQstatus(connection->conn) != CONNECTION_OK ||
				 PQtransactionStatus(connection->conn) != PQTRANS_IDLE))
				disconnect(connection);
			connection->changingXactState = false;
		}
		set->xactFailed = false;
	}

	dlist_foreach_modify(miter, &liveClaims)
		orphan_claim(dlist_container(ConnectionClaim, listNode, miter.cur));

	release_unopened_slots();
	release_spare_slots();
	(void) close_idle_connections(false);

	/* sets that nothing leads to any more and that hold no connection */
	dlist_foreach_modify(miter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, miter.cur);
		bool		empty = set->routes == 0;
		int			i;

		for (i = 0; i < set->nslots && empty; i++)
			empty = set->slots[i]->conn == NULL;
		if (empty)
		{
			dlist_delete(&set->listNode);
			MemoryContextDelete(set->context);
		}
	}

	shardPins = NULL;			/* its memory goes with the transaction */
	xactGotConnection = false;
	xactPrepared = false;
}

/*
 * test_fault_sleep stops here for shardexec.test_2pc_fault, for a test to
 * kill the server (it runs with interrupts held after the local commit).
 */
static void
test_fault_sleep(const char *where)
{
	int			i;

	elog(LOG, "shardexec.test_2pc_fault: sleeping %s", where);
	for (i = 0; i < 3000; i++)
	{
		pg_usleep(100 * 1000L);
		if (!INTERRUPTS_CAN_BE_PROCESSED())
			continue;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * connection_xact_callback commits or rolls back the remote transactions
 * with the local one.  An error while committing aborts the local
 * transaction, which rolls back what is left.
 */
static void
connection_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_COMMIT:
			if (xactGotConnection)
				pre_commit_connections();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (xactGotConnection)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has used distributed tables")));
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_COMMIT:
			if (xactPrepared)
				commit_prepared_transactions();
			end_of_xact();
			break;
		case XACT_EVENT_PREPARE:
			end_of_xact();
			break;
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_ABORT:
			abort_connections();
			end_of_xact();
			break;
	}
}

/*
 * connection_subxact_callback releases or rolls back the remote
 * savepoint of the subtransaction that ends, and hands its claims to the
 * parent (commit) or orphans them (abort).
 */
static void
connection_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	dlist_iter	iter;
	dlist_mutable_iter miter;
	NodeConnection **targets;
	ParallelCommand *commands;
	int			curlevel;
	int			max = 0;
	int			n = 0;
	int			i;

	if (event != SUBXACT_EVENT_PRE_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;

	if (xactGotConnection)
	{
		curlevel = GetCurrentTransactionNestLevel();
		dlist_foreach(iter, &connectionSets)
			max += dlist_container(ConnectionSet, listNode, iter.cur)->nslots;
		targets = palloc(sizeof(NodeConnection *) * Max(max, 1));
		commands = palloc0(sizeof(ParallelCommand) * Max(max, 1));

		dlist_foreach(iter, &connectionSets)
		{
			ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);

			for (i = 0; i < set->nslots; i++)
			{
				NodeConnection *connection = set->slots[i];

				if (connection->conn == NULL || connection->xactDepth < curlevel)
					continue;
				if (event == SUBXACT_EVENT_ABORT_SUB && connection->changingXactState)
					continue;	/* unknown state: the transaction cannot commit */
				commands[n].conn = connection->conn;
				commands[n].owner = connection;
				commands[n].nodeName = connection->nodeName;
				if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
					commands[n].sql = psprintf("RELEASE SAVEPOINT s%d", curlevel);
				else
				{
					commands[n].sql = psprintf("ROLLBACK TO SAVEPOINT s%d; RELEASE SAVEPOINT s%d",
											   curlevel, curlevel);
					forget_time_zone(connection);
					commands[n].cancel =
						PQtransactionStatus(connection->conn) == PQTRANS_ACTIVE ||
						PQpipelineStatus(connection->conn) != PQ_PIPELINE_OFF;
				}
				connection->changingXactState = true;
				targets[n++] = connection;
			}
		}

		if (n > 0 && event == SUBXACT_EVENT_PRE_COMMIT_SUB)
		{
			ExecuteParallelCommandsWithin(commands, n, commit_round_timeout());
			for (i = 0; i < n; i++)
			{
				targets[i]->changingXactState = false;
				targets[i]->xactDepth--;
			}
		}
		else if (n > 0)
		{
			CleanUpConnections(commands, n, CONNECTION_CLEANUP_TIMEOUT_MS);
			for (i = 0; i < n; i++)
			{
				NodeConnection *connection = targets[i];

				if (commands[i].ok)
				{
					connection->changingXactState = false;
					connection->xactDepth--;
				}
				else if (PQstatus(connection->conn) != CONNECTION_OK)
					disconnect(connection);
				/* else: unknown state, the main transaction cannot commit */
			}
		}
	}

	dlist_foreach_modify(miter, &liveClaims)
	{
		ConnectionClaim *claim = dlist_container(ConnectionClaim, listNode, miter.cur);

		if (claim->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
			claim->subid = parentSubid;
		else
			orphan_claim(claim);
	}
	if (event == SUBXACT_EVENT_ABORT_SUB)
		release_unopened_slots();
}

/*
 * connection_inval_callback drops the routes that a changed foreign
 * server or user mapping may affect, and marks their connections, which
 * are closed once idle.  A hash value of 0 means "all".
 */
static void
connection_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	Route	   *route;
	dlist_iter	iter;

	invalidations++;
	hash_seq_init(&scan, routeHash);
	while ((route = hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 || cacheid == USERMAPPINGOID ||
			route->serverHashValue == hashvalue)
			route->valid = false;
	}

	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);
		int			i;

		if (!(hashvalue == 0 || cacheid == USERMAPPINGOID ||
			  GetSysCacheHashValue1(FOREIGNSERVEROID,
									ObjectIdGetDatum(set->serverId)) == hashvalue))
			continue;
		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (connection->conn == NULL)
				continue;
			if (connection->xactDepth == 0 && connection->claimCount == 0 &&
				connection->busyClaim == NULL && !connection->prepared)
				disconnect(connection);
			else
				connection->invalidated = true;
		}
	}
}

/*
 * shardexec_connections returns this backend's open pooled connections,
 * for the view shardexec.connections.
 */
Datum
shardexec_connections(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();
	dlist_iter	iter;

	InitMaterializedSRF(fcinfo, 0);
	dlist_foreach(iter, &connectionSets)
	{
		ConnectionSet *set = dlist_container(ConnectionSet, listNode, iter.cur);
		int			i;

		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];
			Datum		values[12];
			bool		nulls[12];
			const char *state;
			Interval   *age;
			int			port;

			if (connection->conn == NULL)
				continue;
			memset(nulls, false, sizeof(nulls));
			if (PQstatus(connection->conn) != CONNECTION_OK)
				state = "broken";
			else if (connection->invalidated)
				state = "invalidated";
			else if (connection->busyClaim != NULL)
				state = "busy";
			else if (connection->claimCount > 0)
				state = "claimed";
			else
				state = "idle";
			port = atoi(set->port != NULL ? set->port : PQport(connection->conn));

			values[0] = DirectFunctionCall1(namein, CStringGetDatum(set->nodeName));
			values[1] = CStringGetTextDatum(set->host != NULL ? set->host :
											PQhost(connection->conn));
			values[2] = Int32GetDatum(port > 0 ? port : 5432);
			values[3] = CStringGetTextDatum(set->user != NULL ? set->user : "");
			values[4] = CStringGetTextDatum(set->displayKey);
			values[5] = CStringGetTextDatum(state);
			values[6] = Int32GetDatum(connection->claimCount);
			values[7] = BoolGetDatum(connection->xactDepth > 0);
			age = palloc0(sizeof(Interval));
			age->time = now - connection->connectedAt;
			values[8] = IntervalPGetDatum(age);
			values[9] = Int64GetDatum((int64) connection->uses);
			values[10] = Int32GetDatum(connection->slot);
			values[11] = Int32GetDatum(PQbackendPID(connection->conn));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/*
 * shardexec_close_idle_connections closes this backend's pooled
 * connections that no statement holds and that are in no remote
 * transaction, and returns how many it closed.
 */
Datum
shardexec_close_idle_connections(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(close_idle_connections(true));
}
