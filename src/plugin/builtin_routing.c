/*-------------------------------------------------------------------------
 *
 * builtin_routing.c
 *		  The read_write_splitting and host_selection plugins.
 *
 * read_write_splitting (execute pipeline, once per statement) sends a
 * statement to the nodes' replicas when it only reads (no unit writes or
 * locks rows) and it is not inside an explicit read-write transaction:
 * outside a transaction block, or in one that is READ ONLY (but not
 * SERIALIZABLE, which a standby refuses).  Inside a read-write
 * transaction block everything goes to the primary, so the transaction
 * reads its own writes.  The replica of each connection is
 * chosen with the strategy of the option "strategy" (default: the first
 * replica that is up); a node with no replica up is read on its primary.
 * It needs a host list provider (static_hosts or topology) to know the
 * replicas.  Replicas lag: a read routed to them may not see a write that
 * just committed.
 *
 * host_selection (accepts_strategy, get_host_by_strategy) chooses among
 * the hosts of the wanted role that are up:
 *	 random				uniformly;
 *	 round_robin		in turn, per node, a host with weight w getting w
 *						turns in a row; weights come from the option
 *						"weights", {"host:port": w, ...} (default 1);
 *	 least_connections	the host this backend holds the fewest
 *						connections to (its pool's counts);
 *	 fastest_response	the host with the smallest moving average of
 *						connect times in this backend; a host never
 *						measured goes first, so that every host is measured.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/pg_prng.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "shardexec/plugin.h"

PG_FUNCTION_INFO_V1(shardexec_read_write_splitting_handler);
PG_FUNCTION_INFO_V1(shardexec_host_selection_handler);

/* ----------------------------------------------------------------
 * read_write_splitting
 * ----------------------------------------------------------------
 */

static const char *const rws_keys[] = {"strategy", NULL};

/*
 * rws_validate is the options validator of read_write_splitting.
 */
static void
rws_validate(Jsonb *options)
{
	char	   *strategy;

	PluginCheckOptionKeys(options, "read_write_splitting", rws_keys);
	strategy = PluginOptionString(options, "strategy");
	if (strategy != NULL && strategy[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("strategy must not be empty")));
}

/*
 * rws_init returns the strategy option (or NULL) as private data.
 */
static void *
rws_init(const char *pluginName, Jsonb *options)
{
	return PluginOptionString(options, "strategy");
}

/*
 * rws_execute_statement sends a statement that only reads, outside a
 * read-write transaction, to the replicas.
 */
static void
rws_execute_statement(ShardexecPlugin *self, ShardexecStatementInfo *statement)
{
	if (!statement->read_only)
		return;
	if (statement->in_transaction_block &&
		(!statement->transaction_read_only || XactIsoLevel == XACT_SERIALIZABLE))
		return;
	statement->use_replicas = true;
	statement->reader_strategy = (const char *) self->private_data;
}

static const ShardexecPluginRoutine rws_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "sends read-only statements outside read-write transactions to replicas",
	.default_weight = 100,
	.validate_options = rws_validate,
	.init = rws_init,
	.execute_statement = rws_execute_statement,
};

/*
 * shardexec_read_write_splitting_handler is the handler of the
 * read_write_splitting plugin.
 */
Datum
shardexec_read_write_splitting_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&rws_routine);
}

/* ----------------------------------------------------------------
 * host_selection
 * ----------------------------------------------------------------
 */

static const char *const strategies[] = {"random", "round_robin", "least_connections",
"fastest_response", NULL};

static const char *const host_selection_keys[] = {"weights", NULL};

/* round-robin position of a node */
typedef struct RoundRobinState
{
	int32		nodeId;			/* hash key */
	uint64		turn;
} RoundRobinState;

typedef struct HostSelectionState
{
	Jsonb	   *weights;		/* the "weights" object, or NULL */
	HTAB	   *roundRobin;
} HostSelectionState;

/*
 * host_selection_validate is the options validator of host_selection:
 * weights must be integers from 1 to 1000.
 */
static void
host_selection_validate(Jsonb *options)
{
	JsonbValue	value;
	JsonbIterator *it;
	JsonbIteratorToken token;
	int			level = 0;
	Jsonb	   *weights;

	PluginCheckOptionKeys(options, "host_selection", host_selection_keys);
	if (getKeyJsonValueFromContainer(&options->root, "weights", 7, &value) == NULL)
		return;
	if (value.type != jbvBinary || !JsonContainerIsObject(value.val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"weights\" must be an object {\"host:port\": weight, ...}")));
	weights = JsonbValueToJsonb(&value);
	it = JsonbIteratorInit(&weights->root);
	while ((token = JsonbIteratorNext(&it, &value, true)) != WJB_DONE)
	{
		if (token == WJB_BEGIN_OBJECT || token == WJB_BEGIN_ARRAY)
			level++;
		else if (token == WJB_END_OBJECT || token == WJB_END_ARRAY)
			level--;
		else if (token == WJB_VALUE && level == 1)
		{
			double		weight = -1;

			if (value.type == jbvNumeric)
				weight = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
															NumericGetDatum(value.val.numeric)));
			if (weight < 1 || weight > 1000 || weight != (int) weight)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a weight must be an integer between 1 and 1000")));
		}
	}
}

/*
 * host_selection_init keeps the weights and makes the round-robin state.
 */
static void *
host_selection_init(const char *pluginName, Jsonb *options)
{
	HostSelectionState *state = palloc0(sizeof(HostSelectionState));
	JsonbValue	value;
	HASHCTL		ctl;

	if (getKeyJsonValueFromContainer(&options->root, "weights", 7, &value) != NULL)
		state->weights = JsonbValueToJsonb(&value);
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(RoundRobinState);
	ctl.hcxt = CurrentMemoryContext;
	state->roundRobin = hash_create("shardexec round robin", 8, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return state;
}

/*
 * host_selection_accepts accepts the four strategies it provides.
 */
static bool
host_selection_accepts(ShardexecPlugin *self, ShardexecHostRole role, const char *strategy)
{
	const char *const *s;

	for (s = strategies; *s != NULL; s++)
	{
		if (strcmp(*s, strategy) == 0)
			return true;
	}
	return false;
}

/* host_weight: the weight of host in the "weights" option, else 1 */
static int
host_weight(HostSelectionState *state, const ShardexecHost *host)
{
	char		key[300];
	JsonbValue	value;

	if (state->weights == NULL)
		return Max(host->weight, 1);
	snprintf(key, sizeof(key), "%s:%d", host->host, host->port);
	if (getKeyJsonValueFromContainer(&state->weights->root, key, strlen(key), &value) == NULL ||
		value.type != jbvNumeric)
		return Max(host->weight, 1);
	return (int) DatumGetFloat8(DirectFunctionCall1(numeric_float8,
													NumericGetDatum(value.val.numeric)));
}

/*
 * host_selection_get chooses a host of role among those that are up,
 * with strategy (see the file header); -1 if there is none.
 */
static int
host_selection_get(ShardexecPlugin *self, const ShardexecHostList *list,
				   ShardexecHostRole role, const char *strategy)
{
	HostSelectionState *state = (HostSelectionState *) self->private_data;
	int		   *candidates = palloc(sizeof(int) * Max(list->nhosts, 1));
	int			n = 0;
	int			best = -1;
	int			i;

	for (i = 0; i < list->nhosts; i++)
	{
		if (list->hosts[i].role == role && list->hosts[i].state == SHARDEXEC_HOST_UP)
			candidates[n++] = i;
	}
	if (n == 0)
		return -1;

	if (strcmp(strategy, "random") == 0)
		best = candidates[pg_prng_uint64_range(&pg_global_prng_state, 0, n - 1)];
	else if (strcmp(strategy, "round_robin") == 0)
	{
		RoundRobinState *rr;
		bool		found;
		uint64		total = 0;
		uint64		turn;

		rr = hash_search(state->roundRobin, &list->node_id, HASH_ENTER, &found);
		if (!found)
			rr->turn = 0;
		for (i = 0; i < n; i++)
			total += host_weight(state, &list->hosts[candidates[i]]);
		turn = rr->turn++ % total;
		for (i = 0; i < n && best < 0; i++)
		{
			uint64		weight = host_weight(state, &list->hosts[candidates[i]]);

			if (turn < weight)
				best = candidates[i];
			else
				turn -= weight;
		}
	}
	else if (strcmp(strategy, "least_connections") == 0)
	{
		for (i = 0; i < n; i++)
		{
			if (best < 0 ||
				list->hosts[candidates[i]].open_connections < list->hosts[best].open_connections)
				best = candidates[i];
		}
	}
	else if (strcmp(strategy, "fastest_response") == 0)
	{
		for (i = 0; i < n; i++)
		{
			double		ms = list->hosts[candidates[i]].response_ms;

			if (ms < 0)
				return candidates[i];
			if (best < 0 || ms < list->hosts[best].response_ms)
				best = candidates[i];
		}
	}
	return best;
}

static const ShardexecPluginRoutine host_selection_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "host selection strategies random, round_robin, least_connections and fastest_response",
	.default_weight = 100,
	.validate_options = host_selection_validate,
	.init = host_selection_init,
	.accepts_strategy = host_selection_accepts,
	.get_host_by_strategy = host_selection_get,
};

/*
 * shardexec_host_selection_handler is the handler of the host_selection
 * plugin.
 */
Datum
shardexec_host_selection_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&host_selection_routine);
}
