/*-------------------------------------------------------------------------
 *
 * builtin_failover.c
 *		  The failover plugin: find a node's new primary when the old one
 *		  fails, and reconnect there.
 *
 * connect.  When the rest of the chain cannot open a pooled connection:
 *	 - to a replica (a statement routed to replicas): the replica is marked
 *	   down and the next replica that is up is tried, then the primary;
 *	 - to the primary: the host is marked down, the host list is built
 *	   again (host_list_provider: topology may know better), and every host
 *	   of the list is probed with a fresh connection (force_connect) and
 *	   "SELECT pg_is_in_recovery()"; the first that is not in recovery
 *	   becomes the node's primary (host_list_changed: promoted) and the
 *	   connection is made there.  While no host answers as a primary (a
 *	   standby is being promoted) the probes are repeated every
 *	   retry_interval_ms, up to timeout_ms; then the connect fails with the
 *	   original reason.
 * The primary found is remembered for the backend (host_list_provider puts
 * it back whenever the list is built again), and a host that answers again
 * is marked up.  Forced connections (probes) pass through untouched.
 *
 * execute.  When a unit's connection is lost (or the server ends the
 * session: connection exception, administrator or crash shutdown), its
 * host is marked down, so that the pooled connections to it are replaced
 * (connection_changed) and the next connect goes through the search
 * above.  A unit the executor can send again (a read-only statement
 * outside a transaction block, no row of the unit returned yet: see
 * ShardexecUnitInfo.retryable) is sent again, up to max_retries times:
 * its new connection is made through the connect pipeline, so it goes to
 * the primary found there, and the statement goes on as if nothing
 * happened.  Inside a transaction block the unit's statement fails with
 * SQLSTATE 08007 (transaction resolution unknown): what the transaction
 * did on that node is lost or unknown, and the transaction cannot commit;
 * a new primary is looked for at once, so the transaction can be run
 * again.  A read-only statement that cannot be retried (rows were already
 * returned, or the retries are used up) fails with an error that says it
 * can be run again.
 *
 * Options: timeout_ms (30000), retry_interval_ms (500), probe_timeout_ms
 * (2000), max_retries (2; 0 never sends a unit again; at most 10).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "shardexec/metadata.h"
#include "shardexec/plugin.h"

PG_FUNCTION_INFO_V1(shardexec_failover_handler);

typedef struct FailoverOptions
{
	int			timeoutMs;
	int			retryIntervalMs;
	int			probeTimeoutMs;
	int			maxRetries;
} FailoverOptions;

/* the primary failover found for a node, for the life of the backend */
typedef struct KnownPrimary
{
	int32		nodeId;			/* hash key */
	char		host[256];
	int			port;
} KnownPrimary;

static HTAB *knownPrimaries = NULL;

static const char *const failover_keys[] = {"timeout_ms", "retry_interval_ms",
"probe_timeout_ms", "max_retries", NULL};

/*
 * positive_option returns the integer option key (1 .. INT_MAX), or
 * defaultValue if it is absent.
 */
static int
positive_option(Jsonb *options, const char *key, int defaultValue)
{
	double		value;

	if (!PluginOptionNumber(options, key, &value))
		return defaultValue;
	if (value < 1 || value > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d", key, INT_MAX)));
	return (int) value;
}

/*
 * count_option returns the integer option key (0 .. 10: the executor sends
 * a connection's units again at most 10 times in one statement), or
 * defaultValue if it is absent.
 */
static int
count_option(Jsonb *options, const char *key, int defaultValue)
{
	double		value;

	if (!PluginOptionNumber(options, key, &value))
		return defaultValue;
	if (value < 0 || value > 10 || value != (int) value)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be an integer between 0 and 10", key)));
	return (int) value;
}

/*
 * failover_parse reads options into parsed.
 */
static void
failover_parse(Jsonb *options, FailoverOptions *parsed)
{
	PluginCheckOptionKeys(options, "failover", failover_keys);
	parsed->timeoutMs = positive_option(options, "timeout_ms", 30000);
	parsed->retryIntervalMs = positive_option(options, "retry_interval_ms", 500);
	parsed->probeTimeoutMs = positive_option(options, "probe_timeout_ms", 2000);
	parsed->maxRetries = count_option(options, "max_retries", 2);
}

/*
 * failover_validate is the options validator of failover.
 */
static void
failover_validate(Jsonb *options)
{
	FailoverOptions parsed;

	failover_parse(options, &parsed);
}

/*
 * failover_init parses the options once per chain.
 */
static void *
failover_init(const char *pluginName, Jsonb *options)
{
	FailoverOptions *parsed = palloc(sizeof(FailoverOptions));

	failover_parse(options, parsed);
	return parsed;
}

/*
 * remember_primary records, for the life of the backend, that node nodeId
 * has its primary at host:port.
 */
static void
remember_primary(int32 nodeId, const char *host, int port)
{
	KnownPrimary *known;

	if (knownPrimaries == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(KnownPrimary);
		knownPrimaries = hash_create("shardexec failover primaries", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS);
	}
	known = hash_search(knownPrimaries, &nodeId, HASH_ENTER, NULL);
	strlcpy(known->host, host, sizeof(known->host));
	known->port = port;
}

/*
 * find_primary probes every host of node's list (built again first) until
 * one answers as a primary, for up to options->timeoutMs; makes it the
 * node's primary and returns its index in the list, or -1.
 */
static int
find_primary(FailoverOptions *options, ShardexecNode *node)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   options->timeoutMs);

	for (;;)
	{
		ShardexecHostList *list;
		int			nhosts;
		char	  **hosts;
		int		   *ports;
		int			i;

		RefreshNodeHostList(node);
		list = GetNodeHostList(node);
		nhosts = list->nhosts;
		hosts = palloc(sizeof(char *) * Max(nhosts, 1));
		ports = palloc(sizeof(int) * Max(nhosts, 1));
		for (i = 0; i < nhosts; i++)
		{
			hosts[i] = pstrdup(list->hosts[i].host);
			ports[i] = list->hosts[i].port;
		}
		for (i = 0; i < nhosts; i++)
		{
			char	   *error = NULL;
			PGconn	   *probe = PluginForceConnect(node, hosts[i], ports[i],
												   SHARDEXEC_HOST_PRIMARY,
												   options->probeTimeoutMs, &error);
			bool		isPrimary = false;
			bool		answered;

			if (probe == NULL)
			{
				SetHostState(node, hosts[i], ports[i], SHARDEXEC_HOST_DOWN);
				continue;
			}
			answered = PluginProbeIsPrimary(probe, &isPrimary, &error);
			PQfinish(probe);
			if (!answered)
				continue;
			SetHostState(node, hosts[i], ports[i], SHARDEXEC_HOST_UP);
			if (isPrimary)
			{
				SetPrimaryHost(node, hosts[i], ports[i]);
				remember_primary(node->nodeId, hosts[i], ports[i]);
				ereport(LOG,
						(errmsg("shardexec failover: node \"%s\" has its primary at %s:%d",
								node->nodeName, hosts[i], ports[i])));
				return PrimaryHostIndex(GetNodeHostList(node));
			}
		}
		if (GetCurrentTimestamp() >= deadline)
			return -1;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 options->retryIntervalMs, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * failover_connect is the connect callback of failover: it calls the next
 * plugin and, when that fails, tries another replica or looks for the
 * node's primary (see the file header).
 */
static PGconn *
failover_connect(ShardexecPlugin *self, ShardexecConnectInfo *info,
				 ShardexecConnectChain *chain)
{
	FailoverOptions *options = (FailoverOptions *) self->private_data;
	ShardexecNode *node;
	ShardexecHostList *list;
	PGconn	   *conn = chain->next(chain, info);
	char	   *reason;
	int			attempts;
	int			index;

	if (info->forced)
		return conn;
	node = LookupNodeById(info->node_id, false);
	if (conn != NULL)
	{
		SetHostState(node, info->host, info->port, SHARDEXEC_HOST_UP);
		return conn;
	}
	reason = info->error;
	SetHostState(node, info->host, info->port, SHARDEXEC_HOST_DOWN);

	/* a replica: another replica, else the primary */
	if (info->role == SHARDEXEC_HOST_REPLICA)
	{
		list = GetNodeHostList(node);
		for (attempts = list->nhosts; attempts > 0; attempts--)
		{
			list = GetNodeHostList(node);
			index = SelectHostByStrategy(list, SHARDEXEC_HOST_REPLICA, NULL);
			if (index < 0)
				break;
			info->set_host(info, list->hosts[index].host, list->hosts[index].port);
			conn = chain->next(chain, info);
			if (conn != NULL)
				return conn;
			SetHostState(node, info->host, info->port, SHARDEXEC_HOST_DOWN);
		}
		list = GetNodeHostList(node);
		index = PrimaryHostIndex(list);
		if (index < 0)
			goto fail;
		info->role = SHARDEXEC_HOST_PRIMARY;
		info->set_host(info, list->hosts[index].host, list->hosts[index].port);
		conn = chain->next(chain, info);
		if (conn != NULL)
			return conn;
	}

	/* the primary: look for the new one */
	index = find_primary(options, node);
	if (index < 0)
		goto fail;
	list = GetNodeHostList(node);
	info->set_host(info, list->hosts[index].host, list->hosts[index].port);
	conn = chain->next(chain, info);
	if (conn != NULL)
		return conn;

fail:
	info->error = psprintf("%s\nfailover found no primary for node \"%s\" within %d ms",
						   reason != NULL ? reason : "", info->node_name, options->timeoutMs);
	return NULL;
}

/*
 * failover_host_list puts back the primary this backend found, whenever
 * the node's host list is built again.
 */
static void
failover_host_list(ShardexecPlugin *self, ShardexecHostListRequest *request,
				   ShardexecHostListChain *chain)
{
	KnownPrimary *known;
	int			i;

	chain->next(chain, request);
	if (knownPrimaries == NULL)
		return;
	known = hash_search(knownPrimaries, &request->node_id, HASH_FIND, NULL);
	if (known == NULL)
		return;
	for (i = 0; i < request->list->nhosts; i++)
	{
		if (request->list->hosts[i].port == known->port &&
			strcmp(request->list->hosts[i].host, known->host) == 0)
			request->add_host(request, known->host, known->port, SHARDEXEC_HOST_PRIMARY);
	}
}

/*
 * server_went_away says whether sqlstate (may be NULL) means the session
 * ended on the server's side: a connection exception, or the server
 * shutting down (a node stopped for a failover sends 57P01 before it
 * closes its connections).
 */
static bool
server_went_away(const char *sqlstate)
{
	return sqlstate != NULL &&
		(strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
		 strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0);
}

/*
 * failover_execute_end is the execute_end callback of failover: a unit
 * whose connection was lost marks its host down and fails with an error
 * that says what is known (see the file header).
 */
static void
failover_execute_end(ShardexecPlugin *self, ShardexecUnitInfo *unit)
{
	FailoverOptions *options = (FailoverOptions *) self->private_data;
	ShardexecNode *node;
	ShardexecHostList *list;
	int			index;

	if (!unit->failed || !(unit->connection_lost || server_went_away(unit->sqlstate)))
		return;
	node = LookupNodeById(unit->node_id, false);
	if (unit->host != NULL)
		SetHostState(node, unit->host, unit->port, SHARDEXEC_HOST_DOWN);

	/* sent again, the connect pipeline finds the primary */
	if (unit->retryable && unit->attempt < options->maxRetries)
	{
		unit->retry = true;
		return;
	}

	if (unit->statement->in_transaction_block)
	{
		list = GetNodeHostList(node);
		index = PrimaryHostIndex(list);
		if (index < 0 || list->hosts[index].state == SHARDEXEC_HOST_DOWN)
			index = find_primary(options, node);
		list = GetNodeHostList(node);
		ereport(ERROR,
				(errcode(ERRCODE_TRANSACTION_RESOLUTION_UNKNOWN),
				 errmsg("lost the connection to node \"%s\" inside a transaction", unit->node_name),
				 errdetail("The outcome of this transaction on node \"%s\" is unknown: "
						   "what it did there is lost, and it cannot commit. %s",
						   unit->node_name,
						   unit->error_message != NULL ? unit->error_message : ""),
				 index >= 0 ?
				 errhint("Roll back and run the transaction again: node \"%s\" now has its primary at %s:%d.",
						 unit->node_name, list->hosts[index].host, list->hosts[index].port) :
				 errhint("Roll back and run the transaction again once node \"%s\" has a primary.",
						 unit->node_name),
				 errcontext("remote SQL command on node \"%s\": %s", unit->node_name, unit->sql)));
	}
	if (unit->statement->read_only)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the connection to node \"%s\"", unit->node_name),
				 errdetail_internal("%s", unit->error_message != NULL ? unit->error_message : ""),
				 errhint("The statement only reads: run it again, the next connection goes to the node's current primary."),
				 errcontext("remote SQL command on node \"%s\": %s", unit->node_name, unit->sql)));
}

static const ShardexecPluginRoutine failover_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "finds a node's new primary when a connection to it fails, and reconnects there",
	.default_weight = 30,
	.validate_options = failover_validate,
	.init = failover_init,
	.connect = failover_connect,
	.host_list_provider = failover_host_list,
	.execute_end = failover_execute_end,
};

/*
 * shardexec_failover_handler is the handler of the failover plugin.
 */
Datum
shardexec_failover_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&failover_routine);
}
