/*-------------------------------------------------------------------------
 *
 * remote_command.c
 *		  Sending commands to nodes, waiting for their results and reporting
 *		  their errors.
 *
 * Every wait is on the backend's latch and the connection's socket, so a
 * cancel request, statement_timeout or postmaster death is seen while a
 * node works; the transaction abort that follows cancels the remote query
 * (connection.c).  Remote errors are raised at ERROR whatever level the
 * node used, keep the node's SQLSTATE, message, detail and hint, and add
 * the node's name and the remote SQL as context.
 *
 * ExecuteOnNodesInParallel sends one command to each of several nodes
 * before waiting for any, so DDL on many shards costs one round trip per
 * node rather than one per shard; the first error cancels the others.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/datetime.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "shardexec/connection.h"
#include "shardexec/shardexec.h"

static void wait_for_input(PGconn *conn, const char *nodeName);

/*
 * SendRemoteQuery sends sql, with text parameters, on conn without
 * waiting for its result.  A failure to send is reported as an error
 * naming the node.
 */
void
SendRemoteQuery(PGconn *conn, const char *nodeName, const char *sql,
				int nParams, const char *const *paramValues)
{
	int			ok;

	if (ShardexecLogRemoteSql)
		ereport(LOG,
				(errmsg("shardexec: sending to node \"%s\": %s", nodeName, sql),
				 errhidestmt(true)));

	if (nParams > 0)
		ok = PQsendQueryParams(conn, sql, nParams, NULL, paramValues,
							   NULL, NULL, 0);
	else
		ok = PQsendQuery(conn, sql);

	if (!ok)
		ReportRemoteError(NULL, conn, nodeName, sql);
}

/*
 * wait_for_input waits until a result can be read from conn without
 * blocking, processing interrupts meanwhile.
 */
static void
wait_for_input(PGconn *conn, const char *nodeName)
{
	while (PQisBusy(conn))
	{
		int			rc;

		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
							   PQsocket(conn), -1L, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (rc & WL_SOCKET_READABLE)
		{
			if (!PQconsumeInput(conn))
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("lost connection to node \"%s\"", nodeName),
						 errdetail_internal("%s", pchomp(PQerrorMessage(conn)))));
		}
	}
}

/*
 * GetRemoteResult returns the next result of the query in flight on
 * conn, or NULL when there are no more.  The caller must PQclear it.
 */
PGresult *
GetRemoteResult(PGconn *conn, const char *nodeName)
{
	wait_for_input(conn, nodeName);
	return PQgetResult(conn);
}

/*
 * ExecuteRemoteQuery runs sql on conn and returns its last result, which
 * must have status expected (PGRES_TUPLES_OK or PGRES_COMMAND_OK);
 * anything else is raised as an error.  The caller must PQclear the
 * result.
 */
PGresult *
ExecuteRemoteQuery(PGconn *conn, const char *nodeName, const char *sql,
				   int nParams, const char *const *paramValues,
				   ExecStatusType expected)
{
	PGresult   *volatile last = NULL;

	SendRemoteQuery(conn, nodeName, sql, nParams, paramValues);

	PG_TRY();
	{
		PGresult   *res;

		while ((res = GetRemoteResult(conn, nodeName)) != NULL)
		{
			if (last != NULL)
				PQclear(last);
			last = res;
			if (PQresultStatus(res) != expected &&
				PQresultStatus(res) != PGRES_COMMAND_OK)
				break;
		}
		if (last == NULL || PQresultStatus(last) != expected)
		{
			DrainRemoteResults(conn, nodeName);
			ReportRemoteError(last, conn, nodeName, sql);
		}
	}
	PG_CATCH();
	{
		if (last != NULL)
			PQclear(last);
		PG_RE_THROW();
	}
	PG_END_TRY();

	return last;
}

/*
 * ExecuteRemoteCommand runs a command that returns no rows.
 */
void
ExecuteRemoteCommand(PGconn *conn, const char *nodeName, const char *sql)
{
	PQclear(ExecuteRemoteQuery(conn, nodeName, sql, 0, NULL, PGRES_COMMAND_OK));
}

/*
 * DrainRemoteResults reads and discards what is left of the query in
 * flight on conn.
 */
void
DrainRemoteResults(PGconn *conn, const char *nodeName)
{
	PGresult   *res;

	while ((res = GetRemoteResult(conn, nodeName)) != NULL)
		PQclear(res);
}

/*
 * CancelRemoteQuery asks the node to cancel the query running on conn.
 * It never throws; a failure to send the request is only logged.
 */
void
CancelRemoteQuery(PGconn *conn)
{
	PGcancel   *cancel;
	char		errbuf[256];

	if ((cancel = PQgetCancel(conn)) == NULL)
		return;
	if (!PQcancel(cancel, errbuf, sizeof(errbuf)))
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not send cancel request: %s", errbuf)));
	PQfreeCancel(cancel);
}

/*
 * ReportRemoteError raises the error in res (or, with no result, the
 * connection's error) at ERROR, keeping the node's SQLSTATE, message,
 * detail and hint, with the node and the remote SQL as context.  res is
 * freed.
 */
void
ReportRemoteError(PGresult *res, PGconn *conn, const char *nodeName,
				  const char *sql)
{
	char	   *diag_sqlstate = NULL;
	char	   *message_primary = NULL;
	char	   *message_detail = NULL;
	char	   *message_hint = NULL;
	char	   *message_context = NULL;
	int			sqlstate;

	if (res != NULL)
	{
		diag_sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		message_primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		message_detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		message_hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		message_context = PQresultErrorField(res, PG_DIAG_CONTEXT);
	}

	if (diag_sqlstate != NULL)
		sqlstate = MAKE_SQLSTATE(diag_sqlstate[0], diag_sqlstate[1],
								 diag_sqlstate[2], diag_sqlstate[3],
								 diag_sqlstate[4]);
	else
		sqlstate = ERRCODE_CONNECTION_FAILURE;

	/* copy what we need before freeing the result */
	message_primary = message_primary ? pstrdup(message_primary) : NULL;
	message_detail = message_detail ? pstrdup(message_detail) : NULL;
	message_hint = message_hint ? pstrdup(message_hint) : NULL;
	message_context = message_context ? pstrdup(message_context) : NULL;
	if (message_primary == NULL)
		message_primary = pchomp(PQerrorMessage(conn));
	if (res != NULL)
		PQclear(res);

	ereport(ERROR,
			(errcode(sqlstate),
			 (message_primary != NULL && message_primary[0] != '\0') ?
			 errmsg_internal("%s", message_primary) :
			 errmsg("could not obtain message string for remote error"),
			 message_detail ? errdetail_internal("%s", message_detail) : 0,
			 message_hint ? errhint("%s", message_hint) : 0,
			 message_context ? errcontext("%s", message_context) : 0,
			 sql ? errcontext("remote SQL command on node \"%s\": %s", nodeName, sql) :
			 errcontext("node \"%s\"", nodeName)));
	pg_unreachable();
}

/*
 * ExecuteOnNodesInParallel runs each NodeCommand on its node's
 * connection inside the remote transaction: all are sent first, then all
 * results are read.  Commands for the same node are joined into one
 * multi-statement string.  On the first error the commands still running
 * are cancelled and the error is raised.
 */
void
ExecuteOnNodesInParallel(List *nodeCommands)
{
	typedef struct Pending
	{
		ShardexecNode *node;
		PGconn	   *conn;
		StringInfoData sql;
	} Pending;
	List	   *pending = NIL;
	ListCell   *lc;

	foreach(lc, nodeCommands)
	{
		NodeCommand *command = lfirst(lc);
		Pending    *p = NULL;
		ListCell   *pc;

		foreach(pc, pending)
		{
			Pending    *candidate = lfirst(pc);

			if (candidate->node->nodeId == command->node->nodeId)
				p = candidate;
		}
		if (p == NULL)
		{
			p = palloc0(sizeof(Pending));
			p->node = command->node;
			initStringInfo(&p->sql);
			pending = lappend(pending, p);
		}
		else
			appendStringInfoString(&p->sql, ";\n");
		appendStringInfoString(&p->sql, command->sql);
	}

	foreach(lc, pending)
	{
		Pending    *p = lfirst(lc);

		p->conn = GetNodeConnection(p->node, CONNECTION_IN_TRANSACTION);
		MarkConnectionModified(p->conn);
	}

	/*
	 * On error, the abort of the local transaction cancels whatever still
	 * runs and rolls the remote transactions back.
	 */
	foreach(lc, pending)
	{
		Pending    *p = lfirst(lc);

		SendRemoteQuery(p->conn, p->node->nodeName, p->sql.data, 0, NULL);
	}
	foreach(lc, pending)
	{
		Pending    *p = lfirst(lc);
		PGresult   *res;
		PGresult   *error = NULL;

		while ((res = GetRemoteResult(p->conn, p->node->nodeName)) != NULL)
		{
			if (PQresultStatus(res) != PGRES_COMMAND_OK &&
				PQresultStatus(res) != PGRES_TUPLES_OK && error == NULL)
				error = res;
			else
				PQclear(res);
		}
		if (error != NULL)
			ReportRemoteError(error, p->conn, p->node->nodeName, p->sql.data);
	}
}

/*
 * SetTransmissionModes makes the coordinator print and parse values in
 * the formats the nodes use (connection.c sets them there), whatever the
 * session's own settings.  Returns the GUC nest level to pass to
 * ResetTransmissionModes, or -1 when the session's settings already
 * agree (the common case, which costs nothing); errors unwind the
 * settings with the transaction.
 */
int
SetTransmissionModes(void)
{
	int			nestlevel;

	if (DateStyle == USE_ISO_DATES && IntervalStyle == INTSTYLE_POSTGRES &&
		extra_float_digits > 0)
		return -1;

	nestlevel = NewGUCNestLevel();
	if (DateStyle != USE_ISO_DATES)
		(void) set_config_option("datestyle", "ISO",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (extra_float_digits <= 0)
		(void) set_config_option("extra_float_digits", "3",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/*
 * ResetTransmissionModes undoes SetTransmissionModes.
 */
void
ResetTransmissionModes(int nestlevel)
{
	if (nestlevel >= 0)
		AtEOXact_GUC(true, nestlevel);
}

/*
 * SetDeparseSearchPath sets search_path to pg_catalog, the nodes' own, so
 * that names deparsed by ruleutils are qualified exactly where a node
 * needs it.  Returns the nest level for ResetTransmissionModes.
 */
int
SetDeparseSearchPath(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}
