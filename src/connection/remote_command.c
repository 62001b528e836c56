/*-------------------------------------------------------------------------
 *
 * remote_command.c
 *		  Sending commands to nodes, waiting for their results and reporting
 *		  their errors.
 *
 * Every wait is on the backend's latch and the connection's socket, so a
 * cancel request, statement_timeout or postmaster death is seen while a
 * node works, and the error it raises names the nodes waited for (a node
 * that stopped answering is named); the transaction abort that follows
 * cancels the remote query (connection.c).  Remote errors are raised at
 * ERROR whatever level the node used, keep the node's SQLSTATE, message,
 * detail and hint, and add the node's name and the remote SQL as context.
 *
 * Nothing here may block the backend in libpq, where neither a cancel nor
 * a timeout is seen: COPY data goes out in nonblocking mode (PutCopyData,
 * EndCopyData) and cancel requests on a nonblocking socket with a time
 * limit (CancelRemoteQuery; libpq's PQcancel waits without one for the
 * node's postmaster, which a frozen node never gives).
 *
 * ExecuteOnNodesInParallel sends one command to each of several nodes
 * before waiting for any, so DDL on many shards costs one round trip per
 * node rather than one per shard; the first error cancels the others.
 *
 * ExecuteParallelCommands and CleanUpConnections run one command on each
 * of many connections at once (the remote transaction commands of
 * connection.c: session settings, START TRANSACTION, COMMIT, ROLLBACK,
 * savepoints, PREPARE TRANSACTION, COMMIT PREPARED, SHOW), as a small
 * state machine per connection (drain what is left, send, flush, read)
 * driven by WaitForSockets, a WaitEventSet over their sockets with the
 * latch and postmaster death.  The first raises
 * the first error once every command has finished (ExecuteParallelCommandsWithin
 * also gives up, with an error, at a time limit: the commands of a commit,
 * which PostgreSQL runs with statement_timeout off); the second, for
 * cleanup after an error or a cancel, never raises an error of its own,
 * sends cancel requests where asked, and gives up at a deadline, so that
 * the caller can close what did not come back instead of hanging.
 *
 * A transaction command on one pooled connection alone waits on the set
 * kept with that connection (WaitForNodeConnection, connection.c), not on
 * one built for the wait.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include "lib/stringinfo.h"
#include "libpq/pqcomm.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/datetime.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "shardexec/connection.h"
#include "shardexec/shardexec.h"

/* how long sending one cancel request may take */
#define CANCEL_REQUEST_TIMEOUT_MS 1000

/* COPY data libpq may hold for a node before PutCopyData waits for it */
#define COPY_FLUSH_BYTES (64 * 1024)

/*
 * The leading fields of libpq's struct pg_cancel (libpq-int.h), the same
 * from PostgreSQL 10 to 17: the address the cancel request goes to, and
 * the backend's pid and secret key.  cancel_target_checked checks them
 * against the connection before they are used.
 */
typedef struct LibpqCancelHead
{
	SockAddr	raddr;
	int			be_pid;
	int			be_key;
} LibpqCancelHead;

static bool wait_for_input(PGconn *conn, const char *nodeName, long silenceMs);
static void waiting_for_node_context(void *arg);
static bool cancel_target_checked(PGconn *conn, const LibpqCancelHead *head);
static bool send_cancel_request(const LibpqCancelHead *head, char *errbuf, int errbufsize);
static bool wait_for_cancel_socket(pgsocket sock, uint32 events, TimestampTz deadline,
								   bool *latchSet);
static void flush_copy_data(PGconn *conn, const char *nodeName, const char *sql);

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
 * blocking, processing interrupts meanwhile; with silenceMs >= 0, for at
 * most that long without receiving anything (returns false then).
 */
static bool
wait_for_input(PGconn *conn, const char *nodeName, long silenceMs)
{
	while (PQisBusy(conn))
	{
		ErrorContextCallback waiting;
		pgsocket	sock = PQsocket(conn);
		uint32		events = WL_SOCKET_READABLE;
		uint32		occurred = 0;

		/* a cancel or statement_timeout names the node */
		waiting.callback = waiting_for_node_context;
		waiting.arg = (void *) nodeName;
		waiting.previous = error_context_stack;
		error_context_stack = &waiting;
		if (silenceMs >= 0)
		{
			TimestampTz start = GetCurrentTimestamp();

			(void) WaitForSockets(1, &sock, &events, &occurred, silenceMs);
			if (occurred == 0 &&
				TimestampDifferenceExceeds(start, GetCurrentTimestamp(), (int) silenceMs))
			{
				error_context_stack = waiting.previous;
				return false;
			}
		}
		else
			(void) WaitForSockets(1, &sock, &events, &occurred, -1L);
		error_context_stack = waiting.previous;
		if (occurred & WL_SOCKET_READABLE)
		{
			if (!PQconsumeInput(conn))
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("lost connection to node \"%s\"", nodeName),
						 errdetail_internal("%s", pchomp(PQerrorMessage(conn)))));
		}
	}
	return true;
}

/*
 * waiting_for_node_context adds the name of the node waited for (arg) to
 * an error raised while waiting, such as a cancel or statement_timeout.
 */
static void
waiting_for_node_context(void *arg)
{
	errcontext("while waiting for node \"%s\"", (const char *) arg);
}

/*
 * GetRemoteResult returns the next result of the query in flight on
 * conn, or NULL when there are no more.  The caller must PQclear it.
 */
PGresult *
GetRemoteResult(PGconn *conn, const char *nodeName)
{
	(void) wait_for_input(conn, nodeName, -1);
	return PQgetResult(conn);
}

/*
 * GetRemoteResultWithin is GetRemoteResult, but a node that sends nothing
 * for silenceMs (> 0) sets *timedOut and gives NULL.
 */
PGresult *
GetRemoteResultWithin(PGconn *conn, const char *nodeName, long silenceMs,
					  bool *timedOut)
{
	*timedOut = !wait_for_input(conn, nodeName, silenceMs);
	return *timedOut ? NULL : PQgetResult(conn);
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
 *
 * libpq's PQcancel blocks until the node's postmaster has read the
 * request and closed the connection, with no timeout and deaf to
 * interrupts: a postmaster that is stopped (SIGSTOP, a frozen machine
 * whose kernel still answers) would hold the backend forever, even
 * during the bounded cleanup of an abort.  So the request is sent here
 * on a nonblocking socket, waiting on the latch at most
 * CANCEL_REQUEST_TIMEOUT_MS, with the address, pid and key that
 * PQgetCancel put in its PGcancel.  libpq 15's header does not declare
 * that structure, so its leading fields are read as libpq 10 to 17 lay
 * them out, and only used when they match the connection (pid and peer
 * address); otherwise, as with any other libpq, PQcancel is used.
 */
void
CancelRemoteQuery(PGconn *conn)
{
	PGcancel   *cancel;
	char		errbuf[256];
	bool		sent;

	if ((cancel = PQgetCancel(conn)) == NULL)
		return;
	errbuf[0] = '\0';
	if (cancel_target_checked(conn, (const LibpqCancelHead *) cancel))
		sent = send_cancel_request((const LibpqCancelHead *) cancel, errbuf, sizeof(errbuf));
	else
		sent = PQcancel(cancel, errbuf, sizeof(errbuf));
	if (!sent)
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not send cancel request: %s", errbuf)));
	PQfreeCancel(cancel);
}

/*
 * cancel_target_checked says whether head, the start of conn's PGcancel,
 * holds what libpq 10 to 17 put there: conn's backend pid and the address
 * conn is connected to.
 */
static bool
cancel_target_checked(PGconn *conn, const LibpqCancelHead *head)
{
	struct sockaddr_storage peer;
	socklen_t	peerlen = sizeof(peer);
	const struct sockaddr *target = (const struct sockaddr *) &head->raddr.addr;

	if (PQlibVersion() < 100000 || PQlibVersion() >= 180000)
		return false;
	if (head->be_pid == 0 || head->be_pid != PQbackendPID(conn))
		return false;
	if (head->raddr.salen <= 0 || head->raddr.salen > sizeof(head->raddr.addr))
		return false;
	if (PQsocket(conn) == PGINVALID_SOCKET ||
		getpeername(PQsocket(conn), (struct sockaddr *) &peer, &peerlen) != 0 ||
		peer.ss_family != target->sa_family)
		return false;

	switch (target->sa_family)
	{
		case AF_INET:
			{
				const struct sockaddr_in *a = (const struct sockaddr_in *) target;
				const struct sockaddr_in *b = (const struct sockaddr_in *) &peer;

				return a->sin_port == b->sin_port &&
					a->sin_addr.s_addr == b->sin_addr.s_addr;
			}
		case AF_INET6:
			{
				const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) target;
				const struct sockaddr_in6 *b = (const struct sockaddr_in6 *) &peer;

				return a->sin6_port == b->sin6_port &&
					memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
			}
		case AF_UNIX:
			{
				const struct sockaddr_un *a = (const struct sockaddr_un *) target;
				const struct sockaddr_un *b = (const struct sockaddr_un *) &peer;

				return peerlen > offsetof(struct sockaddr_un, sun_path) &&
					strncmp(a->sun_path, b->sun_path, sizeof(a->sun_path)) == 0;
			}
		default:
			return false;
	}
}

/*
 * send_cancel_request sends the cancel request of head (a checked
 * LibpqCancelHead) to the node's postmaster on a nonblocking socket, and
 * waits, at most CANCEL_REQUEST_TIMEOUT_MS in all, for the postmaster to
 * close the connection, which it does once it has passed the request on.
 * Returns whether the request was sent; if not, errbuf says why.  A set
 * latch is set again on return, so that interrupts are not missed; they
 * are not processed here.
 */
static bool
send_cancel_request(const LibpqCancelHead *head, char *errbuf, int errbufsize)
{
	const struct sockaddr *target = (const struct sockaddr *) &head->raddr.addr;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   CANCEL_REQUEST_TIMEOUT_MS);
	struct
	{
		uint32		length;
		CancelRequestPacket packet;
	}			request;
	bool		latchSet = false;
	bool		sent = false;
	pgsocket	sock;
	int			error = 0;
	socklen_t	errorlen = sizeof(error);

	sock = socket(target->sa_family, SOCK_STREAM, 0);
	if (sock == PGINVALID_SOCKET)
	{
		snprintf(errbuf, errbufsize, "could not create socket: %m");
		return false;
	}
	if (!pg_set_noblock(sock))
	{
		snprintf(errbuf, errbufsize, "could not set socket to nonblocking mode: %m");
		goto done;
	}
	if (connect(sock, target, head->raddr.salen) < 0 && errno != EINPROGRESS && errno != EINTR)
	{
		snprintf(errbuf, errbufsize, "could not connect to the node: %m");
		goto done;
	}
	if (!wait_for_cancel_socket(sock, WL_SOCKET_WRITEABLE, deadline, &latchSet))
	{
		snprintf(errbuf, errbufsize, "timeout while connecting to the node");
		goto done;
	}
	if (getsockopt(sock, SOL_SOCKET, SO_ERROR, (char *) &error, &errorlen) < 0 || error != 0)
	{
		snprintf(errbuf, errbufsize, "could not connect to the node: %s",
				 strerror(error != 0 ? error : errno));
		goto done;
	}

	request.length = pg_hton32((uint32) sizeof(request));
	request.packet.cancelRequestCode = pg_hton32(CANCEL_REQUEST_CODE);
	request.packet.backendPID = pg_hton32(head->be_pid);
	request.packet.cancelAuthCode = pg_hton32(head->be_key);
	if (send(sock, (char *) &request, sizeof(request), 0) != (ssize_t) sizeof(request))
	{
		snprintf(errbuf, errbufsize, "could not send the cancel request: %m");
		goto done;
	}
	sent = true;

	/* the postmaster closes the connection once it has the request */
	(void) wait_for_cancel_socket(sock, WL_SOCKET_READABLE, deadline, &latchSet);

done:
	closesocket(sock);
	if (latchSet)
		SetLatch(MyLatch);
	return sent;
}

/*
 * wait_for_cancel_socket waits until sock is ready for events or
 * deadline passes, and says which came first.  The latch is reset when
 * set (*latchSet records it), interrupts are left pending.
 */
static bool
wait_for_cancel_socket(pgsocket sock, uint32 events, TimestampTz deadline, bool *latchSet)
{
	for (;;)
	{
		long		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		int			rc;

		if (timeout <= 0)
			return false;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
							   sock, timeout, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			*latchSet = true;
		}
		if (rc & events)
			return true;
	}
}

/*
 * PutCopyData adds len bytes of data to the COPY FROM STDIN in progress
 * on conn without blocking the backend: the connection is put in
 * nonblocking mode, libpq sends what the socket takes, and once more than
 * COPY_FLUSH_BYTES may be waiting (*pending counts the bytes put since
 * the last flush; start it at 0) the rest is flushed while waiting on the
 * latch and the socket, processing interrupts.  A blocking PQputCopyData
 * would wait in poll(), deaf to a cancel and to statement_timeout, for as
 * long as a node does not read.  End the COPY with EndCopyData.  Errors
 * name the node, with sql (the COPY) as context.
 */
void
PutCopyData(PGconn *conn, const char *nodeName, const char *sql,
			const char *data, int len, size_t *pending)
{
	int			rc;

	if (!PQisnonblocking(conn) && PQsetnonblocking(conn, 1) != 0)
		ReportRemoteError(NULL, conn, nodeName, sql);
	while ((rc = PQputCopyData(conn, data, len)) == 0)
		flush_copy_data(conn, nodeName, sql);	/* libpq's buffer is full */
	if (rc < 0)
		ReportRemoteError(NULL, conn, nodeName, sql);
	*pending += len;
	if (*pending >= COPY_FLUSH_BYTES)
	{
		flush_copy_data(conn, nodeName, sql);
		*pending = 0;
	}
}

/*
 * EndCopyData ends the COPY FROM STDIN on conn that PutCopyData fed,
 * sends everything that is left, as PutCopyData does, and puts the
 * connection back in blocking mode.  The caller reads the COPY's result.
 */
void
EndCopyData(PGconn *conn, const char *nodeName, const char *sql)
{
	int			rc;

	if (!PQisnonblocking(conn) && PQsetnonblocking(conn, 1) != 0)
		ReportRemoteError(NULL, conn, nodeName, sql);
	while ((rc = PQputCopyEnd(conn, NULL)) == 0)
		flush_copy_data(conn, nodeName, sql);
	if (rc < 0)
		ReportRemoteError(NULL, conn, nodeName, sql);
	flush_copy_data(conn, nodeName, sql);
	if (PQsetnonblocking(conn, 0) != 0)
		ReportRemoteError(NULL, conn, nodeName, sql);
}

/*
 * flush_copy_data sends what libpq holds for conn, waiting for the
 * socket on the latch and processing interrupts; what the node sends
 * meanwhile (an error, a notice) is read, so that neither side waits for
 * the other.
 */
static void
flush_copy_data(PGconn *conn, const char *nodeName, const char *sql)
{
	for (;;)
	{
		int			rc = PQflush(conn);

		if (rc < 0)
			ReportRemoteError(NULL, conn, nodeName, sql);
		if (rc == 0)
			return;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE |
							   WL_EXIT_ON_PM_DEATH,
							   PQsocket(conn), -1L, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ErrorContextCallback waiting;

			waiting.callback = waiting_for_node_context;
			waiting.arg = (void *) nodeName;
			waiting.previous = error_context_stack;
			error_context_stack = &waiting;
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			error_context_stack = waiting.previous;
		}
		if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
			ReportRemoteError(NULL, conn, nodeName, sql);
	}
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
			 /* errcontext() is a comma expression: parenthesise both arms */
			 sql ? (errcontext("remote SQL command on node \"%s\": %s", nodeName, sql)) :
			 (errcontext("node \"%s\"", nodeName))));
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

/*
 * WaitForSockets waits until one of the n sockets is ready for its events
 * (WL_SOCKET_* flags), the latch is set, or timeoutMs passes (-1: no
 * limit), on a WaitEventSet that also exits on postmaster death.
 * occurred[i] receives the events that socket i is ready for (0 if none);
 * returns the number of ready sockets.  A set latch is reset and pending
 * interrupts are processed (which may throw, except while interrupts are
 * held, as during abort).
 */
int
WaitForSockets(int n, const pgsocket *sockets, const uint32 *events,
			   uint32 *occurred, long timeoutMs)
{
	WaitEventSet *volatile set = NULL;
	WaitEvent  *fired = palloc(sizeof(WaitEvent) * (n + 2));
	int			nfired = 0;
	bool		latchSet = false;
	int			ready = 0;
	int			i;

	memset(occurred, 0, sizeof(uint32) * n);
	PG_TRY();
	{
		set = CreateWaitEventSet(CurrentMemoryContext, n + 2);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (i = 0; i < n; i++)
			AddWaitEventToSet(set, events[i], sockets[i], NULL, (void *) (intptr_t) i);
		nfired = WaitEventSetWait(set, timeoutMs, fired, n + 2, PG_WAIT_EXTENSION);
	}
	PG_FINALLY();
	{
		if (set != NULL)
			FreeWaitEventSet(set);
	}
	PG_END_TRY();

	for (i = 0; i < nfired; i++)
	{
		if (fired[i].events & WL_LATCH_SET)
			latchSet = true;
		else if (fired[i].events & WL_SOCKET_MASK)
		{
			occurred[(intptr_t) fired[i].user_data] = fired[i].events;
			ready++;
		}
	}
	pfree(fired);
	if (latchSet)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return ready;
}

/* where one ParallelCommand stands */
typedef enum CommandState
{
	COMMAND_DRAIN,				/* reading what earlier work still sends */
	COMMAND_SEND,
	COMMAND_FLUSH,
	COMMAND_READ,
	COMMAND_DONE,
	COMMAND_FAILED
} CommandState;

/*
 * command_step advances command as far as it goes without blocking and
 * returns the socket events it waits for, or 0 when it is done or failed.
 * In the ERROR-raising mode (cleanup false) the first error is kept in
 * *errorIndex and *errorResult.
 */
static uint32
command_step(ParallelCommand *command, CommandState *state, bool *hadError,
			 bool cleanup, int index, int *errorIndex, PGresult **errorResult)
{
	PGconn	   *conn = command->conn;

	for (;;)
	{
		PGresult   *res;
		int			rc;

		switch (*state)
		{
			case COMMAND_DRAIN:
				if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF && PQexitPipelineMode(conn))
					continue;
				rc = PQflush(conn);
				if (rc < 0)
					break;
				if (rc > 0)
					return WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE;
				if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF &&
					PQtransactionStatus(conn) != PQTRANS_ACTIVE)
				{
					*state = COMMAND_SEND;
					continue;
				}
				if (PQisBusy(conn))
					return WL_SOCKET_READABLE;
				res = PQgetResult(conn);
				if (res != NULL)
				{
					ExecStatusType status = PQresultStatus(res);

					command->received = true;
					PQclear(res);
					if (status == PGRES_COPY_IN)
					{
						if (PQputCopyEnd(conn, "canceled by shardexec") < 0)
							break;
					}
					else if (status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH)
						break;
				}
				if (PQstatus(conn) != CONNECTION_OK)
					break;
				continue;

			case COMMAND_SEND:
				if (command->sql == NULL)
				{
					*state = COMMAND_DONE;
					command->ok = true;
					return 0;
				}
				if (ShardexecLogRemoteSql)
					ereport(LOG,
							(errmsg("shardexec: sending to node \"%s\": %s",
									command->nodeName, command->sql),
							 errhidestmt(true)));
				if (!PQsendQuery(conn, command->sql))
					break;
				*state = COMMAND_FLUSH;
				continue;

			case COMMAND_FLUSH:
				rc = PQflush(conn);
				if (rc < 0)
					break;
				if (rc > 0)
					return WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE;
				*state = COMMAND_READ;
				continue;

			case COMMAND_READ:
				if (PQisBusy(conn))
					return WL_SOCKET_READABLE;
				res = PQgetResult(conn);
				if (res == NULL)
				{
					*state = COMMAND_DONE;
					command->ok = !*hadError;
					return 0;
				}
				if (PQresultStatus(res) == PGRES_TUPLES_OK && command->wantValue &&
					PQntuples(res) > 0 && PQnfields(res) > 0)
					command->value = PQgetisnull(res, 0, 0) ? NULL :
						pstrdup(PQgetvalue(res, 0, 0));
				if (PQresultStatus(res) != PGRES_COMMAND_OK &&
					PQresultStatus(res) != PGRES_TUPLES_OK)
				{
					*hadError = true;
					if (!cleanup && *errorIndex < 0)
					{
						*errorIndex = index;
						*errorResult = res;
						res = NULL;
					}
				}
				if (res != NULL)
					PQclear(res);
				if (PQstatus(conn) != CONNECTION_OK)
					break;
				continue;

			case COMMAND_DONE:
			case COMMAND_FAILED:
				return 0;
		}

		/* a libpq call failed: the connection is unusable */
		*state = COMMAND_FAILED;
		*hadError = true;
		if (!cleanup && *errorIndex < 0)
			*errorIndex = index;
		return 0;
	}
}

/* the commands run_parallel_commands waits for, for the error context */
typedef struct PendingCommands
{
	ParallelCommand *commands;
	int		   *index;			/* of the commands waited for */
	int			n;
} PendingCommands;

/*
 * waiting_for_commands_context adds the names of the nodes whose
 * commands are not done to an error raised while waiting for them (a
 * cancel or statement_timeout during COMMIT, PREPARE TRANSACTION, ...).
 */
static void
waiting_for_commands_context(void *arg)
{
	PendingCommands *pending = (PendingCommands *) arg;
	StringInfoData names;
	int			nnames = 0;
	int			i;

	initStringInfo(&names);
	for (i = 0; i < pending->n; i++)
	{
		const char *name = pending->commands[pending->index[i]].nodeName;
		int			j;
		bool		seen = false;

		for (j = 0; j < i && !seen; j++)
			seen = strcmp(pending->commands[pending->index[j]].nodeName, name) == 0;
		if (seen)
			continue;
		appendStringInfo(&names, "%s\"%s\"", nnames > 0 ? ", " : "", name);
		nnames++;
	}
	if (nnames == 1)
		errcontext("while waiting for node %s", names.data);
	else if (nnames > 1)
		errcontext("while waiting for nodes %s", names.data);
}

/*
 * run_parallel_commands runs commands, each on its own connection, all
 * at once: with cleanup, each connection is first brought back to idle
 * (after a cancel request if the command asks for it), failures are only
 * recorded in ok, and the whole must finish within timeoutMs (-1: no
 * limit).  Without cleanup, the first error is returned in *errorIndex
 * and *errorResult once every command has finished.  Connections are
 * left in blocking mode.
 */
static void
run_parallel_commands(ParallelCommand *commands, int n, bool cleanup,
					  long timeoutMs, int *errorIndex, PGresult **errorResult)
{
	CommandState *states = palloc(sizeof(CommandState) * n);
	bool	   *hadError = palloc0(sizeof(bool) * n);
	pgsocket   *sockets = palloc(sizeof(pgsocket) * n);
	uint32	   *events = palloc(sizeof(uint32) * n);
	uint32	   *occurred = palloc(sizeof(uint32) * n);
	int		   *index = palloc(sizeof(int) * n);
	TimestampTz deadline = 0;
	int			i;

	*errorIndex = -1;
	*errorResult = NULL;
	if (timeoutMs >= 0)
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeoutMs);

	for (i = 0; i < n; i++)
	{
		PGconn	   *conn = commands[i].conn;

		commands[i].ok = false;
		commands[i].received = false;
		commands[i].value = NULL;
		if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
			PQsetnonblocking(conn, 1) != 0)
		{
			states[i] = COMMAND_FAILED;
			if (!cleanup && *errorIndex < 0)
				*errorIndex = i;
			continue;
		}
		states[i] = COMMAND_SEND;
		if (PQtransactionStatus(conn) == PQTRANS_ACTIVE ||
			PQpipelineStatus(conn) != PQ_PIPELINE_OFF)
		{
			if (commands[i].cancel)
				CancelRemoteQuery(conn);
			states[i] = COMMAND_DRAIN;
		}
	}

	for (;;)
	{
		int			nwait = 0;
		int			nready;
		long		timeout = -1;
		ErrorContextCallback waiting;
		PendingCommands pending;

		for (i = 0; i < n; i++)
		{
			uint32		wanted = command_step(&commands[i], &states[i], &hadError[i],
											  cleanup, i, errorIndex, errorResult);

			if (wanted != 0)
			{
				sockets[nwait] = PQsocket(commands[i].conn);
				events[nwait] = wanted;
				index[nwait++] = i;
			}
		}
		if (nwait == 0)
			break;

		if (timeoutMs >= 0)
		{
			timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (timeout <= 0)
			{
				for (i = 0; i < nwait; i++)
					states[index[i]] = COMMAND_FAILED;
				break;
			}
		}

		waiting.callback = waiting_for_commands_context;
		waiting.arg = &pending;
		waiting.previous = error_context_stack;
		pending.commands = commands;
		pending.index = index;
		pending.n = nwait;
		error_context_stack = &waiting;
		if (nwait == 1 && commands[index[0]].owner != NULL)
		{
			occurred[0] = WaitForNodeConnection(commands[index[0]].owner, events[0], timeout);
			nready = occurred[0] != 0 ? 1 : 0;
		}
		else
			nready = WaitForSockets(nwait, sockets, events, occurred, timeout);
		error_context_stack = waiting.previous;
		if (nready > 0)
		{
			for (i = 0; i < nwait; i++)
			{
				int			k = index[i];

				if ((occurred[i] & WL_SOCKET_READABLE) &&
					!PQconsumeInput(commands[k].conn))
				{
					states[k] = COMMAND_FAILED;
					if (!cleanup && *errorIndex < 0)
						*errorIndex = k;
				}
			}
		}
	}

	for (i = 0; i < n; i++)
	{
		if (states[i] != COMMAND_FAILED && PQstatus(commands[i].conn) == CONNECTION_OK)
			(void) PQsetnonblocking(commands[i].conn, 0);
	}
	pfree(states);
	pfree(hadError);
	pfree(sockets);
	pfree(events);
	pfree(occurred);
	pfree(index);
}

/*
 * ExecuteParallelCommands runs each command on its connection, all at
 * once, and waits for all of them; the first error is then raised, with
 * its node and SQL.  Interrupts are processed while waiting.
 */
void
ExecuteParallelCommands(ParallelCommand *commands, int n)
{
	int			errorIndex;
	PGresult   *errorResult;

	run_parallel_commands(commands, n, false, -1, &errorIndex, &errorResult);
	if (errorIndex >= 0)
		ReportRemoteError(errorResult, commands[errorIndex].conn,
						  commands[errorIndex].nodeName, commands[errorIndex].sql);
}

/*
 * ExecuteParallelCommandsWithin is ExecuteParallelCommands within
 * timeoutMs (-1: no limit): when the time is up before every command has
 * finished, an error says so and names a node that did not answer.  The
 * connections of the commands that did not finish (ok is false) are in an
 * unknown state.
 *
 * This is for the remote commands of a local commit (COMMIT, PREPARE
 * TRANSACTION, RELEASE SAVEPOINT), which PostgreSQL runs after it has
 * turned statement_timeout off: without a limit of their own, a node that
 * stops answering would hold the commit forever.
 */
void
ExecuteParallelCommandsWithin(ParallelCommand *commands, int n, long timeoutMs)
{
	int			errorIndex;
	PGresult   *errorResult;
	int			i;

	run_parallel_commands(commands, n, false, timeoutMs, &errorIndex, &errorResult);
	if (errorIndex >= 0)
		ReportRemoteError(errorResult, commands[errorIndex].conn,
						  commands[errorIndex].nodeName, commands[errorIndex].sql);
	for (i = 0; i < n; i++)
	{
		if (!commands[i].ok)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("canceling statement due to statement timeout"),
					 errdetail("Node \"%s\" did not answer within statement_timeout (%ld ms).",
							   commands[i].nodeName, timeoutMs),
					 errcontext("remote SQL command on node \"%s\": %s",
								commands[i].nodeName, commands[i].sql)));
	}
}

/*
 * CleanUpConnections brings every command's connection back to idle,
 * sending a cancel request first where command->cancel says so, then
 * runs its command, if any (ROLLBACK ...), all at once and within
 * timeoutMs (-1: no limit).  It never raises an error of its own; ok
 * says which commands succeeded, and the result whether all did.  The
 * caller closes the connections that did not.
 */
bool
CleanUpConnections(ParallelCommand *commands, int n, int timeoutMs)
{
	int			errorIndex;
	PGresult   *errorResult;
	bool		allOk = true;
	int			i;

	run_parallel_commands(commands, n, true, timeoutMs, &errorIndex, &errorResult);
	for (i = 0; i < n; i++)
		allOk &= commands[i].ok;
	return allOk;
}
