/*-------------------------------------------------------------------------
 *
 * connection.h
 *		  Connections to nodes, remote transactions and remote commands.
 *
 * src/connection/connection.c owns the backend's pool of connections and
 * the remote transactions that follow the local one (one-phase or
 * two-phase commit); shared_pool.c counts every backend's connections per
 * node in shared memory and caps them; transaction_recovery.c keeps the
 * commit records of two-phase commits and resolves prepared transactions
 * left on the nodes (a function and a background worker);
 * remote_command.c sends commands, waits for results without blocking
 * interrupts and reports remote errors with the node name and the remote
 * SQL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_CONNECTION_H
#define SHARDEXEC_CONNECTION_H

#include "lib/ilist.h"
#include "libpq-fe.h"
#include "utils/timestamp.h"

#include "shardexec/metadata.h"

/*
 * How a caller wants a connection: inside the remote transaction that
 * follows the local one (every statement on a distributed table), or as
 * a bare session (the reachability check of add_node).
 */
typedef enum ConnectionPurpose
{
	CONNECTION_IN_TRANSACTION,
	CONNECTION_NO_TRANSACTION
} ConnectionPurpose;

struct ConnectionSet;
struct ConnectionClaim;

/* room for a prepared transaction's name (see PreparedTransactionGid) */
#define SHARDEXEC_GID_SIZE 128

/* statements one session keeps prepared, at most */
#define SHARDEXEC_MAX_PREPARED_STATEMENTS 200

/*
 * NodeConnection is one connection of a connection set of the pool (see
 * connection.c).  Its slot number is stable for the life of the set, so
 * a transaction can come back to "the same connection" by slot.  Only
 * connection.c changes the fields; the executor reads conn and nodeName.
 */
typedef struct NodeConnection
{
	PGconn	   *conn;			/* NULL while the slot is closed */
	const char *nodeName;		/* the node's name (owned by the set) */
	int			slot;			/* position in the set */
	struct ConnectionSet *set;

	/* statements holding it: see ClaimNodeConnections */
	int			claimCount;
	struct ConnectionClaim *busyClaim;	/* claim with work in flight, or NULL */

	/* the remote transaction that follows the local one */
	int			xactDepth;		/* 0 = none, 1 = main, >1 = savepoints */
	bool		modified;		/* wrote through it in this transaction */
	bool		nodeWidePin;	/* ... without saying which shards */
	bool		changingXactState;	/* a transaction command is in flight */
	bool		configured;		/* session settings sent */
	char	   *timeZone;		/* TimeZone the session has, or NULL if
								 * unknown (TopMemoryContext) */
	bool		invalidated;	/* server or user mapping changed */

	/* the pool */
	bool		counted;		/* holds a slot of the node's shared count */
	bool		usedInXact;		/* used in the current transaction */
	TimestampTz connectedAt;
	TimestampTz lastUsedAt;		/* end of the last transaction that used it */
	uint64		uses;			/* claims and single-connection uses */

	/* two-phase commit */
	bool		preparedChecked;	/* max_prepared_transactions was asked */
	bool		preparedAllowed;	/* ... and is above zero */
	bool		prepared;		/* gid is prepared on the node */
	char		gid[SHARDEXEC_GID_SIZE];

	/* statements prepared on this session: SQL text, in TopMemoryContext */
	List	   *statements;

	/* waits on this connection alone: see WaitForNodeConnection */
	struct WaitEventSet *waitSet;
	pgsocket	waitSocket;		/* the socket in waitSet */
	uint32		waitEvents;		/* its events in waitSet */
} NodeConnection;

/*
 * ConnectionFinishCallback is called when another user needs a claimed
 * connection on which the claim's owner still has work in flight: it
 * must finish that work (read what is left of it into memory or onto
 * disk) and mark the claim not busy before returning.
 */
typedef void (*ConnectionFinishCallback) (void *arg, NodeConnection *connection);

/*
 * ConnectionClaim: a statement's hold on one connection, from
 * ClaimNodeConnections until ReleaseConnectionClaim or the end of the
 * (sub)transaction that made it, whichever comes first.  The memory
 * belongs to the caller and must outlive the claim (release it before
 * freeing the memory, e.g. from a memory context reset callback).
 */
typedef struct ConnectionClaim
{
	NodeConnection *connection;
	ConnectionFinishCallback finishWork;
	void	   *finishArg;
	SubTransactionId subid;		/* subtransaction that holds it */
	bool		live;			/* false once released or orphaned */
	dlist_node	listNode;		/* in connection.c's list of live claims */
} ConnectionClaim;

/*
 * ConnectionRequest asks ClaimNodeConnections for up to count connections
 * to node.  requiredSlots[i] is a slot that must be used (the transaction
 * wrote through it, see RequiredConnectionSlot) or -1 for any connection
 * that no other statement holds; required slots are distinct and come
 * first.  claims (count entries, caller's memory) are filled in; granted
 * says how many, at least one and every required slot (fewer than count
 * when the node is at shardexec.max_shared_pool_size): claims[0 ..
 * granted - 1] are live, the rest untouched.
 */
typedef struct ConnectionRequest
{
	ShardexecNode *node;
	int			count;
	const int  *requiredSlots;
	ConnectionClaim *claims;
	int			granted;		/* out */
} ConnectionRequest;

/*
 * ParallelCommand: one command of ExecuteParallelCommands or
 * CleanUpConnections, on its own connection.
 */
typedef struct ParallelCommand
{
	PGconn	   *conn;
	const char *nodeName;
	NodeConnection *owner;		/* the pooled connection conn is, or NULL */
	const char *sql;			/* NULL: only bring the connection to idle */
	bool		cancel;			/* CleanUpConnections: cancel work in flight */
	bool		wantValue;		/* keep the first value of the last row set */
	bool		ok;				/* out: succeeded */
	bool		received;		/* out: results of earlier work arrived */
	char	   *value;			/* out: with wantValue, that value, or NULL */
} ParallelCommand;

/* connection.c */
extern bool ShardexecReadWithoutRemoteTransaction;
extern int	PreparedStatementNumber(NodeConnection *connection, const char *sql,
									bool add);
extern void ForgetPreparedStatement(NodeConnection *connection, int number);
extern void BuildConnectionOptions(Oid serverId, Oid userId, const char *nodeName,
								   const char *applicationName, bool checkPassword,
								   const char ***keywords, const char ***values);
extern bool ConnectionPasswordMissing(Oid userId, const char *const *keywords,
									  const char *const *values);
extern void CheckConnectionPassword(Oid userId, const char *nodeName,
									const char *const *keywords,
									const char *const *values);
extern PGconn *GetNodeConnection(ShardexecNode *node, ConnectionPurpose purpose);
extern void ReleaseNodeConnection(PGconn *conn);
extern PGconn *ConnectToNodeDirectly(ShardexecNode *node);
extern PGconn *ConnectToNodeWithName(ShardexecNode *node, const char *applicationName);
extern void MarkConnectionModified(PGconn *conn);
extern PGconn *GetShardConnection(ShardexecNode *node, int64 shardId);
extern void MarkShardModified(PGconn *conn, int64 shardId);
extern int	RequiredConnectionSlot(ShardexecNode *node, int64 shardId);
extern int	ClaimNodeConnections(List *requests, ConnectionFinishCallback finishWork,
								 void *finishArg);
extern void SetConnectionClaimBusy(ConnectionClaim *claim, bool busy);
extern void ReleaseConnectionClaim(ConnectionClaim *claim);
extern void RecordShardModification(NodeConnection *connection, int64 shardId);
extern void AbandonConnectionWork(NodeConnection **connections,
								  const bool *receiving, int n,
								  bool statementFailed);
extern void DiscardNodeConnection(NodeConnection *connection);
extern int	ConnectionCleanupTimeout(void);
extern uint32 WaitForNodeConnection(NodeConnection *connection, uint32 events,
									long timeoutMs);

/* shared_pool.c */
extern int	SharedPoolReserve(Oid serverId, int wanted);
extern bool SharedPoolReserveAll(int n, const Oid *serverIds, const int *counts,
								 long timeoutMs);
extern void SharedPoolRelease(Oid serverId, int count);
extern bool SharedPoolAtCap(Oid serverId);
extern int	SharedPoolCount(Oid serverId);

/* transaction_recovery.c */
extern char *PreparedTransactionGidPrefix(void);
extern void InsertTransactionRecords(int n, char **gids, int32 *nodeIds);
extern int	ResolvePreparedTransactions(bool wait);

/* remote_command.c */
extern void SendRemoteQuery(PGconn *conn, const char *nodeName, const char *sql,
							int nParams, const char *const *paramValues);
extern PGresult *GetRemoteResult(PGconn *conn, const char *nodeName);
extern PGresult *GetRemoteResultWithin(PGconn *conn, const char *nodeName,
									   long silenceMs, bool *timedOut);
extern PGresult *ExecuteRemoteQuery(PGconn *conn, const char *nodeName,
									const char *sql, int nParams,
									const char *const *paramValues,
									ExecStatusType expected);
extern void ExecuteRemoteCommand(PGconn *conn, const char *nodeName,
								 const char *sql);
extern void DrainRemoteResults(PGconn *conn, const char *nodeName);
extern void CancelRemoteQuery(PGconn *conn);
extern void PutCopyData(PGconn *conn, const char *nodeName, const char *sql,
						const char *data, int len, size_t *pending);
extern void EndCopyData(PGconn *conn, const char *nodeName, const char *sql);
extern void ReportRemoteError(PGresult *res, PGconn *conn,
							  const char *nodeName,
							  const char *sql) pg_attribute_noreturn();
extern void ExecuteOnNodesInParallel(List *nodeCommands);
extern void ExecuteParallelCommands(ParallelCommand *commands, int n);
extern void ExecuteParallelCommandsWithin(ParallelCommand *commands, int n,
										  long timeoutMs);
extern bool CleanUpConnections(ParallelCommand *commands, int n, int timeoutMs);
extern int	WaitForSockets(int n, const pgsocket *sockets, const uint32 *events,
						   uint32 *occurred, long timeoutMs);

extern int	SetTransmissionModes(void);
extern void ResetTransmissionModes(int nestlevel);
extern int	SetDeparseSearchPath(void);

/* one command for ExecuteOnNodesInParallel */
typedef struct NodeCommand
{
	ShardexecNode *node;
	char	   *sql;
} NodeCommand;

/*
 * How long the cleanup of a connection after an error or a cancel may
 * wait for the node (cancel, drain, rollback) before the connection is
 * closed instead.
 */
#define CONNECTION_CLEANUP_TIMEOUT_MS 10000

/*
 * How long a statement that ends early reads what is left on a connection
 * before it closes the connection instead (see AbandonConnectionWork).
 */
#define ABANDON_DRAIN_MS 20

#endif							/* SHARDEXEC_CONNECTION_H */
