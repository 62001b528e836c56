/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  The backend's connections to nodes and the remote transactions
 *		  that follow the local one.
 *
 * Connection sets.  A backend keeps, per (foreign server, user), a set of
 * connections to the node, numbered by slot from 0, opened on demand and
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
 * Acquiring all connections of a statement at once (all-or-nothing, the
 * connects of every missing connection run in parallel under one
 * shardexec.connect_timeout) is what will let a shared per-node cap
 * (the pool) make a statement wait for connections without two
 * statements waiting for each other's.
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
 * started with the local isolation level and read-only flag; savepoints
 * are mirrored lazily, one level at a time, as postgres_fdw does.  Every
 * connection of a set has its own remote transaction.  At pre-commit
 * every remote transaction is committed, all in parallel; on abort each
 * one is rolled back, after a cancel request if a query was still
 * running, with a bounded wait (CONNECTION_CLEANUP_TIMEOUT_MS) after
 * which the connection is closed instead, so that the backend never hangs
 * on a node that does not answer.  A connection whose state cannot be
 * restored is closed, never reused.
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
 * mark the connections built from it; they are closed as soon as no
 * remote transaction is open on them and no statement holds them.
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
#include "lib/stringinfo.h"
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

/* fixes how values are printed and parsed, see configure_sql */
#define CONFIGURE_SQL \
	"SET search_path = pg_catalog; SET timezone = 'UTC'; " \
	"SET datestyle = ISO; SET intervalstyle = postgres; " \
	"SET extra_float_digits = 3"

typedef struct ConnCacheKey
{
	Oid			serverId;
	Oid			userId;
} ConnCacheKey;

/* the connections of one (server, user): a hash entry */
typedef struct ConnectionSet
{
	ConnCacheKey key;			/* hash key, must be first */
	char	   *nodeName;		/* in TopMemoryContext */
	int			nslots;
	int			maxslots;
	NodeConnection **slots;		/* in TopMemoryContext, stable pointers */
	uint32		serverHashValue;
	bool		xactFailed;		/* lost a connection that wrote in this xact */
} ConnectionSet;

/* a shard written through a connection in the current transaction */
typedef struct ShardPinKey
{
	int64		shardId;
	Oid			serverId;
	Oid			userId;
} ShardPinKey;

typedef struct ShardPin
{
	ShardPinKey key;			/* hash key, must be first */
	int			slot;
} ShardPin;

/* one connection being opened by connect_in_parallel */
typedef struct PendingConnect
{
	Oid			serverId;
	const char *nodeName;
	PGconn	   *conn;
	PostgresPollingStatusType status;
	bool		done;
} PendingConnect;

static HTAB *connectionHash = NULL;

/* shards written in this transaction; in TopTransactionContext */
static HTAB *shardPins = NULL;

/* claims not yet released nor orphaned */
static dlist_head liveClaims = DLIST_STATIC_INIT(liveClaims);

/* whether any connection has a remote transaction open */
static bool xactGotConnection = false;

static ConnectionSet *get_connection_set(ShardexecNode *node, bool create);
static NodeConnection *new_slot(ConnectionSet *set);
static NodeConnection *choose_single_connection(ConnectionSet *set);
static NodeConnection *choose_free_connection(ConnectionSet *set);
static int	required_slot(ConnectionSet *set, int64 shardId);
static NodeConnection *find_connection(PGconn *conn);
static void finish_busy_work(NodeConnection *connection);
static void orphan_claim(ConnectionClaim *claim);
static void prepare_connections(NodeConnection **conns, int n, bool inTransaction);
static void check_idle_connections(NodeConnection **conns, int n);
static void connect_in_parallel(PendingConnect *pending, int n, Oid userId);
static void start_connect(PendingConnect *pending, Oid userId);
static void finish_connect(PendingConnect *pending, Oid userId);
static char *begin_xact_sql(NodeConnection *connection, int curlevel);
static void disconnect(NodeConnection *connection);
static void pre_commit_connections(void);
static void abort_connections(void);
static void end_of_xact(void);
static void connection_xact_callback(XactEvent event, void *arg);
static void connection_subxact_callback(SubXactEvent event,
										SubTransactionId mySubid,
										SubTransactionId parentSubid,
										void *arg);
static void connection_inval_callback(Datum arg, int cacheid, uint32 hashvalue);

/*
 * InitConnectionManagement registers the transaction and invalidation
 * callbacks.  Called once from _PG_init.
 */
void
InitConnectionManagement(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(ConnCacheKey);
	ctl.entrysize = sizeof(ConnectionSet);
	connectionHash = hash_create("shardexec connections", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS);

	RegisterXactCallback(connection_xact_callback, NULL);
	RegisterSubXactCallback(connection_subxact_callback, NULL);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, connection_inval_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, connection_inval_callback, (Datum) 0);
}

/*
 * get_connection_set returns the current user's connection set for node,
 * creating it (empty) if create is true, or NULL.
 */
static ConnectionSet *
get_connection_set(ShardexecNode *node, bool create)
{
	ConnCacheKey key;
	ConnectionSet *set;
	bool		found;

	key.serverId = node->serverId;
	key.userId = GetUserId();
	set = hash_search(connectionHash, &key, create ? HASH_ENTER : HASH_FIND, &found);
	if (set == NULL)
		return NULL;
	if (!found)
	{
		set->nodeName = NULL;
		set->nslots = 0;
		set->maxslots = 0;
		set->slots = NULL;
		set->xactFailed = false;
		set->serverHashValue =
			GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(key.serverId));
	}
	if (set->nodeName == NULL || strcmp(set->nodeName, node->nodeName) != 0)
	{
		/* new, or the server was renamed */
		char	   *name = MemoryContextStrdup(TopMemoryContext, node->nodeName);
		int			i;

		if (set->nodeName != NULL)
			pfree(set->nodeName);
		set->nodeName = name;
		for (i = 0; i < set->nslots; i++)
			set->slots[i]->nodeName = name;
	}
	return set;
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
			set->slots = MemoryContextAlloc(TopMemoryContext,
											newmax * sizeof(NodeConnection *));
		else
			set->slots = repalloc(set->slots, newmax * sizeof(NodeConnection *));
		set->maxslots = newmax;
	}
	connection = MemoryContextAllocZero(TopMemoryContext, sizeof(NodeConnection));
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
 * belongs to the cache: call ReleaseNodeConnection, never PQfinish.
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
			if (pass == 2 && connection->conn == NULL)
				return connection;
		}
	}
	return new_slot(set);
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
	key.serverId = connection->set->key.serverId;
	key.userId = connection->set->key.userId;
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
		key.serverId = set->key.serverId;
		key.userId = set->key.userId;
		pin = hash_search(shardPins, &key, HASH_FIND, NULL);
		if (pin != NULL && pin->slot < set->nslots)
			return pin->slot;
	}
	return -1;
}

/*
 * ClaimNodeConnections claims, for one statement, every connection that
 * requests (a list of ConnectionRequest) asks for, all at once: the
 * required slots, then connections that no other statement holds,
 * opening new ones as needed (all in parallel, within
 * shardexec.connect_timeout).  Every connection is inside the remote
 * transaction that follows the local one.  finishWork and finishArg are
 * recorded in every claim (see ConnectionFinishCallback).
 *
 * All or nothing: on error nothing is left claimed by the time the
 * (sub)transaction has aborted; connections opened meanwhile stay in the
 * set for reuse.  The caller must release every claim with
 * ReleaseConnectionClaim before freeing the claims' memory.
 */
void
ClaimNodeConnections(List *requests, ConnectionFinishCallback finishWork,
					 void *finishArg)
{
	NodeConnection **all;
	int			total = 0;
	int			n = 0;
	ListCell   *lc;

	foreach(lc, requests)
	{
		ConnectionRequest *request = lfirst(lc);
		int			i;

		total += request->count;
		for (i = 0; i < request->count; i++)
			request->claims[i].live = false;
	}
	all = palloc(sizeof(NodeConnection *) * Max(total, 1));

	foreach(lc, requests)
	{
		ConnectionRequest *request = lfirst(lc);
		ConnectionSet *set = get_connection_set(request->node, true);
		int			pass;

		/* required slots first, so that "any" does not take them */
		for (pass = 0; pass < 2; pass++)
		{
			int			i;

			for (i = 0; i < request->count; i++)
			{
				ConnectionClaim *claim = &request->claims[i];
				int			required = request->requiredSlots != NULL ?
				request->requiredSlots[i] : -1;
				NodeConnection *connection = NULL;
				int			j;

				if ((pass == 0) != (required >= 0))
					continue;
				if (required >= 0)
				{
					if (required >= set->nslots)
						elog(ERROR, "connection slot %d of node \"%s\" does not exist",
							 required, set->nodeName);
					connection = set->slots[required];
				}
				else
				{
					/* an open one nobody holds, else a closed one, else new */
					for (j = 0; j < set->nslots && connection == NULL; j++)
					{
						NodeConnection *candidate = set->slots[j];

						if (candidate->conn != NULL && candidate->claimCount == 0 &&
							candidate->busyClaim == NULL && !candidate->modified)
							connection = candidate;
					}
					for (j = 0; j < set->nslots && connection == NULL; j++)
					{
						NodeConnection *candidate = set->slots[j];

						if (candidate->conn == NULL && candidate->claimCount == 0 &&
							candidate->busyClaim == NULL && !candidate->modified)
							connection = candidate;
					}
					if (connection == NULL)
						connection = new_slot(set);
				}

				claim->connection = connection;
				claim->finishWork = finishWork;
				claim->finishArg = finishArg;
				claim->subid = GetCurrentSubTransactionId();
				claim->live = true;
				dlist_push_tail(&liveClaims, &claim->listNode);
				connection->claimCount++;
				connection->uses++;
				all[n++] = connection;
			}
		}
	}

	/* a required connection may still carry another statement's work */
	for (n = 0; n < total; n++)
	{
		if (all[n]->busyClaim != NULL)
			finish_busy_work(all[n]);
	}

	prepare_connections(all, total, true);
	pfree(all);
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
			kept[nkept].nodeName = connection->nodeName;
			kept[nkept].cancel = statementFailed;
			keptConns[nkept++] = connection;
		}
		else
		{
			dropped[ndropped].conn = connection->conn;
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
				connection->changingXactState = true;
			droppedConns[ncancelled++] = connection;
		}
		if (ncancelled > 0)
		{
			CleanUpConnections(dropped, ncancelled, CONNECTION_CLEANUP_TIMEOUT_MS);
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
						   statementFailed ? CONNECTION_CLEANUP_TIMEOUT_MS : -1);
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
 * ConnectToNodeDirectly opens a connection to node that does not belong
 * to the cache and is in no transaction.  The caller must PQfinish it,
 * also on error (PG_FINALLY).
 */
PGconn *
ConnectToNodeDirectly(ShardexecNode *node)
{
	PendingConnect pending;
	PGconn	   *volatile conn = NULL;

	memset(&pending, 0, sizeof(pending));
	pending.serverId = node->serverId;
	pending.nodeName = node->nodeName;
	connect_in_parallel(&pending, 1, GetUserId());
	conn = pending.conn;
	PG_TRY();
	{
		ExecuteRemoteCommand(conn, node->nodeName, CONFIGURE_SQL);
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
	HASH_SEQ_STATUS scan;
	ConnectionSet *set;

	hash_seq_init(&scan, connectionHash);
	while ((set = hash_seq_search(&scan)) != NULL)
	{
		int			i;

		for (i = 0; i < set->nslots; i++)
		{
			if (set->slots[i]->conn == conn)
			{
				hash_seq_term(&scan);
				return set->slots[i];
			}
		}
	}
	return NULL;
}

/*
 * prepare_connections makes every connection in conns usable: idle ones
 * that turn out broken or outdated are replaced, closed ones are opened
 * (all in parallel), new ones get the session settings, and with
 * inTransaction each one is brought into the remote transaction and the
 * savepoints of the current subtransaction level (all in parallel).
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
		pending[npending].serverId = connection->set->key.serverId;
		pending[npending].nodeName = connection->nodeName;
		npending++;
	}
	if (npending > 0)
	{
		int			k = 0;

		connect_in_parallel(pending, npending, userId);
		for (i = 0; i < n; i++)
		{
			NodeConnection *connection = conns[i];

			if (connection->conn != NULL)
				continue;
			connection->conn = pending[k++].conn;
			connection->connectedAt = GetCurrentTimestamp();
			connection->configured = false;
			connection->xactDepth = 0;
			connection->changingXactState = false;
			connection->invalidated = false;
		}
	}
	pfree(pending);

	/* session settings of the new ones */
	commands = palloc0(sizeof(ParallelCommand) * n);
	targets = palloc(sizeof(NodeConnection *) * n);
	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = conns[i];
		int			j;
		bool		duplicate = false;

		for (j = 0; j < ncommands; j++)
			duplicate |= (targets[j] == connection);
		if (connection->configured || duplicate)
			continue;
		commands[ncommands].conn = connection->conn;
		commands[ncommands].nodeName = connection->nodeName;
		commands[ncommands].sql = CONFIGURE_SQL;
		targets[ncommands++] = connection;
	}
	if (ncommands > 0)
	{
		ExecuteParallelCommands(commands, ncommands);
		for (i = 0; i < ncommands; i++)
			targets[i]->configured = true;
	}

	if (!inTransaction)
		return;

	/* the remote transaction and savepoints */
	ncommands = 0;
	for (i = 0; i < n; i++)
	{
		NodeConnection *connection = conns[i];
		int			j;
		bool		duplicate = false;

		for (j = 0; j < ncommands; j++)
			duplicate |= (targets[j] == connection);
		if (connection->xactDepth >= curlevel || duplicate)
			continue;
		commands[ncommands].conn = connection->conn;
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
 * begin_xact_sql returns the commands that bring connection's remote
 * transaction to subtransaction level curlevel: START TRANSACTION with
 * the local isolation level and read-only flag, then the savepoints.
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
	pgsocket   *sockets = palloc(sizeof(pgsocket) * n);
	uint32	   *events = palloc(sizeof(uint32) * n);
	uint32	   *occurred = palloc(sizeof(uint32) * n);
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
			PQtransactionStatus(connection->conn) != PQTRANS_IDLE)
		{
			disconnect(connection);
			continue;
		}
		for (j = 0; j < nchecked; j++)
			duplicate |= (checked[j] == connection);
		if (duplicate)
			continue;
		sockets[nchecked] = PQsocket(connection->conn);
		events[nchecked] = WL_SOCKET_READABLE | WL_SOCKET_CLOSED;
		checked[nchecked++] = connection;
	}

	if (nchecked > 0 &&
		WaitForSockets(nchecked, sockets, events, occurred, 0) > 0)
	{
		for (i = 0; i < nchecked; i++)
		{
			NodeConnection *connection = checked[i];

			if (occurred[i] == 0)
				continue;
			/* an idle connection has nothing to say but a notice */
			if ((occurred[i] & WL_SOCKET_CLOSED) ||
				!PQconsumeInput(connection->conn) ||
				PQstatus(connection->conn) != CONNECTION_OK)
				disconnect(connection);
		}
	}
	pfree(sockets);
	pfree(events);
	pfree(occurred);
	pfree(checked);
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
 * start_connect starts opening pending's connection as userId, with the
 * options of the foreign server and the user mapping.
 */
static void
start_connect(PendingConnect *pending, Oid userId)
{
	ForeignServer *server = GetForeignServer(pending->serverId);
	UserMapping *mapping = find_user_mapping(userId, pending->serverId);
	List	   *options = list_copy(server->options);
	int			n;
	const char **keywords;
	const char **values;
	ListCell   *lc;
	bool		haveUser = false;
	bool		havePassword = false;

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
				 errmsg("password is required to connect to node \"%s\"", pending->nodeName),
				 errdetail("Non-superusers must provide a password in the user mapping.")));

	pending->conn = PQconnectStartParams(keywords, values, false);
	if (pending->conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while connecting to node \"%s\"",
						pending->nodeName)));
	pending->status = PGRES_POLLING_WRITING;
	pending->done = false;
	pfree(keywords);
	pfree(values);
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
 * disconnect closes connection's session.  Losing a remote transaction
 * that wrote something makes the local transaction fail at commit.
 */
static void
disconnect(NodeConnection *connection)
{
	if (connection->conn != NULL)
	{
		PQfinish(connection->conn);
		connection->conn = NULL;
	}
	if (connection->xactDepth > 0 && connection->modified)
		connection->set->xactFailed = true;
	connection->xactDepth = 0;
	connection->changingXactState = false;
	connection->configured = false;
	connection->invalidated = false;
	connection->busyClaim = NULL;
}

/*
 * pre_commit_connections commits every remote transaction, all in
 * parallel.  An error aborts the local transaction, which rolls back
 * what is left.
 */
static void
pre_commit_connections(void)
{
	HASH_SEQ_STATUS scan;
	ConnectionSet *set;
	List	   *targets = NIL;
	ParallelCommand *commands;
	ListCell   *lc;
	int			n = 0;

	hash_seq_init(&scan, connectionHash);
	while ((set = hash_seq_search(&scan)) != NULL)
	{
		int			i;

		if (set->xactFailed)
		{
			hash_seq_term(&scan);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("cannot commit: the connection to node \"%s\" was lost after it wrote in this transaction",
							set->nodeName)));
		}
		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (connection->conn == NULL || connection->xactDepth == 0)
				continue;
			if (connection->changingXactState)
			{
				hash_seq_term(&scan);
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_EXCEPTION),
						 errmsg("cannot commit: the remote transaction on node \"%s\" is in an unknown state",
								connection->nodeName)));
			}
			if (connection->busyClaim != NULL ||
				PQtransactionStatus(connection->conn) == PQTRANS_ACTIVE)
			{
				hash_seq_term(&scan);
				elog(ERROR, "connection to node \"%s\" is still busy at commit",
					 connection->nodeName);
			}
			targets = lappend(targets, connection);
		}
	}

	if (targets == NIL)
		return;
	commands = palloc0(sizeof(ParallelCommand) * list_length(targets));
	foreach(lc, targets)
	{
		NodeConnection *connection = lfirst(lc);

		connection->changingXactState = true;
		commands[n].conn = connection->conn;
		commands[n].nodeName = connection->nodeName;
		commands[n].sql = "COMMIT TRANSACTION";
		n++;
	}
	ExecuteParallelCommands(commands, n);
	foreach(lc, targets)
		((NodeConnection *) lfirst(lc))->changingXactState = false;
	pfree(commands);
	list_free(targets);
}

/*
 * abort_connections rolls back every remote transaction and brings every
 * connection with work in flight back to idle (cancel, then read what
 * is left), all in parallel and within CONNECTION_CLEANUP_TIMEOUT_MS;
 * what does not make it is closed.  It never throws.
 */
static void
abort_connections(void)
{
	HASH_SEQ_STATUS scan;
	ConnectionSet *set;
	NodeConnection **targets;
	ParallelCommand *commands;
	int			max = 0;
	int			n = 0;
	int			i;

	hash_seq_init(&scan, connectionHash);
	while ((set = hash_seq_search(&scan)) != NULL)
		max += set->nslots;
	if (max == 0)
		return;

	targets = palloc(sizeof(NodeConnection *) * max);
	commands = palloc0(sizeof(ParallelCommand) * max);
	hash_seq_init(&scan, connectionHash);
	while ((set = hash_seq_search(&scan)) != NULL)
	{
		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];
			bool		active;

			if (connection->conn == NULL)
				continue;
			active = PQtransactionStatus(connection->conn) == PQTRANS_ACTIVE ||
				PQpipelineStatus(connection->conn) != PQ_PIPELINE_OFF;
			if (connection->xactDepth == 0 && !active)
				continue;
			if (connection->changingXactState ||
				PQstatus(connection->conn) != CONNECTION_OK)
			{
				disconnect(connection);
				continue;
			}
			commands[n].conn = connection->conn;
			commands[n].nodeName = connection->nodeName;
			commands[n].cancel = active;
			commands[n].sql = connection->xactDepth > 0 ? "ROLLBACK TRANSACTION" : NULL;
			targets[n++] = connection;
		}
	}

	if (n > 0)
	{
		CleanUpConnections(commands, n, CONNECTION_CLEANUP_TIMEOUT_MS);
		for (i = 0; i < n; i++)
		{
			if (!commands[i].ok)
				disconnect(targets[i]);
		}
	}
	pfree(targets);
	pfree(commands);
}

/*
 * end_of_xact forgets the transaction's state: remote transaction depths,
 * writes, shard pins and claims; connections that are broken, outdated or
 * not idle are closed.
 */
static void
end_of_xact(void)
{
	HASH_SEQ_STATUS scan;
	ConnectionSet *set;
	dlist_mutable_iter iter;

	hash_seq_init(&scan, connectionHash);
	while ((set = hash_seq_search(&scan)) != NULL)
	{
		int			i;

		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			connection->xactDepth = 0;
			connection->modified = false;
			connection->nodeWidePin = false;
			if (connection->conn != NULL &&
				(connection->invalidated || connection->changingXactState ||
				 PQstatus(connection->conn) != CONNECTION_OK ||
				 PQtransactionStatus(connection->conn) != PQTRANS_IDLE))
				disconnect(connection);
			connection->changingXactState = false;
		}
		set->xactFailed = false;
	}

	dlist_foreach_modify(iter, &liveClaims)
		orphan_claim(dlist_container(ConnectionClaim, listNode, iter.cur));

	shardPins = NULL;			/* its memory goes with the transaction */
	xactGotConnection = false;
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
	HASH_SEQ_STATUS scan;
	ConnectionSet *set;
	dlist_mutable_iter iter;
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
		hash_seq_init(&scan, connectionHash);
		while ((set = hash_seq_search(&scan)) != NULL)
			max += set->nslots;
		targets = palloc(sizeof(NodeConnection *) * Max(max, 1));
		commands = palloc0(sizeof(ParallelCommand) * Max(max, 1));

		hash_seq_init(&scan, connectionHash);
		while ((set = hash_seq_search(&scan)) != NULL)
		{
			for (i = 0; i < set->nslots; i++)
			{
				NodeConnection *connection = set->slots[i];

				if (connection->conn == NULL || connection->xactDepth < curlevel)
					continue;
				if (event == SUBXACT_EVENT_ABORT_SUB && connection->changingXactState)
					continue;	/* unknown state: the transaction cannot commit */
				commands[n].conn = connection->conn;
				commands[n].nodeName = connection->nodeName;
				if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
					commands[n].sql = psprintf("RELEASE SAVEPOINT s%d", curlevel);
				else
				{
					commands[n].sql = psprintf("ROLLBACK TO SAVEPOINT s%d; RELEASE SAVEPOINT s%d",
											   curlevel, curlevel);
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
			ExecuteParallelCommands(commands, n);
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

	dlist_foreach_modify(iter, &liveClaims)
	{
		ConnectionClaim *claim = dlist_container(ConnectionClaim, listNode, iter.cur);

		if (claim->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
			claim->subid = parentSubid;
		else
			orphan_claim(claim);
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
	ConnectionSet *set;

	hash_seq_init(&scan, connectionHash);
	while ((set = hash_seq_search(&scan)) != NULL)
	{
		int			i;

		if (!(hashvalue == 0 ||
			  (cacheid == FOREIGNSERVEROID && set->serverHashValue == hashvalue) ||
			  cacheid == USERMAPPINGOID))
			continue;
		for (i = 0; i < set->nslots; i++)
		{
			NodeConnection *connection = set->slots[i];

			if (connection->conn == NULL)
				continue;
			if (connection->xactDepth == 0 && connection->claimCount == 0 &&
				connection->busyClaim == NULL)
				disconnect(connection);
			else
				connection->invalidated = true;
		}
	}
}
