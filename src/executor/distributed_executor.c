/*-------------------------------------------------------------------------
 *
 * distributed_executor.c
 *		  Runs a statement's execution units on the nodes, all at once, and
 *		  merges their rows.
 *
 * A statement that reaches the nodes is a list of execution units: one
 * SQL statement for one shard (or shard group) on one node.  This file
 * runs such a list in three steps, after ShardingSphere's execution
 * engine, inside one backend and without threads.
 *
 * Preparation.  Units are grouped by node.  For a node with u units and
 * m = shardexec.max_connections_per_query:
 *
 *	 - u <= m: memory-strict.  u connections, one unit each, all running at
 *	   once.  Each result is streamed: libpq's single-row mode (chunked
 *	   rows need PostgreSQL 17's libpq), and a socket is read only when
 *	   the merge has taken the row it last produced, so a unit holds at
 *	   most one row and libpq's input buffer, whatever the result's size.
 *	   The node's own send buffer is the backpressure.
 *
 *	 - u > m: connection-strict.  Exactly m connections; the units are
 *	   dealt out evenly (sizes differ by at most one) and each connection
 *	   runs its units one after another.  They are sent at once in a libpq
 *	   pipeline (PQenterPipelineMode ... PQpipelineSync), so there is no
 *	   round trip per unit, and every result is read whole, row by row, into
 *	   a tuplestore of its own that spills to a temporary file past its
 *	   share of work_mem (work_mem divided by the number of such units,
 *	   at least 64kB), so the connection is free for its next unit while
 *	   the merge reads at its own pace.
 *
 * Within a transaction that wrote to a shard over one connection, work on
 * that shard must use that connection (connection.c explains why); such
 * units are pinned to their connection, the rest are dealt out as above,
 * and a node whose connections end up with more than one unit each is
 * connection-strict.
 *
 * A statement claims all its connections, on every node, in one call
 * (ClaimNodeConnections): the missing ones are opened in parallel under
 * one shardexec.connect_timeout, and a statement never waits holding
 * some connections for others.  A node at shardexec.max_shared_pool_size
 * may grant fewer connections than wanted (at least one, and every
 * pinned one): the units are dealt out only once the claim is made, over
 * the connections granted, so such a node runs connection-strict.
 *
 * Execution.  One WaitEventSet holds the latch, postmaster death and the
 * socket of every connection of every node that has something to do (a
 * wait for one connection alone uses the set kept with it, see
 * WaitForNodeConnection):
 * output to flush (PQsetnonblocking, PQflush), or input wanted
 * (PQconsumeInput, PQisBusy, PQgetResult).  A socket whose unit holds an
 * unread streamed row is left out, so that its data stays in the kernel.
 * The set is rebuilt when the sockets it must contain change, and
 * modified in place when only their events do.  Interrupts are checked
 * whenever the latch is set, so a cancel, statement_timeout or
 * pg_cancel_backend ends the statement at once; the transaction abort
 * that follows cancels every query still running on the nodes
 * (connection.c), with a bounded wait.
 *
 * The first error on any unit cancels every other unit in flight, drains
 * the connections (bounded), and is raised with the remote SQLSTATE,
 * message, detail and hint, and the node and remote SQL as context.  A
 * lost connection is reported as such, naming the node.
 *
 * Results arrive in binary when every column's type is a built-in type
 * with a binary receive function (shardexec.binary_transfer): built-in
 * types have the same OIDs everywhere, which matters because the binary
 * forms of arrays and records carry element and column type OIDs.
 * Otherwise they arrive as text, in the formats connection.c fixes on the
 * node, and are read with the input functions under the same settings.
 * Parameters are sent as text, with their types when those are built-in
 * (other type OIDs mean nothing on the node, which then infers the type).
 *
 * Merge.  With no sort keys, an unordered union: the row comes from
 * whichever unit has one ready without I/O, starting with the unit that
 * gave the last one; only when none has does the executor wait, and then
 * for any of them.  With sort keys (each unit's rows already sorted by
 * them), a k-way merge: a binary heap of the units' current rows,
 * compared with SortSupport; while waiting for the unit whose row was
 * taken, the other connections with work to do progress too.  Ending an
 * execution early (a LIMIT was satisfied) abandons what is left: it is
 * cancelled when that loses nothing, else read and discarded (see
 * AbandonConnectionWork).
 *
 * Another statement of the backend that needs a connection this one still
 * has work in flight on (only when the transaction pinned it, see above)
 * gets it through finish_connection_work, which reads the rest of that
 * connection's units into tuplestores: rows are never lost, and the
 * merge sees no difference.
 *
 * The execution lives in a memory context of its own under the caller's
 * current one; when that is reset or deleted before
 * EndDistributedExecution (an error), a reset callback releases what
 * memory cannot: claims, libpq results, the WaitEventSet.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/tuptable.h"
#include "lib/binaryheap.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/sortsupport.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "shardexec/connection.h"
#include "shardexec/executor.h"
#include "shardexec/metadata.h"
#include "shardexec/plugin.h"
#include "shardexec/shardexec.h"

/* how often, in rows returned, connections that fill tuplestores are polled */
#define POLL_INTERVAL_ROWS 256

/* smallest in-memory share of work_mem of a unit's tuplestore, in kB */
#define MIN_STORE_KBYTES 64

/*
 * times one connection's units may be sent again after it was lost, in
 * one statement (the failover plugin's max_retries goes up to it)
 */
#define MAX_CONNECTION_RETRIES 10

typedef struct NodeExecution NodeExecution;
typedef struct ConnectionExecution ConnectionExecution;
typedef struct UnitExecution UnitExecution;

typedef enum UnitStatus
{
	UNIT_QUEUED,				/* sent, or waiting to be sent */
	UNIT_RUNNING,				/* its results are being read */
	UNIT_DONE					/* every row received */
} UnitStatus;

/* one unit at run time */
struct UnitExecution
{
	ExecutionUnit *unit;
	int			index;			/* in DistributedExecution.units */
	NodeExecution *node;
	ConnectionExecution *connection;
	UnitStatus	status;
	bool		checkedColumns; /* the result's column count was checked */

	/* rows go to the tuplestore (connection-strict, or handed over) */
	bool		store;
	Tuplestorestate *tuplestore;
	uint64		stored;			/* rows put into the tuplestore */
	uint64		fetched;		/* rows taken from it */

	PGresult   *head;			/* streamed row not yet taken */

	uint64		rows;			/* rows received */
	uint64		delivered;		/* rows handed to the merge */
	uint64		affected;		/* command tuple count */

	TupleTableSlot *mergeSlot;	/* ordered merge: the unit's current row */
};

/* one claimed connection at run time */
struct ConnectionExecution
{
	NodeExecution *node;
	ConnectionClaim *claim;		/* in NodeExecution.claims */
	PGconn	   *conn;
	int			requiredSlot;	/* slot it must be, or -1 */
	UnitExecution **units;		/* in the order they run */
	int			nunits;
	int			current;		/* the unit whose results are read */
	bool		pipeline;		/* in libpq pipeline mode */
	bool		flushing;		/* output not yet all sent */
	bool		active;			/* results still expected */
	int			retries;		/* times its units were sent again */

	/* shardexec.node_response_timeout */
	long		silentMs;		/* blocked waiting for it, nothing came */
	bool		timedOut;		/* the node did not answer in time */
};

/* one node's share of the statement */
struct NodeExecution
{
	int32		nodeId;
	char	   *nodeName;
	ShardexecNode node;			/* a copy, for the claim */
	bool		connectionStrict;
	UnitExecution **units;
	int			nunits;
	ConnectionExecution *connections;
	ConnectionClaim *claims;	/* one per connection, made in place */
	int			nconnections;	/* wanted, then granted by the claim */
	int			npinned;		/* connections [0, npinned) are required */
	int		   *requiredSlots;	/* per unit: slot it must use, or -1 */
	int			activeConnections;
	uint64		rows;
	instr_time	startTime;
	instr_time	endTime;
	bool		started;
	bool		finished;
};

struct DistributedExecution
{
	MemoryContext context;		/* holds everything below */
	MemoryContextCallback callback;
	bool		ended;
	bool		failed;
	bool		readOnly;		/* no unit writes or locks rows */
	bool		autocommit;		/* claimed without remote transactions */

	TupleDesc	tupdesc;
	int			ncolumns;		/* columns of every unit's result */
	AttrNumber *attnums;		/* attribute of each result column */
	bool		binary;			/* results in binary format */
	FmgrInfo   *functions;		/* receive or input function, per attribute */
	Oid		   *typioparams;	/* per attribute */

	int			nParams;
	const char **paramValues;
	Oid		   *paramTypes;

	UnitExecution *units;
	int			nunits;
	NodeExecution *nodes;
	int			nnodes;
	ConnectionExecution **connections;	/* every connection of every node */
	int			nconnections;
	int			storeKBytes;

	/* merge */
	int			nkeys;			/* 0: unordered union */
	SortSupport sortKeys;
	binaryheap *heap;
	bool		mergeStarted;
	int			lastUnit;		/* unit whose row was returned last, or -1 */
	int			rowsSincePoll;

	/* conversion */
	Datum	   *values;
	bool	   *nulls;
	MemoryContext rowContext;	/* values of the row returned, reset per row */
	MemoryContext scratchContext;	/* conversions into other storage */
	TupleTableSlot *virtualSlot;
	TupleTableSlot *storeSlot;

	/* waiting */
	WaitEventSet *waitSet;
	ConnectionExecution **waitConnections;	/* by position in waitSet - 2 */
	uint32	   *waitEvents;
	int			nwait;
	WaitEvent  *firedEvents;
	bool		processing;		/* guards against re-entry */

	PluginExecution *plugin;	/* the execute pipeline (src/plugin/), or NULL */
};

static void plan_node(DistributedExecution *execution, NodeExecution *node);
static bool binary_transfer_possible(TupleDesc tupdesc);
static void prepare_conversion(DistributedExecution *execution);
static void deal_units(NodeExecution *node);
static void claim_connections(DistributedExecution *execution);
static void start_units(DistributedExecution *execution);
static void start_connection(DistributedExecution *execution, ConnectionExecution *c);
static void prepare_statement(DistributedExecution *execution, ConnectionExecution *c,
							  UnitExecution *u, int number);
static char *statement_key(DistributedExecution *execution, UnitExecution *u);
static void send_unit(DistributedExecution *execution, ConnectionExecution *c,
					  UnitExecution *u);
static void flush_connection(DistributedExecution *execution, ConnectionExecution *c);
static void process_connection(DistributedExecution *execution, ConnectionExecution *c);
static void connection_done(DistributedExecution *execution, ConnectionExecution *c);
static void record_result(ConnectionExecution *c, UnitExecution *u, PGresult *res);
static void ensure_store(DistributedExecution *execution, UnitExecution *u);
static void store_result_rows(DistributedExecution *execution, UnitExecution *u,
							  PGresult *res);
static void convert_row(DistributedExecution *execution, UnitExecution *u,
						PGresult *res, int row);
static bool unit_next_row(DistributedExecution *execution, UnitExecution *u);
static bool unit_exhausted(UnitExecution *u);
static void wait_for_io(DistributedExecution *execution, long timeout);
static void waiting_error_context(void *arg);
static void serve_connection(DistributedExecution *execution, ConnectionExecution *c,
							 uint32 occurred);
static void note_silence(DistributedExecution *execution, ConnectionExecution **wanted,
						 int n, TimestampTz waitStart, ConnectionExecution **ready,
						 int nready);
static uint32 connection_interest(ConnectionExecution *c);
static void maybe_poll(DistributedExecution *execution);
static bool next_row_unordered(DistributedExecution *execution, TupleTableSlot *slot);
static bool next_row_ordered(DistributedExecution *execution, TupleTableSlot *slot);
static bool ensure_merge_row(DistributedExecution *execution, UnitExecution *u);
static int	compare_units(Datum a, Datum b, void *arg);
static void return_converted_row(DistributedExecution *execution, TupleTableSlot *slot);
static bool connection_receiving(ConnectionExecution *c);
static void execution_failed(DistributedExecution *execution, ConnectionExecution *c,
							 UnitExecution *u, PGresult *res) pg_attribute_noreturn();
static void connection_failed(DistributedExecution *execution, ConnectionExecution *c,
							  PGresult *res);
static bool session_lost(ConnectionExecution *c, PGresult *res);
static bool stop_after_failure(DistributedExecution *execution, ConnectionExecution *c,
							   bool lost);
static char *failure_message(ConnectionExecution *c, PGresult *res);
static bool retry_connection(DistributedExecution *execution, ConnectionExecution *c,
							 PGresult *res);
static bool plugins_retry(DistributedExecution *execution, ConnectionExecution *c,
						  PGresult *res);
static void reclaim_connection(DistributedExecution *execution, ConnectionExecution *c);
static void finish_connection_work(void *arg, NodeConnection *connection);
static void execution_reset_callback(void *arg);
static void release_execution(DistributedExecution *execution);

/*
 * BeginDistributedExecution starts running units (a list of
 * ExecutionUnit) on their nodes: it chooses each node's connection mode,
 * claims and opens the connections and sends every unit.  Every unit's
 * result must have one column per attribute of tupdesc that is not
 * dropped, in order.  merge (NULL or nkeys 0: unordered) gives sort keys
 * by which each unit's rows are sorted; the rows are then returned in
 * that order.  Parameters $1..$nParams are sent as text, with paramTypes
 * (may be NULL).
 *
 * The units, tupdesc, and the caller's slots must stay valid until
 * EndDistributedExecution; parameters and merge are copied.  The
 * execution lives in a child of the current memory context.
 */
DistributedExecution *
BeginDistributedExecution(List *units, TupleDesc tupdesc, ExecutionMerge *merge,
						  int nParams, const char *const *paramValues,
						  const Oid *paramTypes)
{
	MemoryContext context;
	MemoryContext oldContext;
	DistributedExecution *execution;
	ListCell   *lc;
	int			storedUnits = 0;
	int			nconnections = 0;
	int			i;

	context = AllocSetContextCreate(CurrentMemoryContext,
									"shardexec distributed execution",
									ALLOCSET_DEFAULT_SIZES);
	oldContext = MemoryContextSwitchTo(context);

	execution = palloc0(sizeof(DistributedExecution));
	execution->context = context;
	/* a copy: slots would pin a reference-counted one */
	execution->tupdesc = CreateTupleDescCopy(tupdesc);
	tupdesc = execution->tupdesc;
	execution->lastUnit = -1;
	execution->readOnly = true;
	execution->autocommit = ShardexecReadWithoutRemoteTransaction;
	execution->callback.func = execution_reset_callback;
	execution->callback.arg = execution;
	MemoryContextRegisterResetCallback(context, &execution->callback);

	execution->rowContext = AllocSetContextCreate(context,
												  "shardexec execution row",
												  ALLOCSET_DEFAULT_SIZES);
	execution->scratchContext = AllocSetContextCreate(context,
													  "shardexec execution conversion",
													  ALLOCSET_DEFAULT_SIZES);

	/* parameters */
	execution->nParams = nParams;
	if (nParams > 0)
	{
		execution->paramValues = palloc0(sizeof(char *) * nParams);
		execution->paramTypes = palloc0(sizeof(Oid) * nParams);
		for (i = 0; i < nParams; i++)
		{
			if (paramValues[i] != NULL)
				execution->paramValues[i] = pstrdup(paramValues[i]);
			/* other OIDs mean nothing on the node: let it infer the type */
			if (paramTypes != NULL && paramTypes[i] < FirstGenbkiObjectId)
				execution->paramTypes[i] = paramTypes[i];
		}
	}

	/* conversion and merge */
	prepare_conversion(execution);
	if (merge != NULL && merge->nkeys > 0)
	{
		execution->nkeys = merge->nkeys;
		execution->sortKeys = palloc0(sizeof(SortSupportData) * merge->nkeys);
		for (i = 0; i < merge->nkeys; i++)
		{
			SortSupport ssup = &execution->sortKeys[i];

			ssup->ssup_cxt = context;
			ssup->ssup_collation = merge->collations[i];
			ssup->ssup_nulls_first = merge->nullsFirst[i];
			ssup->ssup_attno = merge->attnums[i];
			ssup->abbreviate = false;
			PrepareSortSupportFromOrderingOp(merge->sortOperators[i], ssup);
		}
	}

	/* units, grouped by node */
	execution->nunits = list_length(units);
	execution->units = palloc0(sizeof(UnitExecution) * Max(execution->nunits, 1));
	execution->nodes = palloc0(sizeof(NodeExecution) * Max(execution->nunits, 1));
	i = 0;
	foreach(lc, units)
	{
		ExecutionUnit *unit = lfirst(lc);
		UnitExecution *u = &execution->units[i];
		NodeExecution *node = NULL;
		int			j;

		u->unit = unit;
		u->index = i++;
		if (unit->modifies)
			execution->readOnly = false;
		for (j = 0; j < execution->nnodes && node == NULL; j++)
		{
			if (execution->nodes[j].nodeId == unit->nodeId)
				node = &execution->nodes[j];
		}
		if (node == NULL)
		{
			ShardexecNode *shardNode = LookupNodeById(unit->nodeId, false);

			node = &execution->nodes[execution->nnodes++];
			node->nodeId = unit->nodeId;
			node->nodeName = pstrdup(shardNode->nodeName);
			node->node.nodeId = shardNode->nodeId;
			node->node.nodeName = node->nodeName;
			node->node.serverId = shardNode->serverId;
			node->units = palloc(sizeof(UnitExecution *) * execution->nunits);
		}
		u->node = node;
		node->units[node->nunits++] = u;
	}

	for (i = 0; i < execution->nnodes; i++)
	{
		plan_node(execution, &execution->nodes[i]);
		nconnections += execution->nodes[i].nconnections;
	}

	if (execution->nkeys > 0)
	{
		execution->heap = binaryheap_allocate(Max(execution->nunits, 1),
											  compare_units, execution);
		for (i = 0; i < execution->nunits; i++)
			execution->units[i].mergeSlot =
				MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
	}
	execution->virtualSlot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsVirtual);
	execution->storeSlot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
	execution->values = palloc0(sizeof(Datum) * Max(tupdesc->natts, 1));
	execution->nulls = palloc0(sizeof(bool) * Max(tupdesc->natts, 1));

	/*
	 * every connection, flat, for the wait loop: all those wanted until
	 * the claim (so that an error releases what was claimed), then those
	 * granted
	 */
	execution->connections = palloc(sizeof(ConnectionExecution *) * Max(nconnections, 1));
	execution->waitConnections = palloc(sizeof(ConnectionExecution *) *
										Max(nconnections, 1));
	execution->waitEvents = palloc(sizeof(uint32) * Max(nconnections, 1));
	execution->firedEvents = palloc(sizeof(WaitEvent) * (nconnections + 2));
	for (i = 0; i < execution->nnodes; i++)
	{
		NodeExecution *node = &execution->nodes[i];
		int			j;

		for (j = 0; j < node->nconnections; j++)
			execution->connections[execution->nconnections++] = &node->connections[j];
	}

	/* plugins (src/plugin/): the execute pipeline, read/write splitting */
	execution->plugin = PluginBeginExecution(units);

	claim_connections(execution);

	execution->nconnections = 0;
	for (i = 0; i < execution->nnodes; i++)
	{
		NodeExecution *node = &execution->nodes[i];
		int			j;

		deal_units(node);
		if (node->connectionStrict)
			storedUnits += node->nunits;
		for (j = 0; j < node->nconnections; j++)
			execution->connections[execution->nconnections++] = &node->connections[j];
	}
	execution->storeKBytes = Max(MIN_STORE_KBYTES, work_mem / Max(storedUnits, 1));

	start_units(execution);

	MemoryContextSwitchTo(oldContext);
	return execution;
}

/*
 * plan_node chooses how many connections node wants: those that units
 * pinned by the transaction's writes must use, plus up to
 * shardexec.max_connections_per_query in all for the other units.
 */
static void
plan_node(DistributedExecution *execution, NodeExecution *node)
{
	int			u = node->nunits;
	int			m = Max(ShardexecMaxConnectionsPerQuery, 1);
	int		   *pinnedSlots = palloc(sizeof(int) * Max(u, 1));
	int			npinned = 0;
	int			unpinned = 0;
	int			extra;
	int			nconnections;
	int			i;

	node->requiredSlots = palloc(sizeof(int) * Max(u, 1));
	for (i = 0; i < u; i++)
	{
		int			j;
		bool		known = false;
		int			required;

		required = RequiredConnectionSlot(&node->node, node->units[i]->unit->shardId);
		node->requiredSlots[i] = required;
		if (required < 0)
		{
			unpinned++;
			continue;
		}
		for (j = 0; j < npinned; j++)
			known |= (pinnedSlots[j] == required);
		if (!known)
			pinnedSlots[npinned++] = required;
	}

	extra = Min(unpinned, Max(m - npinned, 0));
	nconnections = npinned + extra;
	node->npinned = npinned;
	node->nconnections = nconnections;
	node->connections = palloc0(sizeof(ConnectionExecution) * Max(nconnections, 1));
	node->claims = palloc0(sizeof(ConnectionClaim) * Max(nconnections, 1));
	for (i = 0; i < nconnections; i++)
	{
		ConnectionExecution *c = &node->connections[i];

		c->node = node;
		c->claim = &node->claims[i];
		c->requiredSlot = i < npinned ? pinnedSlots[i] : -1;
		c->units = palloc(sizeof(UnitExecution *) * Max(u, 1));
	}
	pfree(pinnedSlots);
}

/*
 * deal_units deals node's units out to the connections the claim granted
 * and chooses the node's mode: pinned units go to their connection, the
 * others to the connection with the fewest units, on connections of
 * their own if any were granted.  A node whose connections end up with
 * more than one unit each is connection-strict.
 */
static void
deal_units(NodeExecution *node)
{
	int			nconnections = node->nconnections;
	int			npinned = node->npinned;
	int			first = nconnections > npinned ? npinned : 0;
	int			i;

	for (i = 0; i < node->nunits; i++)
	{
		ConnectionExecution *best = NULL;
		int			j;

		if (node->requiredSlots[i] >= 0)
		{
			for (j = 0; j < npinned && best == NULL; j++)
			{
				if (node->connections[j].requiredSlot == node->requiredSlots[i])
					best = &node->connections[j];
			}
		}
		else
		{
			for (j = nconnections - 1; j >= first; j--)
			{
				ConnectionExecution *c = &node->connections[j];

				if (best == NULL || c->nunits < best->nunits)
					best = c;
			}
		}
		Assert(best != NULL);
		best->units[best->nunits++] = node->units[i];
		node->units[i]->connection = best;
	}

	node->connectionStrict = false;
	for (i = 0; i < nconnections; i++)
	{
		if (node->connections[i].nunits > 1)
			node->connectionStrict = true;
	}
	for (i = 0; i < node->nunits; i++)
		node->units[i]->store = node->connectionStrict;
}

/*
 * binary_transfer_possible says whether results with the columns of
 * tupdesc can come in binary: every column's type is built in (its OID,
 * and those its binary form may carry, are the same on every server) and
 * has a receive function.
 */
static bool
binary_transfer_possible(TupleDesc tupdesc)
{
	int			i;

	if (!ShardexecBinaryTransfer)
		return false;
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		HeapTuple	tuple;
		bool		ok;

		if (attr->attisdropped)
			continue;
		if (attr->atttypid >= FirstGenbkiObjectId)
			return false;
		tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(attr->atttypid));
		if (!HeapTupleIsValid(tuple))
			return false;
		ok = OidIsValid(((Form_pg_type) GETSTRUCT(tuple))->typreceive) &&
			((Form_pg_type) GETSTRUCT(tuple))->typisdefined;
		ReleaseSysCache(tuple);
		if (!ok)
			return false;
	}
	return true;
}

/*
 * prepare_conversion looks up, for every column of the units' results,
 * its attribute and the function that reads it.
 */
static void
prepare_conversion(DistributedExecution *execution)
{
	TupleDesc	tupdesc = execution->tupdesc;
	int			i;

	execution->binary = binary_transfer_possible(tupdesc);
	execution->attnums = palloc(sizeof(AttrNumber) * Max(tupdesc->natts, 1));
	execution->functions = palloc0(sizeof(FmgrInfo) * Max(tupdesc->natts, 1));
	execution->typioparams = palloc0(sizeof(Oid) * Max(tupdesc->natts, 1));
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		Oid			function;

		if (attr->attisdropped)
			continue;
		if (execution->binary)
			getTypeBinaryInputInfo(attr->atttypid, &function, &execution->typioparams[i]);
		else
			getTypeInputInfo(attr->atttypid, &function, &execution->typioparams[i]);
		fmgr_info_cxt(function, &execution->functions[i], execution->context);
		execution->attnums[execution->ncolumns++] = attr->attnum;
	}
}

/*
 * claim_connections claims every connection of the statement at once.  A
 * node at shardexec.max_shared_pool_size may grant fewer than it wants
 * (the required ones, and at least one): its nconnections becomes the
 * number granted.
 */
static void
claim_connections(DistributedExecution *execution)
{
	List	   *requests = NIL;
	ListCell   *lc;
	int			i;

	for (i = 0; i < execution->nnodes; i++)
	{
		NodeExecution *node = &execution->nodes[i];
		ConnectionRequest *request = palloc0(sizeof(ConnectionRequest));
		int		   *slots = palloc(sizeof(int) * Max(node->nconnections, 1));
		int			j;

		for (j = 0; j < node->nconnections; j++)
			slots[j] = node->connections[j].requiredSlot;
		request->node = &node->node;
		request->count = node->nconnections;
		request->requiredSlots = slots;
		request->claims = node->claims;
		requests = lappend(requests, request);
	}
	PluginRouteConnections(execution->plugin);
	ClaimNodeConnections(requests, finish_connection_work, execution);
	PluginRouteConnections(NULL);

	i = 0;
	foreach(lc, requests)
	{
		ConnectionRequest *request = lfirst(lc);

		Assert(request->granted >= execution->nodes[i].npinned);
		execution->nodes[i++].nconnections = request->granted;
	}
}

/*
 * start_units sends every unit: a connection with several units sends
 * them in one pipeline (unless shardexec.use_pipeline is off, in which
 * case it sends them one at a time).
 */
static void
start_units(DistributedExecution *execution)
{
	int			i;

	for (i = 0; i < execution->nnodes; i++)
	{
		NodeExecution *node = &execution->nodes[i];
		int			j;

		INSTR_TIME_SET_CURRENT(node->startTime);
		node->started = true;
		for (j = 0; j < node->nconnections; j++)
		{
			ConnectionExecution *c = &node->connections[j];

			c->conn = c->claim->connection->conn;
			if (c->nunits == 0)
				continue;
			node->activeConnections++;
			start_connection(execution, c);
		}
		if (node->activeConnections == 0)
		{
			node->finished = true;
			INSTR_TIME_SET_CURRENT(node->endTime);
		}
	}
}

/*
 * start_connection sends c's units from c->current on: several in one
 * pipeline (unless shardexec.use_pipeline is off, in which case one at a
 * time).
 */
static void
start_connection(DistributedExecution *execution, ConnectionExecution *c)
{
	int			first = c->current;
	int			k;

	c->conn = c->claim->connection->conn;
	c->timedOut = false;
	c->silentMs = 0;
	if (PQsetnonblocking(c->conn, 1) != 0)
		execution_failed(execution, c, c->units[first], NULL);
	c->active = true;
	SetConnectionClaimBusy(c->claim, true);

	c->pipeline = c->nunits - first > 1 && ShardexecUsePipeline;
	if (c->pipeline && !PQenterPipelineMode(c->conn))
		execution_failed(execution, c, c->units[first], NULL);
	for (k = first; k < (c->pipeline ? c->nunits : first + 1); k++)
		send_unit(execution, c, c->units[k]);
	if (c->pipeline && !PQpipelineSync(c->conn))
		execution_failed(execution, c, c->units[first], NULL);
	c->units[first]->status = UNIT_RUNNING;
	(void) PQsetSingleRowMode(c->conn);
	c->flushing = true;
	flush_connection(execution, c);
}

/*
 * send_unit sends u's statement on c without waiting.
 */
static void
send_unit(DistributedExecution *execution, ConnectionExecution *c, UnitExecution *u)
{
	if (ShardexecLogRemoteSql)
		ereport(LOG,
				(errmsg("shardexec: sending to node \"%s\": %s",
						c->node->nodeName, u->unit->sql),
				 errhidestmt(true)));
	if (execution->plugin != NULL)
		PluginExecuteBegin(execution->plugin, u->index, u->unit, c->node->nodeName, c->conn);
	/*
	 * A statement with parameters (a router statement of a prepared
	 * statement or PL/pgSQL) is prepared once per session on the node and
	 * then only executed: the node does not parse and plan it again.
	 */
	if (execution->nParams > 0 && !c->pipeline)
	{
		NodeConnection *connection = c->claim->connection;
		char	   *key = statement_key(execution, u);
		int			number = PreparedStatementNumber(connection, key, false);
		char		name[64];

		if (number < 0 &&
			(number = PreparedStatementNumber(connection, key, true)) >= 0)
			prepare_statement(execution, c, u, number);
		if (number >= 0)
		{
			snprintf(name, sizeof(name), "shardexec_%d", number);
			if (!PQsendQueryPrepared(c->conn, name, execution->nParams,
									 execution->paramValues, NULL, NULL,
									 execution->binary ? 1 : 0))
				execution_failed(execution, c, u, NULL);
			return;
		}
	}
	if (!PQsendQueryParams(c->conn, u->unit->sql, execution->nParams,
						   execution->paramTypes, execution->paramValues,
						   NULL, NULL, execution->binary ? 1 : 0))
		execution_failed(execution, c, u, NULL);
}

/*
 * statement_key identifies u's prepared statement: its text, and the
 * types of its parameters and result, so that a statement prepared before
 * a column's type changed is not executed for the new result ("cached plan
 * must not change result type"): the new plan's types make a new key.
 */
static char *
statement_key(DistributedExecution *execution, UnitExecution *u)
{
	StringInfoData key;
	int			i;

	initStringInfo(&key);
	appendStringInfoString(&key, u->unit->sql);
	appendStringInfoString(&key, "\n--");
	for (i = 0; i < execution->nParams; i++)
		appendStringInfo(&key, " p%u", execution->paramTypes != NULL ?
						 execution->paramTypes[i] : InvalidOid);
	for (i = 0; i < execution->tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(execution->tupdesc, i);

		appendStringInfo(&key, " r%u/%d", attr->atttypid, attr->atttypmod);
	}
	return key.data;
}

/*
 * prepare_statement prepares u's statement as "shardexec_<number>" on
 * c's session, waiting for the node (interrupts are served meanwhile);
 * a failure is u's failure.
 */
static void
prepare_statement(DistributedExecution *execution, ConnectionExecution *c,
				  UnitExecution *u, int number)
{
	char		name[64];
	PGresult   *res;
	PGresult   *failure = NULL;
	bool		timedOut = false;

	snprintf(name, sizeof(name), "shardexec_%d", number);
	(void) PQsetnonblocking(c->conn, 0);
	if (!PQsendPrepare(c->conn, name, u->unit->sql, execution->nParams,
					   execution->paramTypes))
	{
		ForgetPreparedStatement(c->claim->connection, number);
		execution_failed(execution, c, u, NULL);
	}
	/* a frozen node: shardexec.node_response_timeout bounds this wait too */
	while ((res = ShardexecNodeResponseTimeout > 0 ?
			GetRemoteResultWithin(c->conn, c->node->nodeName,
								  ShardexecNodeResponseTimeout, &timedOut) :
			GetRemoteResult(c->conn, c->node->nodeName)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK && failure == NULL)
			failure = res;
		else
			PQclear(res);
	}
	if (timedOut)
	{
		if (failure != NULL)
			PQclear(failure);
		ForgetPreparedStatement(c->claim->connection, number);
		c->timedOut = true;
		execution_failed(execution, c, u, NULL);
	}
	(void) PQsetnonblocking(c->conn, 1);
	if (failure != NULL)
	{
		ForgetPreparedStatement(c->claim->connection, number);
		execution_failed(execution, c, u, failure);
	}
}

/*
 * flush_connection sends what libpq still holds of c's output.
 */
static void
flush_connection(DistributedExecution *execution, ConnectionExecution *c)
{
	int			rc;

	if (!c->flushing)
		return;
	rc = PQflush(c->conn);
	if (rc < 0)
	{
		connection_failed(execution, c, NULL);
		return;
	}
	c->flushing = (rc > 0);
}

/*
 * process_connection reads every result of c that libpq can give without
 * blocking: rows go to their unit's tuplestore, or, for a streamed unit,
 * become its head row, after which reading stops until the merge has
 * taken it.  The end of a unit's results moves c to its next unit.
 */
static void
process_connection(DistributedExecution *execution, ConnectionExecution *c)
{
	while (c->active)
	{
		UnitExecution *u = c->units[Min(c->current, c->nunits - 1)];
		PGresult   *res;

		if (c->current < c->nunits && !u->store && u->head != NULL)
			break;
		if (PQisBusy(c->conn))
			break;
		res = PQgetResult(c->conn);

		if (res == NULL)
		{
			/* the end of the current unit's results */
			if (c->current < c->nunits)
			{
				u->status = UNIT_DONE;
				if (execution->plugin != NULL)
					PluginExecuteEnd(execution->plugin, u->index, u->rows, u->affected);
				c->current++;
				if (c->current < c->nunits)
				{
					UnitExecution *next = c->units[c->current];

					if (!c->pipeline)
					{
						send_unit(execution, c, next);
						c->flushing = true;
						flush_connection(execution, c);
					}
					next->status = UNIT_RUNNING;
					(void) PQsetSingleRowMode(c->conn);
				}
				else if (!c->pipeline)
					connection_done(execution, c);
			}
			else if (c->pipeline && PQexitPipelineMode(c->conn))
				connection_done(execution, c);
			continue;
		}

		switch (PQresultStatus(res))
		{
			case PGRES_SINGLE_TUPLE:
				u->rows++;
				u->node->rows++;
				if (u->store)
				{
					store_result_rows(execution, u, res);
					PQclear(res);
				}
				else
				{
					if (!u->checkedColumns)
						convert_row(execution, u, res, -1);
					u->head = res;
				}
				break;
			case PGRES_TUPLES_OK:
				/* all rows at once if single-row mode could not be set */
				if (PQntuples(res) > 0)
				{
					u->rows += PQntuples(res);
					u->node->rows += PQntuples(res);
					ensure_store(execution, u);
					store_result_rows(execution, u, res);
				}
				record_result(c, u, res);
				PQclear(res);
				break;
			case PGRES_COMMAND_OK:
				record_result(c, u, res);
				PQclear(res);
				break;
			case PGRES_EMPTY_QUERY:
				PQclear(res);
				break;
			case PGRES_PIPELINE_SYNC:
				PQclear(res);
				if (PQexitPipelineMode(c->conn))
					connection_done(execution, c);
				break;
			default:
				if (c->current < c->nunits && c->units[c->current] == u)
					connection_failed(execution, c, res);
				else
					execution_failed(execution, c, u, res);
				return;
		}
	}
}

/*
 * record_result keeps the command tuple count of u's final result and,
 * if the command wrote, pins u's shard to the connection for the rest of
 * the transaction.
 */
static void
record_result(ConnectionExecution *c, UnitExecution *u, PGresult *res)
{
	const char *tuples = PQcmdTuples(res);
	const char *status = PQcmdStatus(res);

	if (tuples != NULL && tuples[0] != '\0')
		u->affected = strtou64(tuples, NULL, 10);
	if (c->claim->live &&
		(u->unit->modifies || (status != NULL && strncmp(status, "SELECT", 6) != 0)))
		RecordShardModification(c->claim->connection, u->unit->shardId);
}

/*
 * connection_done notes that c has no more results to read, hands it
 * back to blocking mode and marks its claim idle.
 */
static void
connection_done(DistributedExecution *execution, ConnectionExecution *c)
{
	NodeExecution *node = c->node;

	c->active = false;
	c->current = c->nunits;
	(void) PQsetnonblocking(c->conn, 0);
	SetConnectionClaimBusy(c->claim, false);
	if (--node->activeConnections == 0)
	{
		node->finished = true;
		INSTR_TIME_SET_CURRENT(node->endTime);
	}
}

/*
 * ensure_store makes u's rows go to a tuplestore from now on.
 */
static void
ensure_store(DistributedExecution *execution, UnitExecution *u)
{
	u->store = true;
	if (u->tuplestore == NULL)
	{
		MemoryContext oldContext = MemoryContextSwitchTo(execution->context);

		u->tuplestore = tuplestore_begin_heap(false, false, execution->storeKBytes);
		MemoryContextSwitchTo(oldContext);
	}
}

/*
 * store_result_rows appends the rows of res to u's tuplestore.
 */
static void
store_result_rows(DistributedExecution *execution, UnitExecution *u, PGresult *res)
{
	int			ntuples = PQntuples(res);
	int			row;

	ensure_store(execution, u);
	for (row = 0; row < ntuples; row++)
	{
		MemoryContext oldContext = MemoryContextSwitchTo(execution->scratchContext);

		convert_row(execution, u, res, row);
		MemoryContextSwitchTo(execution->context);
		tuplestore_putvalues(u->tuplestore, execution->tupdesc,
							 execution->values, execution->nulls);
		MemoryContextSwitchTo(oldContext);
		MemoryContextReset(execution->scratchContext);
		u->stored++;
	}
}

/*
 * convert_row reads row of res into execution->values and nulls,
 * allocating in the current memory context.  With row -1 it only checks
 * the result's shape.
 */
static void
convert_row(DistributedExecution *execution, UnitExecution *u, PGresult *res, int row)
{
	TupleDesc	tupdesc = execution->tupdesc;
	int			nestlevel = -1;
	int			c;

	if (!u->checkedColumns)
	{
		if (PQnfields(res) != execution->ncolumns)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("result from node \"%s\" has %d columns, %d were expected",
							u->node->nodeName, PQnfields(res), execution->ncolumns),
					 errcontext("remote SQL command on node \"%s\": %s",
								u->node->nodeName, u->unit->sql)));
		u->checkedColumns = true;
	}
	if (row < 0)
		return;

	memset(execution->nulls, true, sizeof(bool) * tupdesc->natts);
	if (!execution->binary)
		nestlevel = SetTransmissionModes();
	for (c = 0; c < execution->ncolumns; c++)
	{
		int			i = execution->attnums[c] - 1;
		int32		typmod = TupleDescAttr(tupdesc, i)->atttypmod;

		if (PQgetisnull(res, row, c))
		{
			execution->values[i] = (Datum) 0;
			continue;
		}
		if (execution->binary)
		{
			StringInfoData buf;

			buf.data = PQgetvalue(res, row, c);
			buf.len = PQgetlength(res, row, c);
			buf.maxlen = buf.len + 1;
			buf.cursor = 0;
			execution->values[i] = ReceiveFunctionCall(&execution->functions[i], &buf,
														execution->typioparams[i], typmod);
			if (buf.cursor != buf.len)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						 errmsg("incorrect binary data format in column \"%s\" from node \"%s\"",
								NameStr(TupleDescAttr(tupdesc, i)->attname),
								u->node->nodeName)));
		}
		else
			execution->values[i] = InputFunctionCall(&execution->functions[i],
													 PQgetvalue(res, row, c),
													 execution->typioparams[i], typmod);
		execution->nulls[i] = false;
	}
	if (nestlevel >= 0)
		ResetTransmissionModes(nestlevel);
}

/*
 * unit_next_row puts u's next row in execution->values and nulls
 * (allocated in the current memory context, or, from a tuplestore,
 * pointing into execution->storeSlot) if one is there without waiting.
 */
static bool
unit_next_row(DistributedExecution *execution, UnitExecution *u)
{
	for (;;)
	{
		if (u->head != NULL)
		{
			PGresult   *res = u->head;

			u->head = NULL;
			PG_TRY();
			{
				convert_row(execution, u, res, 0);
			}
			PG_FINALLY();
			{
				PQclear(res);
			}
			PG_END_TRY();
			u->delivered++;
			return true;
		}
		if (u->stored > u->fetched)
		{
			TupleTableSlot *slot = execution->storeSlot;
			MemoryContext oldContext;
			bool		found;

			/* a tuple read back from disk is the slot's to free: keep it */
			oldContext = MemoryContextSwitchTo(execution->context);
			found = tuplestore_gettupleslot(u->tuplestore, true, false, slot);
			MemoryContextSwitchTo(oldContext);
			if (!found)
				elog(ERROR, "tuplestore of a shard query ended early");
			u->fetched++;
			u->delivered++;
			slot_getallattrs(slot);
			memcpy(execution->values, slot->tts_values,
				   sizeof(Datum) * execution->tupdesc->natts);
			memcpy(execution->nulls, slot->tts_isnull,
				   sizeof(bool) * execution->tupdesc->natts);
			return true;
		}
		/* a streamed unit may have a row in libpq's buffer already */
		if (u->status == UNIT_RUNNING && !u->store && u->connection->active)
		{
			ConnectionExecution *c = u->connection;

			if (PQisBusy(c->conn))
				return false;
			execution->processing = true;
			process_connection(execution, c);
			execution->processing = false;
			if (u->head != NULL || u->stored > u->fetched)
				continue;
		}
		return false;
	}
}

/*
 * unit_exhausted says whether u has nothing more to give.
 */
static bool
unit_exhausted(UnitExecution *u)
{
	return u->status == UNIT_DONE && u->head == NULL && u->stored == u->fetched;
}

/*
 * connection_interest returns the socket events c waits for: writing
 * while output is pending, reading unless its streamed unit holds a row
 * the merge has not taken (its data then stays in the kernel).
 */
static uint32
connection_interest(ConnectionExecution *c)
{
	UnitExecution *u;

	if (!c->active)
		return 0;
	if (c->flushing)
		return WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE;
	if (c->current < c->nunits)
	{
		u = c->units[c->current];
		if (!u->store && u->head != NULL)
			return 0;
	}
	return WL_SOCKET_READABLE;
}

/*
 * wait_for_io waits (up to timeout ms, -1 for no limit) until a socket
 * of a connection with something to do is ready, and processes what
 * came; a set latch means interrupts are checked.  The WaitEventSet is
 * rebuilt only when the connections it must hold change.
 */
static void
wait_for_io(DistributedExecution *execution, long timeout)
{
	ConnectionExecution **wanted = palloc(sizeof(ConnectionExecution *) *
										  Max(execution->nconnections, 1));
	uint32	   *events = palloc(sizeof(uint32) * Max(execution->nconnections, 1));
	int			nwanted = 0;
	bool		rebuild;
	bool		latchSet = false;
	TimestampTz waitStart = 0;
	int			nfired;
	int			i;

	for (i = 0; i < execution->nconnections; i++)
	{
		ConnectionExecution *c = execution->connections[i];
		uint32		interest = connection_interest(c);

		if (interest != 0)
		{
			wanted[nwanted] = c;
			events[nwanted++] = interest;
		}
	}
	if (nwanted == 0)
	{
		pfree(wanted);
		pfree(events);
		if (timeout == 0)
			return;
		elog(ERROR, "distributed execution has nothing to wait for");
	}

	/*
	 * shardexec.node_response_timeout: the wait lasts at most until a
	 * connection it is for has been silent that long in all (only time
	 * blocked here counts, see note_silence).
	 */
	if (ShardexecNodeResponseTimeout > 0)
	{
		for (i = 0; i < nwanted; i++)
		{
			long		left = Max(ShardexecNodeResponseTimeout - wanted[i]->silentMs, 0);

			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		waitStart = GetCurrentTimestamp();
	}

	/* one connection (a router statement): on the set kept with it */
	if (nwanted == 1)
	{
		ConnectionExecution *c = wanted[0];
		uint32		interest = events[0];
		ErrorContextCallback waiting;
		uint32		occurred;

		pfree(wanted);
		pfree(events);
		waiting.callback = waiting_error_context;
		waiting.arg = execution;
		waiting.previous = error_context_stack;
		error_context_stack = &waiting;
		occurred = WaitForNodeConnection(c->claim->connection, interest, timeout);
		error_context_stack = waiting.previous;
		if (ShardexecNodeResponseTimeout > 0)
			note_silence(execution, &c, 1, waitStart, occurred != 0 ? &c : NULL,
						 occurred != 0 ? 1 : 0);
		if (occurred == 0)
			return;
		execution->processing = true;
		serve_connection(execution, c, occurred);
		execution->processing = false;
		return;
	}

	rebuild = execution->waitSet == NULL || nwanted != execution->nwait;
	for (i = 0; i < nwanted && !rebuild; i++)
		rebuild = (wanted[i] != execution->waitConnections[i]);

	if (rebuild)
	{
		if (execution->waitSet != NULL)
			FreeWaitEventSet(execution->waitSet);
		execution->waitSet = NULL;
		execution->nwait = 0;
		execution->waitSet = CreateWaitEventSet(execution->context,
												execution->nconnections + 2);
		AddWaitEventToSet(execution->waitSet, WL_LATCH_SET, PGINVALID_SOCKET,
						  MyLatch, NULL);
		AddWaitEventToSet(execution->waitSet, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET,
						  NULL, NULL);
		for (i = 0; i < nwanted; i++)
		{
			AddWaitEventToSet(execution->waitSet, events[i], PQsocket(wanted[i]->conn),
							  NULL, wanted[i]);
			execution->waitConnections[i] = wanted[i];
			execution->waitEvents[i] = events[i];
		}
		execution->nwait = nwanted;
	}
	else
	{
		for (i = 0; i < nwanted; i++)
		{
			if (events[i] != execution->waitEvents[i])
			{
				ModifyWaitEvent(execution->waitSet, i + 2, events[i], NULL);
				execution->waitEvents[i] = events[i];
			}
		}
	}
	nfired = WaitEventSetWait(execution->waitSet, timeout, execution->firedEvents,
							  execution->nconnections + 2, PG_WAIT_EXTENSION);
	if (ShardexecNodeResponseTimeout > 0)
	{
		ConnectionExecution **ready = palloc(sizeof(ConnectionExecution *) * (nfired + 1));
		int			nready = 0;

		for (i = 0; i < nfired; i++)
		{
			if (execution->firedEvents[i].events & WL_SOCKET_MASK)
				ready[nready++] = (ConnectionExecution *) execution->firedEvents[i].user_data;
		}
		note_silence(execution, wanted, nwanted, waitStart, ready, nready);
		pfree(ready);
	}
	pfree(wanted);
	pfree(events);

	execution->processing = true;
	for (i = 0; i < nfired; i++)
	{
		WaitEvent  *event = &execution->firedEvents[i];
		ConnectionExecution *c;

		if (event->events & WL_LATCH_SET)
		{
			latchSet = true;
			continue;
		}
		c = (ConnectionExecution *) event->user_data;
		if (c != NULL && c->active)
			serve_connection(execution, c, event->events);
	}
	execution->processing = false;

	if (latchSet)
	{
		ErrorContextCallback waiting;

		/* a cancel or statement_timeout names the nodes that did not answer */
		waiting.callback = waiting_error_context;
		waiting.arg = execution;
		waiting.previous = error_context_stack;
		error_context_stack = &waiting;
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		error_context_stack = waiting.previous;
	}
}

/*
 * serve_connection reads what came on c (occurred: its socket's ready
 * events) and sends what it still has to send, then processes its
 * results.
 */
static void
serve_connection(DistributedExecution *execution, ConnectionExecution *c, uint32 occurred)
{
	if ((occurred & WL_SOCKET_READABLE) && !PQconsumeInput(c->conn))
	{
		connection_failed(execution, c, NULL);
		return;
	}
	flush_connection(execution, c);
	process_connection(execution, c);
}

/*
 * note_silence accounts, for shardexec.node_response_timeout, a wait that
 * began at waitStart for the n connections wanted: those in ready (nready)
 * had something (input, or room to send) and start afresh; the others
 * were silent for the whole wait.  A connection silent for the timeout in
 * all is taken for lost: the statement fails, or its units are sent
 * again.  Time not blocked here (the merge, the client between two
 * FETCHes) never counts.
 */
static void
note_silence(DistributedExecution *execution, ConnectionExecution **wanted, int n,
			 TimestampTz waitStart, ConnectionExecution **ready, int nready)
{
	long		waited = TimestampDifferenceMilliseconds(waitStart, GetCurrentTimestamp());
	int			i;
	int			j;

	for (i = 0; i < n; i++)
	{
		ConnectionExecution *c = wanted[i];
		bool		heard = false;

		for (j = 0; j < nready && !heard; j++)
			heard = (ready[j] == c);
		if (heard)
			c->silentMs = 0;
		else
			c->silentMs += waited;
	}
	for (i = 0; i < n; i++)
	{
		ConnectionExecution *c = wanted[i];

		if (c->active && c->silentMs >= ShardexecNodeResponseTimeout)
		{
			c->timedOut = true;
			connection_failed(execution, c, NULL);
			return;
		}
	}
}

/*
 * waiting_error_context adds to an error raised while waiting for the
 * nodes (a cancel, statement_timeout) the names of the nodes that still
 * had work in flight, so that a node that stopped answering is named.
 */
static void
waiting_error_context(void *arg)
{
	DistributedExecution *execution = (DistributedExecution *) arg;
	StringInfoData names;
	int			n = 0;
	int			i;

	initStringInfo(&names);
	for (i = 0; i < execution->nnodes; i++)
	{
		NodeExecution *node = &execution->nodes[i];
		bool		waiting = false;
		int			j;

		for (j = 0; j < node->nconnections; j++)
			waiting |= node->connections[j].active;
		if (!waiting)
			continue;
		appendStringInfo(&names, "%s\"%s\"", n > 0 ? ", " : "", node->nodeName);
		n++;
	}
	if (n == 1)
		errcontext("while waiting for node %s", names.data);
	else if (n > 1)
		errcontext("while waiting for nodes %s", names.data);
}

/*
 * maybe_poll lets connections that fill tuplestores read what has come,
 * every POLL_INTERVAL_ROWS rows, so they move on to their next units
 * while the merge takes rows from elsewhere.
 */
static void
maybe_poll(DistributedExecution *execution)
{
	int			i;

	if (++execution->rowsSincePoll < POLL_INTERVAL_ROWS)
		return;
	execution->rowsSincePoll = 0;
	for (i = 0; i < execution->nconnections; i++)
	{
		ConnectionExecution *c = execution->connections[i];

		if (c->active && c->current < c->nunits && c->units[c->current]->store)
		{
			wait_for_io(execution, 0);
			return;
		}
	}
}

/*
 * DistributedExecutionNextRow stores the next row of the execution in
 * slot and returns true, or clears slot and returns false when every
 * unit is done.  The row stays valid until the next call or the end of
 * the execution.
 */
bool
DistributedExecutionNextRow(DistributedExecution *execution, TupleTableSlot *slot)
{
	MemoryContext oldContext;
	bool		found;

	if (execution->ended || execution->failed)
		return false;
	MemoryContextReset(execution->rowContext);
	oldContext = MemoryContextSwitchTo(execution->rowContext);
	if (execution->nkeys > 0)
		found = next_row_ordered(execution, slot);
	else
		found = next_row_unordered(execution, slot);
	MemoryContextSwitchTo(oldContext);
	if (!found)
		ExecClearTuple(slot);
	return found;
}

/*
 * next_row_unordered returns a row of any unit that has one ready,
 * starting with the unit that gave the last row; when none has one, it
 * waits for input on any connection.
 */
static bool
next_row_unordered(DistributedExecution *execution, TupleTableSlot *slot)
{
	int			start = Max(execution->lastUnit, 0);

	maybe_poll(execution);
	for (;;)
	{
		bool		anyLeft = false;
		int			k;

		for (k = 0; k < execution->nunits; k++)
		{
			int			i = (start + k) % execution->nunits;
			UnitExecution *u = &execution->units[i];

			if (unit_exhausted(u))
				continue;
			if (unit_next_row(execution, u))
			{
				execution->lastUnit = i;
				return_converted_row(execution, slot);
				return true;
			}
			anyLeft |= !unit_exhausted(u);
		}
		if (!anyLeft)
			return false;
		wait_for_io(execution, -1);
	}
}

/*
 * return_converted_row stores execution->values and nulls in slot.
 */
static void
return_converted_row(DistributedExecution *execution, TupleTableSlot *slot)
{
	TupleDesc	tupdesc = execution->tupdesc;
	TupleTableSlot *target = TTS_IS_VIRTUAL(slot) ? slot : execution->virtualSlot;

	ExecClearTuple(target);
	memcpy(target->tts_values, execution->values, sizeof(Datum) * tupdesc->natts);
	memcpy(target->tts_isnull, execution->nulls, sizeof(bool) * tupdesc->natts);
	ExecStoreVirtualTuple(target);
	/* a virtual slot points into rowContext, valid until the next row */
	if (target != slot)
		ExecCopySlot(slot, target);
}

/*
 * ensure_merge_row gives u a current row in its merge slot, waiting for
 * it if needed; false when u has no more rows.
 */
static bool
ensure_merge_row(DistributedExecution *execution, UnitExecution *u)
{
	for (;;)
	{
		if (unit_exhausted(u))
			return false;
		MemoryContextReset(execution->scratchContext);
		{
			MemoryContext oldContext = MemoryContextSwitchTo(execution->scratchContext);
			bool		got = unit_next_row(execution, u);

			MemoryContextSwitchTo(oldContext);
			if (got)
			{
				TupleTableSlot *vslot = execution->virtualSlot;

				ExecClearTuple(vslot);
				memcpy(vslot->tts_values, execution->values,
					   sizeof(Datum) * execution->tupdesc->natts);
				memcpy(vslot->tts_isnull, execution->nulls,
					   sizeof(bool) * execution->tupdesc->natts);
				ExecStoreVirtualTuple(vslot);
				ExecCopySlot(u->mergeSlot, vslot);
				slot_getallattrs(u->mergeSlot);
				MemoryContextReset(execution->scratchContext);
				return true;
			}
		}
		if (unit_exhausted(u))
			return false;
		wait_for_io(execution, -1);
	}
}

/*
 * next_row_ordered returns the smallest current row of all units (k-way
 * merge on a binary heap), after replacing the row it returned last.
 */
static bool
next_row_ordered(DistributedExecution *execution, TupleTableSlot *slot)
{
	binaryheap *heap = execution->heap;
	int			i;

	maybe_poll(execution);
	if (!execution->mergeStarted)
	{
		for (i = 0; i < execution->nunits; i++)
		{
			if (ensure_merge_row(execution, &execution->units[i]))
				binaryheap_add_unordered(heap, Int32GetDatum(i));
		}
		binaryheap_build(heap);
		execution->mergeStarted = true;
	}
	else if (execution->lastUnit >= 0)
	{
		UnitExecution *u = &execution->units[execution->lastUnit];

		if (ensure_merge_row(execution, u))
			binaryheap_replace_first(heap, Int32GetDatum(execution->lastUnit));
		else
			(void) binaryheap_remove_first(heap);
		execution->lastUnit = -1;
	}

	if (binaryheap_empty(heap))
		return false;
	i = DatumGetInt32(binaryheap_first(heap));
	ExecCopySlot(slot, execution->units[i].mergeSlot);
	execution->lastUnit = i;
	return true;
}

/*
 * compare_units orders two units by their current rows for the binary
 * heap, which puts its greatest element first: hence the inversion.  Ties
 * go to the unit listed first, so the order is deterministic.
 */
static int
compare_units(Datum a, Datum b, void *arg)
{
	DistributedExecution *execution = (DistributedExecution *) arg;
	UnitExecution *ua = &execution->units[DatumGetInt32(a)];
	UnitExecution *ub = &execution->units[DatumGetInt32(b)];
	int			k;

	for (k = 0; k < execution->nkeys; k++)
	{
		SortSupport ssup = &execution->sortKeys[k];
		AttrNumber	attno = ssup->ssup_attno;
		int			compare;

		compare = ApplySortComparator(ua->mergeSlot->tts_values[attno - 1],
									  ua->mergeSlot->tts_isnull[attno - 1],
									  ub->mergeSlot->tts_values[attno - 1],
									  ub->mergeSlot->tts_isnull[attno - 1],
									  ssup);
		if (compare != 0)
		{
			INVERT_COMPARE_RESULT(compare);
			return compare;
		}
	}
	return (ua->index < ub->index) ? 1 : (ua->index > ub->index ? -1 : 0);
}

/*
 * connection_receiving says whether c's node has been sending rows for
 * the unit it runs now (so it would notice a closed connection at once).
 */
static bool
connection_receiving(ConnectionExecution *c)
{
	return c->current < c->nunits && c->units[c->current]->rows > 0;
}

/*
 * execution_failed handles the first error of the execution, on unit u
 * of connection c: res, or with res NULL the connection's own error.
 * Every other connection with work in flight is cancelled and drained
 * (bounded), c is drained, and the error is raised with its node and
 * remote SQL.
 */
static void
execution_failed(DistributedExecution *execution, ConnectionExecution *c,
				 UnitExecution *u, PGresult *error)
{
	PGresult   *volatile res = error;
	const char *nodeName = c->node->nodeName;
	const char *sql = u->unit->sql;
	bool		lost;
	char	   *message;

	lost = c->timedOut || PQstatus(c->conn) != CONNECTION_OK ||
		(res != NULL && PQresultErrorField(res, PG_DIAG_SQLSTATE) == NULL);
	message = failure_message(c, res);

	PG_TRY();
	{
		/* keep the message: the connection goes away */
		if (stop_after_failure(execution, c, lost) && res == NULL)
			res = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
	}
	PG_CATCH();
	{
		if (res != NULL)
			PQclear(res);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* plugins (src/plugin/): the execute pipeline sees the failure */
	if (execution->plugin != NULL)
	{
		PG_TRY();
		{
			(void) PluginExecuteFailed(execution->plugin, u->index, u->rows, lost, message,
									   res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL,
									   false);
		}
		PG_CATCH();
		{
			if (res != NULL)
				PQclear(res);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	if (lost)
	{
		if (res != NULL)
			PQclear(res);
		if (c->timedOut)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("node \"%s\" did not answer within %d ms", nodeName,
							ShardexecNodeResponseTimeout),
					 errdetail("Nothing was received from the node for shardexec.node_response_timeout; its connection was closed."),
					 errcontext("remote SQL command on node \"%s\": %s", nodeName, sql)));
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost connection to node \"%s\"", nodeName),
				 errdetail_internal("%s", message),
				 errcontext("remote SQL command on node \"%s\": %s", nodeName, sql)));
	}
	ReportRemoteError(res, c->conn, nodeName, sql);
}

/*
 * failure_message returns what res (or, NULL, conn's own error) says went
 * wrong: a node's message without its severity, or libpq's.
 */
static char *
failure_message(ConnectionExecution *c, PGresult *res)
{
	PGconn	   *conn = c->conn;
	const char *primary = res != NULL ?
		PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (c->timedOut)
		return psprintf("nothing received from the node for %d ms (shardexec.node_response_timeout)",
						ShardexecNodeResponseTimeout);
	if (primary != NULL)
		return pstrdup(primary);
	return pchomp(res != NULL && PQresultErrorMessage(res)[0] != '\0' ?
				  PQresultErrorMessage(res) : PQerrorMessage(conn));
}

/*
 * stop_after_failure stops the execution after a failure on connection c
 * (lost: its session is gone): the work in flight on every other
 * connection is cancelled and drained (bounded), and c is drained, or
 * closed if it is lost or does not come back in time.  Returns whether c
 * was closed.
 */
static bool
stop_after_failure(DistributedExecution *execution, ConnectionExecution *c, bool lost)
{
	NodeConnection **others = palloc(sizeof(NodeConnection *) *
									 Max(execution->nconnections, 1));
	bool	   *receiving = palloc(sizeof(bool) * Max(execution->nconnections, 1));
	int			nothers = 0;
	bool		closed = false;
	int			i;

	execution->failed = true;
	execution->processing = false;
	for (i = 0; i < execution->nconnections; i++)
	{
		ConnectionExecution *other = execution->connections[i];

		if (other == c || !other->active)
			continue;
		if (other->claim->live)
		{
			receiving[nothers] = connection_receiving(other);
			others[nothers++] = other->claim->connection;
		}
		other->active = false;
		SetConnectionClaimBusy(other->claim, false);
	}
	if (nothers > 0)
		AbandonConnectionWork(others, receiving, nothers, true);

	if (c->active)
	{
		c->active = false;
		SetConnectionClaimBusy(c->claim, false);
		if (c->claim->live && c->claim->connection->conn != NULL)
		{
			ParallelCommand drain;

			memset(&drain, 0, sizeof(drain));
			drain.conn = c->conn;
			drain.owner = c->claim->connection;
			drain.nodeName = c->node->nodeName;
			/* a node that is slow rather than gone would go on with it */
			if (c->timedOut)
				CancelRemoteQuery(c->conn);
			if (lost || !CleanUpConnections(&drain, 1, ConnectionCleanupTimeout()))
			{
				DiscardNodeConnection(c->claim->connection);
				closed = true;
			}
		}
	}
	pfree(others);
	pfree(receiving);
	return closed;
}

/*
 * connection_failed handles an error on c while its current unit runs:
 * res (the caller's, freed here), or with res NULL the connection's own
 * error.  The units of a lost connection are sent again on another one
 * when that is safe and a plugin asks for it (retry_connection); else the
 * statement fails.
 */
static void
connection_failed(DistributedExecution *execution, ConnectionExecution *c, PGresult *res)
{
	if (retry_connection(execution, c, res))
		return;
	execution_failed(execution, c, c->units[Min(c->current, c->nunits - 1)], res);
}

/*
 * session_lost says whether c's session on the node is gone: the
 * connection broke, or the node ended the session (res carries a
 * connection exception, or the node is shutting down or crashed).
 */
static bool
session_lost(ConnectionExecution *c, PGresult *res)
{
	const char *sqlstate;

	if (c->timedOut || PQstatus(c->conn) != CONNECTION_OK)
		return true;
	if (res == NULL)
		return false;
	sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return sqlstate == NULL || strncmp(sqlstate, "08", 2) == 0 ||
		strcmp(sqlstate, "57P01") == 0 || strcmp(sqlstate, "57P02") == 0 ||
		strcmp(sqlstate, "57P03") == 0;
}

/*
 * retry_connection sends c's unfinished units again on a new connection
 * to the same node, after c's session was lost, and returns true; or
 * returns false, changing nothing, when that is not safe or no plugin
 * asks for it (execute_end with retryable set, see plugin_api.h).
 *
 * Safe means nothing is lost or repeated: the statement only reads,
 * outside a transaction block (so no other statement's work was in c's
 * remote transaction, and nothing of it needs undoing); the connection
 * wrote nothing in this transaction, and kept no snapshot other
 * statements rely on; and no row of an unfinished unit has been handed to
 * the merge (those received are dropped, and come again).  Units the
 * connection finished keep their rows.  The new connection is claimed
 * like the first (through the connect pipeline: failover finds the
 * node's new primary there); the other connections go on meanwhile.
 */
static bool
retry_connection(DistributedExecution *execution, ConnectionExecution *c, PGresult *res)
{
	NodeConnection *connection = c->claim->connection;
	NodeExecution *node = c->node;
	MemoryContext oldContext = CurrentMemoryContext;
	volatile bool retry = false;
	int			i;

	if (execution->plugin == NULL || !execution->readOnly || IsTransactionBlock() ||
		!c->active || !c->claim->live || c->current >= c->nunits ||
		c->retries >= MAX_CONNECTION_RETRIES || connection->modified ||
		(connection->xactDepth > 0 && IsolationUsesXactSnapshot()) ||
		!session_lost(c, res))
		return false;
	for (i = c->current; i < c->nunits; i++)
	{
		if (c->units[i]->delivered > 0)
			return false;
	}

	PG_TRY();
	{
		retry = plugins_retry(execution, c, res);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* a plugin's own error (failover's, retries used up): stop first */
		MemoryContextSwitchTo(oldContext);
		edata = CopyErrorData();
		FlushErrorState();
		if (res != NULL)
			PQclear(res);
		(void) stop_after_failure(execution, c, true);
		ReThrowError(edata);
	}
	PG_END_TRY();
	if (!retry)
		return false;
	if (res != NULL)
		PQclear(res);

	/* forget the lost session and what its unfinished units received */
	SetConnectionClaimBusy(c->claim, false);
	if (c->timedOut)
		CancelRemoteQuery(connection->conn);
	DiscardNodeConnection(connection);
	ReleaseConnectionClaim(c->claim);
	c->conn = NULL;
	c->flushing = false;
	c->pipeline = false;
	for (i = c->current; i < c->nunits; i++)
	{
		UnitExecution *u = c->units[i];

		u->status = UNIT_QUEUED;
		if (u->head != NULL)
		{
			PQclear(u->head);
			u->head = NULL;
		}
		if (u->tuplestore != NULL)
			tuplestore_clear(u->tuplestore);
		u->stored = u->fetched = 0;
		node->rows -= u->rows;
		u->rows = 0;
		u->affected = 0;
	}
	/* the set must not wait on the closed socket */
	if (execution->waitSet != NULL)
	{
		FreeWaitEventSet(execution->waitSet);
		execution->waitSet = NULL;
		execution->nwait = 0;
	}

	reclaim_connection(execution, c);
	c->retries++;
	start_connection(execution, c);
	return true;
}

/*
 * plugins_retry runs execute_end for c's unfinished units, which lost
 * their connection (res: the error, or NULL), and returns whether the
 * plugins of the current unit ask for it to be sent again; the attempts
 * of the units queued after it end too.
 */
static bool
plugins_retry(DistributedExecution *execution, ConnectionExecution *c, PGresult *res)
{
	UnitExecution *u = c->units[c->current];
	const char *sqlstate = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char	   *message;
	int			i;

	message = failure_message(c, res);
	if (!PluginExecuteFailed(execution->plugin, u->index, u->rows, true,
							 message, sqlstate, true))
		return false;
	for (i = c->current + 1; i < c->nunits; i++)
		(void) PluginExecuteFailed(execution->plugin, c->units[i]->index,
								   c->units[i]->rows, true, message, sqlstate, true);
	ereport(LOG,
			(errmsg("shardexec: sending %d shard quer%s again to node \"%s\" after losing the connection",
					c->nunits - c->current, c->nunits - c->current == 1 ? "y" : "ies",
					c->node->nodeName),
			 errdetail_internal("%s", message)));
	return true;
}

/*
 * reclaim_connection claims a new connection for c, the way the first
 * was claimed.
 */
static void
reclaim_connection(DistributedExecution *execution, ConnectionExecution *c)
{
	ConnectionRequest *request = palloc0(sizeof(ConnectionRequest));
	List	   *requests = list_make1(request);

	request->node = &c->node->node;
	request->count = 1;
	request->claims = c->claim;
	ShardexecReadWithoutRemoteTransaction = execution->autocommit;
	PluginRouteConnections(execution->plugin);
	PG_TRY();
	{
		ClaimNodeConnections(requests, finish_connection_work, execution);
	}
	PG_CATCH();
	{
		PluginRouteConnections(NULL);
		ShardexecReadWithoutRemoteTransaction = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	PluginRouteConnections(NULL);
	ShardexecReadWithoutRemoteTransaction = false;
}

/*
 * finish_connection_work is the ConnectionFinishCallback of the
 * execution's claims: another statement needs connection, so every unit
 * still to come on it is read whole into its tuplestore (a streamed
 * unit's rows too, after the row it holds), and the claim becomes idle.
 */
static void
finish_connection_work(void *arg, NodeConnection *connection)
{
	DistributedExecution *execution = (DistributedExecution *) arg;
	ConnectionExecution *c = NULL;
	MemoryContext oldContext;
	int			i;

	for (i = 0; i < execution->nconnections && c == NULL; i++)
	{
		if (execution->connections[i]->claim->connection == connection &&
			execution->connections[i]->claim->live)
			c = execution->connections[i];
	}
	if (c == NULL)
		return;
	if (!c->active)
	{
		SetConnectionClaimBusy(c->claim, false);
		return;
	}
	if (execution->processing)
		elog(ERROR, "connection to node \"%s\" is needed while its results are being read",
			 connection->nodeName);

	elog(DEBUG1, "shardexec: reading the rest of %d shard queries on node \"%s\" into memory to free their connection",
		 c->nunits - c->current, connection->nodeName);
	oldContext = MemoryContextSwitchTo(execution->context);
	for (i = c->current; i < c->nunits; i++)
		ensure_store(execution, c->units[i]);

	while (c->active)
	{
		pgsocket	sock;
		uint32		events;
		uint32		occurred;

		flush_connection(execution, c);
		process_connection(execution, c);
		if (!c->active)
			break;
		sock = PQsocket(c->conn);
		events = c->flushing ? (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE) :
			WL_SOCKET_READABLE;
		if (WaitForSockets(1, &sock, &events, &occurred, -1) > 0 &&
			(occurred & WL_SOCKET_READABLE) && !PQconsumeInput(c->conn))
			execution_failed(execution, c, c->units[Min(c->current, c->nunits - 1)], NULL);
	}
	MemoryContextSwitchTo(oldContext);
}

/*
 * DistributedExecutionRowsAffected returns the sum of the units' command
 * tuple counts (rows inserted, updated, deleted or selected), once
 * DistributedExecutionNextRow has returned false.
 */
uint64
DistributedExecutionRowsAffected(DistributedExecution *execution)
{
	uint64		total = 0;
	int			i;

	for (i = 0; i < execution->nunits; i++)
		total += execution->units[i].affected;
	return total;
}

/*
 * EndDistributedExecution ends the execution and frees it.  Work still in
 * flight (the caller stopped early) is abandoned: cancelled when that
 * loses nothing, else read and discarded (AbandonConnectionWork).  The
 * connections are released for reuse.
 */
void
EndDistributedExecution(DistributedExecution *execution)
{
	NodeConnection **busy;
	bool	   *receiving;
	int			nbusy = 0;
	int			i;

	if (execution->ended)
		return;

	busy = palloc(sizeof(NodeConnection *) * Max(execution->nconnections, 1));
	receiving = palloc(sizeof(bool) * Max(execution->nconnections, 1));
	for (i = 0; i < execution->nconnections; i++)
	{
		ConnectionExecution *c = execution->connections[i];

		if (!c->active)
			continue;
		c->active = false;
		if (c->claim->live && c->claim->connection->conn != NULL)
		{
			SetConnectionClaimBusy(c->claim, false);
			receiving[nbusy] = connection_receiving(c);
			busy[nbusy++] = c->claim->connection;
		}
	}
	if (nbusy > 0 && !execution->failed)
		AbandonConnectionWork(busy, receiving, nbusy, false);
	pfree(busy);
	pfree(receiving);

	for (i = 0; i < execution->nunits; i++)
	{
		UnitExecution *u = &execution->units[i];

		if (u->tuplestore != NULL)
		{
			tuplestore_end(u->tuplestore);
			u->tuplestore = NULL;
		}
	}
	release_execution(execution);
	execution->ended = true;
	MemoryContextDelete(execution->context);
}

/*
 * release_execution releases what the execution holds outside its
 * memory: claims, libpq results and the WaitEventSet.
 *
 * Work may still be in flight when the execution's memory goes away
 * without EndDistributedExecution.  In an aborting (sub)transaction,
 * whose portals lose their executor memory before the transaction
 * callbacks run, that is left to connection.c's abort callback, which
 * cancels, drains and rolls back every connection with work in flight.
 * Otherwise (the transaction goes on) the query is cancelled and the
 * connection, in an unknown state, closed.
 */
static void
release_execution(DistributedExecution *execution)
{
	int			i;

	for (i = 0; i < execution->nconnections; i++)
	{
		ConnectionExecution *c = execution->connections[i];

		if (c->claim->live)
		{
			NodeConnection *connection = c->claim->connection;

			if (c->active && connection->busyClaim == c->claim &&
				connection->conn != NULL && IsTransactionState())
			{
				CancelRemoteQuery(connection->conn);
				DiscardNodeConnection(connection);
			}
			c->active = false;
			ReleaseConnectionClaim(c->claim);
		}
	}
	for (i = 0; i < execution->nunits; i++)
	{
		if (execution->units[i].head != NULL)
		{
			PQclear(execution->units[i].head);
			execution->units[i].head = NULL;
		}
	}
	if (execution->waitSet != NULL)
	{
		FreeWaitEventSet(execution->waitSet);
		execution->waitSet = NULL;
	}
}

static void
execution_reset_callback(void *arg)
{
	DistributedExecution *execution = (DistributedExecution *) arg;

	if (!execution->ended)
	{
		execution->ended = true;
		release_execution(execution);
	}
}

/*
 * ExplainDistributedExecution shows, per node, the connection mode, the
 * connections and units, and (EXPLAIN ANALYZE) the rows received and the
 * time from sending the units to the last result.
 */
void
ExplainDistributedExecution(DistributedExecution *execution, ExplainState *es)
{
	int			i;

	if (execution == NULL)
		return;

	ExplainOpenGroup("Nodes", "Nodes", false, es);
	for (i = 0; i < execution->nnodes; i++)
	{
		NodeExecution *node = &execution->nodes[i];
		const char *mode = node->connectionStrict ? "connection-strict" : "memory-strict";
		double		ms = 0.0;

		if (node->started)
		{
			instr_time	end;

			if (node->finished)
				end = node->endTime;
			else
				INSTR_TIME_SET_CURRENT(end);
			INSTR_TIME_SUBTRACT(end, node->startTime);
			ms = INSTR_TIME_GET_MILLISEC(end);
		}

		if (es->format == EXPLAIN_FORMAT_TEXT)
		{
			appendStringInfoSpaces(es->str, es->indent * 2);
			appendStringInfo(es->str, "Node %s: %s, %d connection%s, %d unit%s",
							 node->nodeName, mode,
							 node->nconnections, node->nconnections == 1 ? "" : "s",
							 node->nunits, node->nunits == 1 ? "" : "s");
			if (es->analyze)
			{
				appendStringInfo(es->str, ", rows=" UINT64_FORMAT, node->rows);
				if (es->timing)
					appendStringInfo(es->str, ", time=%.3f ms", ms);
			}
			appendStringInfoChar(es->str, '\n');
		}
		else
		{
			ExplainOpenGroup("Node", NULL, true, es);
			ExplainPropertyText("Node Name", node->nodeName, es);
			ExplainPropertyText("Mode", mode, es);
			ExplainPropertyInteger("Connections", NULL, node->nconnections, es);
			ExplainPropertyInteger("Units", NULL, node->nunits, es);
			if (es->analyze)
			{
				ExplainPropertyUInteger("Rows", NULL, node->rows, es);
				if (es->timing)
					ExplainPropertyFloat("Time", "ms", ms, 3, es);
			}
			ExplainCloseGroup("Node", NULL, true, es);
		}
	}
	ExplainCloseGroup("Nodes", "Nodes", false, es);
}
