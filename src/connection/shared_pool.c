/*-------------------------------------------------------------------------
 *
 * shared_pool.c
 *		  The count of connections to each node across all backends, in
 *		  shared memory, and the cap on it (shardexec.max_shared_pool_size).
 *
 * Every connection a backend keeps in its pool (connection.c) holds one
 * "slot" of its node: a count in a shared hash table keyed by (database
 * of the coordinator, foreign server of the node).  A slot is reserved
 * before the connection is opened and released when it is closed, so the
 * count is the number of connections that exist or are being opened.
 * With shardexec.max_shared_pool_size = N > 0, a reservation that would
 * take the count of a node above N fails; SharedPoolReserve tries without
 * waiting (the extra connections of a statement: the executor then runs
 * connection-strict with what it got), SharedPoolReserveAll waits, up to
 * shardexec.pool_wait_timeout, for one slot on each of several nodes and
 * takes all of them at once or none (the first connection of a statement
 * to each node), so a statement never waits holding slots it reserved for
 * itself.  Waiters sleep on one condition variable, which every release
 * broadcasts to while someone waits.
 *
 * A backend remembers the slots it holds per node and the nodes it waits
 * for; a before_shmem_exit callback gives them back when it exits,
 * whether it ends normally or with FATAL (which skips PG_FINALLY).  After a crash of a backend the postmaster reinitializes
 * shared memory, and with it the counts.
 *
 * The cap is read from each backend's own setting (PGC_SIGHUP, so the
 * same everywhere once the reload has reached every backend).  Lowering
 * it does not close connections: backends shrink to the cap as their
 * transactions end (connection.c keeps no idle connection to a node at
 * its cap).
 *
 * One LWLock protects the hash table.  Entries are removed when their
 * count and waiters drop to zero, so the table holds only the nodes in
 * use; it has room for SHARED_POOL_MAX_NODES of them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "shardexec/connection.h"
#include "shardexec/metadata.h"
#include "shardexec/shardexec.h"

/* nodes (database, server pairs) the shared table has room for */
#define SHARED_POOL_MAX_NODES 1024

#define SHARED_POOL_TRANCHE "shardexec_shared_pool"

typedef struct SharedPoolKey
{
	Oid			databaseId;
	Oid			serverId;
} SharedPoolKey;

typedef struct SharedPoolEntry
{
	SharedPoolKey key;			/* hash key, must be first */
	int			connections;	/* slots held by every backend */
	int			waiting;		/* backends waiting for a slot */
} SharedPoolEntry;

typedef struct SharedPoolState
{
	LWLock	   *lock;
	ConditionVariable released; /* broadcast when a slot is released */
	int			waiting;		/* backends waiting, all nodes */
} SharedPoolState;

/* slots this backend holds, per server */
typedef struct LocalSlots
{
	Oid			serverId;		/* hash key */
	int			count;
} LocalSlots;

static SharedPoolState *poolState = NULL;
static HTAB *poolHash = NULL;
static HTAB *localSlots = NULL;
static bool exitCallbackRegistered = false;

/*
 * The servers this backend is marked as waiting for, so that an exit in
 * the middle of a wait (FATAL skips PG_FINALLY) takes the marks away.
 */
static Oid *waitingFor = NULL;
static int	nwaitingFor = 0;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void shared_pool_shmem_request(void);
static void shared_pool_shmem_startup(void);
static Size shared_pool_size(void);
static SharedPoolEntry *find_entry(Oid serverId, bool create);
static void note_local_slots(Oid serverId, int delta);
static void shared_pool_exit(int code, Datum arg);
static void stop_waiting(void);

PG_FUNCTION_INFO_V1(shardexec_shared_connection_counts);

/*
 * InitSharedPool asks for the shared memory of the counts.  Called once
 * from _PG_init, in the postmaster.
 */
void
InitSharedPool(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shared_pool_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shared_pool_shmem_startup;
}

static Size
shared_pool_size(void)
{
	return add_size(MAXALIGN(sizeof(SharedPoolState)),
					hash_estimate_size(SHARED_POOL_MAX_NODES, sizeof(SharedPoolEntry)));
}

static void
shared_pool_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_pool_size());
	RequestNamedLWLockTranche(SHARED_POOL_TRANCHE, 1);
}

static void
shared_pool_shmem_startup(void)
{
	HASHCTL		ctl;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	poolState = ShmemInitStruct("shardexec shared pool", sizeof(SharedPoolState), &found);
	if (!found)
	{
		poolState->lock = &(GetNamedLWLockTranche(SHARED_POOL_TRANCHE))->lock;
		ConditionVariableInit(&poolState->released);
		poolState->waiting = 0;
	}
	ctl.keysize = sizeof(SharedPoolKey);
	ctl.entrysize = sizeof(SharedPoolEntry);
	poolHash = ShmemInitHash("shardexec shared pool counts",
							 SHARED_POOL_MAX_NODES, SHARED_POOL_MAX_NODES,
							 &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * find_entry returns the shared entry of serverId in the current
 * database, creating it if create (an error when the table is full), or
 * NULL.  The caller holds the lock, exclusively to create.
 */
static SharedPoolEntry *
find_entry(Oid serverId, bool create)
{
	SharedPoolKey key;
	SharedPoolEntry *entry;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.databaseId = MyDatabaseId;
	key.serverId = serverId;
	entry = hash_search(poolHash, &key, create ? HASH_ENTER_NULL : HASH_FIND, &found);
	if (entry == NULL)
	{
		if (create)
		{
			LWLockRelease(poolState->lock);
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("shardexec shared connection table is full"),
					 errdetail("It has room for %d nodes over all databases.",
							   SHARED_POOL_MAX_NODES)));
		}
		return NULL;
	}
	if (!found)
	{
		entry->connections = 0;
		entry->waiting = 0;
	}
	return entry;
}

/*
 * remove_if_unused drops entry when nothing refers to it.  The caller
 * holds the lock exclusively.
 */
static void
remove_if_unused(SharedPoolEntry *entry)
{
	if (entry->connections <= 0 && entry->waiting <= 0)
		hash_search(poolHash, &entry->key, HASH_REMOVE, NULL);
}

/*
 * note_local_slots keeps this backend's own count of the slots it holds
 * on serverId, for the exit callback.
 */
static void
note_local_slots(Oid serverId, int delta)
{
	LocalSlots *slots;
	bool		found;

	if (localSlots == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(LocalSlots);
		ctl.hcxt = TopMemoryContext;
		localSlots = hash_create("shardexec local pool slots", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (!exitCallbackRegistered)
	{
		before_shmem_exit(shared_pool_exit, (Datum) 0);
		exitCallbackRegistered = true;
	}
	slots = hash_search(localSlots, &serverId, HASH_ENTER, &found);
	if (!found)
		slots->count = 0;
	slots->count += delta;
}

/*
 * cap returns the cap in force, or INT_MAX for none.
 */
static int
cap(void)
{
	return ShardexecMaxSharedPoolSize > 0 ? ShardexecMaxSharedPoolSize : INT_MAX;
}

/*
 * SharedPoolReserve reserves up to wanted slots of serverId without
 * waiting and returns how many it got (all of them when there is no
 * cap).
 */
int
SharedPoolReserve(Oid serverId, int wanted)
{
	SharedPoolEntry *entry;
	int			granted;

	if (wanted <= 0)
		return 0;
	Assert(poolState != NULL);
	LWLockAcquire(poolState->lock, LW_EXCLUSIVE);
	entry = find_entry(serverId, true);
	granted = Min(wanted, Max(cap() - entry->connections, 0));
	entry->connections += granted;
	remove_if_unused(entry);
	LWLockRelease(poolState->lock);
	if (granted > 0)
		note_local_slots(serverId, granted);
	return granted;
}

/*
 * SharedPoolReserveAll reserves counts[i] slots of serverIds[i] for every
 * i < n, all at once: it waits (up to timeoutMs, -1 for no limit) until
 * every node has room, then takes them all.  Returns false, having
 * reserved nothing, when the time is up.  Interrupts are processed while
 * waiting.  A server may appear only once.
 */
bool
SharedPoolReserveAll(int n, const Oid *serverIds, const int *counts, long timeoutMs)
{
	volatile TimestampTz deadline = 0;
	volatile bool waiting = false;
	volatile bool done = false;
	int			i;

	if (n == 0)
		return true;
	Assert(poolState != NULL);
	if (waitingFor == NULL)
		waitingFor = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * SHARED_POOL_MAX_NODES);
	if (n > SHARED_POOL_MAX_NODES)
		elog(ERROR, "too many nodes to wait for");
	if (!exitCallbackRegistered)
	{
		before_shmem_exit(shared_pool_exit, (Datum) 0);
		exitCallbackRegistered = true;
	}
	if (timeoutMs > 0)
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeoutMs);

	PG_TRY();
	{
		for (;;)
		{
			bool		room = true;
			long		remaining = -1;

			LWLockAcquire(poolState->lock, LW_EXCLUSIVE);
			for (i = 0; i < n && room; i++)
			{
				SharedPoolEntry *entry = find_entry(serverIds[i], true);

				room = (entry->connections + counts[i] <= cap());
			}
			if (room)
			{
				for (i = 0; i < n; i++)
				{
					SharedPoolEntry *entry = find_entry(serverIds[i], true);

					entry->connections += counts[i];
					if (waiting)
						entry->waiting--;
				}
				if (waiting)
					poolState->waiting--;
				waiting = false;
				nwaitingFor = 0;
				done = true;
			}
			else if (!waiting && timeoutMs != 0)
			{
				for (i = 0; i < n; i++)
					find_entry(serverIds[i], true)->waiting++;
				poolState->waiting++;
				waiting = true;
				memcpy(waitingFor, serverIds, sizeof(Oid) * n);
				nwaitingFor = n;
			}
			LWLockRelease(poolState->lock);
			if (done)
				break;

			if (timeoutMs > 0)
			{
				remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
				if (remaining <= 0)
					break;
			}
			else if (timeoutMs == 0)
				break;
			/* a release may have come before we slept: wake at least often */
			(void) ConditionVariableTimedSleep(&poolState->released,
											   remaining < 0 ? 1000 : Min(remaining, 1000),
											   PG_WAIT_EXTENSION);
		}
	}
	PG_FINALLY();
	{
		ConditionVariableCancelSleep();
		if (waiting)
			stop_waiting();
	}
	PG_END_TRY();

	if (done)
	{
		for (i = 0; i < n; i++)
			note_local_slots(serverIds[i], counts[i]);
	}
	return done;
}

/*
 * stop_waiting takes this backend's waiting marks away.  It never throws.
 */
static void
stop_waiting(void)
{
	int			i;

	if (nwaitingFor == 0)
		return;
	LWLockAcquire(poolState->lock, LW_EXCLUSIVE);
	for (i = 0; i < nwaitingFor; i++)
	{
		SharedPoolEntry *entry = find_entry(waitingFor[i], false);

		if (entry != NULL)
		{
			entry->waiting--;
			remove_if_unused(entry);
		}
	}
	poolState->waiting--;
	LWLockRelease(poolState->lock);
	nwaitingFor = 0;
}

/*
 * SharedPoolRelease gives back count slots of serverId and wakes the
 * backends that wait for slots.  It never throws.
 */
void
SharedPoolRelease(Oid serverId, int count)
{
	SharedPoolEntry *entry;
	bool		wake;

	if (count <= 0 || poolState == NULL)
		return;
	LWLockAcquire(poolState->lock, LW_EXCLUSIVE);
	entry = find_entry(serverId, false);
	if (entry != NULL)
	{
		entry->connections = Max(entry->connections - count, 0);
		remove_if_unused(entry);
	}
	wake = poolState->waiting > 0;
	LWLockRelease(poolState->lock);
	if (localSlots != NULL)
	{
		LocalSlots *slots = hash_search(localSlots, &serverId, HASH_FIND, NULL);

		if (slots != NULL)
			slots->count -= count;
	}
	if (wake)
		ConditionVariableBroadcast(&poolState->released);
}

/*
 * SharedPoolAtCap says whether serverId is at (or above) the cap, or has
 * backends waiting for a slot: then a backend should not keep idle
 * connections to it.
 */
bool
SharedPoolAtCap(Oid serverId)
{
	SharedPoolEntry *entry;
	bool		result = false;

	if (ShardexecMaxSharedPoolSize <= 0 || poolState == NULL)
		return false;
	LWLockAcquire(poolState->lock, LW_SHARED);
	entry = find_entry(serverId, false);
	if (entry != NULL)
		result = entry->connections >= cap() || entry->waiting > 0;
	LWLockRelease(poolState->lock);
	return result;
}

/*
 * SharedPoolCount returns the number of slots of serverId held by every
 * backend of the current database.
 */
int
SharedPoolCount(Oid serverId)
{
	SharedPoolEntry *entry;
	int			result = 0;

	if (poolState == NULL)
		return 0;
	LWLockAcquire(poolState->lock, LW_SHARED);
	entry = find_entry(serverId, false);
	if (entry != NULL)
		result = entry->connections;
	LWLockRelease(poolState->lock);
	return result;
}

/*
 * shared_pool_exit gives back every slot the backend still holds, and its
 * waiting marks.
 */
static void
shared_pool_exit(int code, Datum arg)
{
	HASH_SEQ_STATUS scan;
	LocalSlots *slots;

	/* an exit in the middle of a wait may hold the lock */
	LWLockReleaseAll();
	stop_waiting();
	if (localSlots == NULL)
		return;
	hash_seq_init(&scan, localSlots);
	while ((slots = hash_seq_search(&scan)) != NULL)
	{
		if (slots->count > 0)
			SharedPoolRelease(slots->serverId, slots->count);
	}
}

/*
 * shardexec_shared_connection_counts returns, for every node, the number
 * of connections all backends of this database hold to it and the cap
 * (NULL when there is none).
 */
Datum
shardexec_shared_connection_counts(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	foreach(lc, ShardexecNodeList())
	{
		ShardexecNode *node = lfirst(lc);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetDatum(node->nodeName);
		values[0] = DirectFunctionCall1(namein, values[0]);
		values[1] = Int32GetDatum(SharedPoolCount(node->serverId));
		if (ShardexecMaxSharedPoolSize > 0)
			values[2] = Int32GetDatum(ShardexecMaxSharedPoolSize);
		else
			nulls[2] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
