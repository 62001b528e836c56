/*-------------------------------------------------------------------------
 *
 * connection.h
 *		  Connections to nodes, remote transactions and remote commands.
 *
 * src/connection/connection.c owns the backend's connections and the
 * remote transactions that follow the local one; remote_command.c sends
 * commands, waits for results without blocking interrupts and reports
 * remote errors with the node name and the remote SQL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_CONNECTION_H
#define SHARDEXEC_CONNECTION_H

#include "libpq-fe.h"
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

/* connection.c */
extern PGconn *GetNodeConnection(ShardexecNode *node, ConnectionPurpose purpose);
extern void ReleaseNodeConnection(PGconn *conn);
extern PGconn *ConnectToNodeDirectly(ShardexecNode *node);
extern void MarkConnectionModified(PGconn *conn);

/* remote_command.c */
extern void SendRemoteQuery(PGconn *conn, const char *nodeName, const char *sql,
							int nParams, const char *const *paramValues);
extern PGresult *GetRemoteResult(PGconn *conn, const char *nodeName);
extern PGresult *ExecuteRemoteQuery(PGconn *conn, const char *nodeName,
									const char *sql, int nParams,
									const char *const *paramValues,
									ExecStatusType expected);
extern void ExecuteRemoteCommand(PGconn *conn, const char *nodeName,
								 const char *sql);
extern void DrainRemoteResults(PGconn *conn, const char *nodeName);
extern void CancelRemoteQuery(PGconn *conn);
extern void ReportRemoteError(PGresult *res, PGconn *conn,
							  const char *nodeName,
							  const char *sql) pg_attribute_noreturn();
extern void ExecuteOnNodesInParallel(List *nodeCommands);
extern int	SetTransmissionModes(void);
extern void ResetTransmissionModes(int nestlevel);
extern int	SetDeparseSearchPath(void);

/* one command for ExecuteOnNodesInParallel */
typedef struct NodeCommand
{
	ShardexecNode *node;
	char	   *sql;
} NodeCommand;

#endif							/* SHARDEXEC_CONNECTION_H */
