/*-------------------------------------------------------------------------
 *
 * builtin_fault_injection.c
 *		  The fault_injection plugin, for tests.
 *
 * shardexec.inject_fault(node_name, pipeline, count) asks that the next
 * count calls of pipeline (connect, force_connect or execute) on node
 * node_name in this backend fail; count 0 takes the request back.  With
 * fault_injection in shardexec.plugins:
 *
 *	 connect		the connection is refused as if the node did not
 *					answer: the plugin returns no connection (without
 *					calling the next plugin), so the plugins outside it
 *					(failover, execution_time) see a connection failure;
 *	 force_connect	the same, for fresh connections outside the pool;
 *	 execute		the unit fails before it is sent, with an error.
 *
 * Its default weight is the highest of the built-in plugins, so it runs
 * innermost, where a real failure would happen.  Requests are kept per
 * backend and survive changes of the plugin chain.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/hsearch.h"

#include "shardexec/metadata.h"
#include "shardexec/plugin.h"

PG_FUNCTION_INFO_V1(shardexec_fault_injection_handler);
PG_FUNCTION_INFO_V1(shardexec_inject_fault);

typedef struct FaultKey
{
	char		nodeName[NAMEDATALEN];
	char		pipeline[32];
} FaultKey;

typedef struct Fault
{
	FaultKey	key;			/* hash key, must be first */
	int			remaining;
} Fault;

static HTAB *faults = NULL;

/*
 * take_fault says whether a fault was asked for on nodeName in pipeline,
 * and counts it.
 */
static bool
take_fault(const char *nodeName, const char *pipeline)
{
	FaultKey	key;
	Fault	   *fault;

	if (faults == NULL)
		return false;
	memset(&key, 0, sizeof(key));
	strlcpy(key.nodeName, nodeName, sizeof(key.nodeName));
	strlcpy(key.pipeline, pipeline, sizeof(key.pipeline));
	fault = hash_search(faults, &key, HASH_FIND, NULL);
	if (fault == NULL || fault->remaining <= 0)
		return false;
	if (--fault->remaining == 0)
		hash_search(faults, &key, HASH_REMOVE, NULL);
	return true;
}

/*
 * fault_connect refuses the connection when a connect fault was asked for
 * on its node, as if the node did not answer.
 */
static PGconn *
fault_connect(ShardexecPlugin *self, ShardexecConnectInfo *info, ShardexecConnectChain *chain)
{
	if (!info->forced && take_fault(info->node_name, "connect"))
	{
		info->error = psprintf("fault injected by plugin \"%s\" for connect on node \"%s\"",
							   self->name, info->node_name);
		return NULL;
	}
	return chain->next(chain, info);
}

/*
 * fault_force_connect does the same for a force_connect fault.
 */
static PGconn *
fault_force_connect(ShardexecPlugin *self, ShardexecConnectInfo *info,
					ShardexecConnectChain *chain)
{
	if (take_fault(info->node_name, "force_connect"))
	{
		info->error = psprintf("fault injected by plugin \"%s\" for force_connect on node \"%s\"",
							   self->name, info->node_name);
		return NULL;
	}
	return chain->next(chain, info);
}

/*
 * fault_execute_begin fails the unit when an execute fault was asked for
 * on its node.
 */
static void
fault_execute_begin(ShardexecPlugin *self, ShardexecUnitInfo *unit)
{
	if (take_fault(unit->node_name, "execute"))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("fault injected for execute on node \"%s\"", unit->node_name),
				 errdetail("shardexec.inject_fault() asked for this unit to fail.")));
}

static const ShardexecPluginRoutine fault_injection_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "for tests: makes the next connect or execute on a chosen node fail (shardexec.inject_fault)",
	.default_weight = 1000,
	.connect = fault_connect,
	.force_connect = fault_force_connect,
	.execute_begin = fault_execute_begin,
};

/*
 * shardexec_fault_injection_handler is the handler of the fault_injection
 * plugin.
 */
Datum
shardexec_fault_injection_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&fault_injection_routine);
}

/*
 * shardexec_inject_fault implements shardexec.inject_fault(node_name,
 * pipeline, count).
 */
Datum
shardexec_inject_fault(PG_FUNCTION_ARGS)
{
	char	   *nodeName = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *pipeline = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			count = PG_GETARG_INT32(2);
	FaultKey	key;
	Fault	   *fault;

	(void) LookupNodeByName(nodeName, false);
	if (strcmp(pipeline, "connect") != 0 && strcmp(pipeline, "force_connect") != 0 &&
		strcmp(pipeline, "execute") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot inject a fault into pipeline \"%s\"", pipeline),
				 errhint("Faults can be injected into connect, force_connect and execute.")));
	if (count < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("count must not be negative")));
	if (faults == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(FaultKey);
		ctl.entrysize = sizeof(Fault);
		faults = hash_create("shardexec faults", 8, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	memset(&key, 0, sizeof(key));
	strlcpy(key.nodeName, nodeName, sizeof(key.nodeName));
	strlcpy(key.pipeline, pipeline, sizeof(key.pipeline));
	if (count == 0)
		hash_search(faults, &key, HASH_REMOVE, NULL);
	else
	{
		fault = hash_search(faults, &key, HASH_ENTER, NULL);
		fault->remaining = count;
	}
	PG_RETURN_VOID();
}
