/*-------------------------------------------------------------------------
 *
 * builtin_hosts.c
 *		  The static_hosts and topology host list providers.
 *
 * static_hosts: the node's primary (the rest of the chain: the foreign
 * server's host and port) plus the replicas recorded with
 * shardexec.add_replica.  The replicas are read from shardexec.replica with
 * a catalog scan; add_replica invalidates the node catalog, which drops
 * every backend's host lists, so they are read again.
 *
 * topology: asks the servers themselves.  It takes the list the rest of
 * the chain builds (so put static_hosts after it, with a higher weight,
 * to seed it with add_replica's hosts), opens a fresh connection
 * (force_connect) to each host in turn until one says it is not in
 * recovery, makes that one the primary (a promotion is found this way
 * too), and adds every standby that streams from it (pg_stat_replication,
 * which needs a superuser or pg_read_all_stats on the node).  A standby's
 * address is its application_name when that is "host:port" (set it in the
 * standby's primary_conninfo), else its client address and the option
 * port.  The list is built again after refresh_ms.
 *
 * Options of topology:
 *	 refresh_ms			how long a list is kept (default 30000)
 *	 port				port of standbys whose application_name is not
 *						host:port (default: the primary's)
 *	 probe_timeout_ms	connect and query timeout per host (default 2000)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "shardexec/metadata.h"
#include "shardexec/plugin.h"

#define Anum_replica_node_id 1
#define Anum_replica_host 2
#define Anum_replica_port 3

PG_FUNCTION_INFO_V1(shardexec_static_hosts_handler);
PG_FUNCTION_INFO_V1(shardexec_topology_handler);

/* ----------------------------------------------------------------
 * static_hosts
 * ----------------------------------------------------------------
 */

/*
 * static_hosts_provider adds the replicas recorded with add_replica to
 * the host list the rest of the chain builds.
 */
static void
static_hosts_provider(ShardexecPlugin *self, ShardexecHostListRequest *request,
					  ShardexecHostListChain *chain)
{
	Oid			relid = get_relname_relid("replica", ShardexecSchemaId());
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;

	chain->next(chain, request);

	if (!OidIsValid(relid))
		return;
	ScanKeyInit(&key, Anum_replica_node_id, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(request->node_id));
	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		values[3];
		bool		isnull[3];

		heap_deform_tuple(tuple, RelationGetDescr(rel), values, isnull);
		if (isnull[Anum_replica_host - 1] || isnull[Anum_replica_port - 1])
			continue;
		request->add_host(request, TextDatumGetCString(values[Anum_replica_host - 1]),
						  DatumGetInt32(values[Anum_replica_port - 1]),
						  SHARDEXEC_HOST_REPLICA);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

static const ShardexecPluginRoutine static_hosts_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "host list: the node's primary and the replicas of shardexec.add_replica",
	.default_weight = 500,
	.host_list_provider = static_hosts_provider,
};

/*
 * shardexec_static_hosts_handler is the handler of the static_hosts plugin.
 */
Datum
shardexec_static_hosts_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&static_hosts_routine);
}

/* ----------------------------------------------------------------
 * topology
 * ----------------------------------------------------------------
 */

typedef struct TopologyOptions
{
	int			refreshMs;
	int			port;			/* 0: the primary's */
	int			probeTimeoutMs;
} TopologyOptions;

static const char *const topology_keys[] = {"refresh_ms", "port", "probe_timeout_ms", NULL};

/*
 * topology_parse reads options into parsed.
 */
static void
topology_parse(Jsonb *options, TopologyOptions *parsed)
{
	double		value;

	PluginCheckOptionKeys(options, "topology", topology_keys);
	parsed->refreshMs = 30000;
	parsed->port = 0;
	parsed->probeTimeoutMs = 2000;
	if (PluginOptionNumber(options, "refresh_ms", &value))
	{
		if (value < 1 || value > INT_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("refresh_ms must be between 1 and %d", INT_MAX)));
		parsed->refreshMs = (int) value;
	}
	if (PluginOptionNumber(options, "port", &value))
	{
		if (value < 1 || value > 65535)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("port must be between 1 and 65535")));
		parsed->port = (int) value;
	}
	if (PluginOptionNumber(options, "probe_timeout_ms", &value))
	{
		if (value < 1 || value > INT_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("probe_timeout_ms must be between 1 and %d", INT_MAX)));
		parsed->probeTimeoutMs = (int) value;
	}
}

/*
 * topology_validate is the options validator of topology.
 */
static void
topology_validate(Jsonb *options)
{
	TopologyOptions parsed;

	topology_parse(options, &parsed);
}

/*
 * topology_init parses the options once per chain.
 */
static void *
topology_init(const char *pluginName, Jsonb *options)
{
	TopologyOptions *parsed = palloc(sizeof(TopologyOptions));

	topology_parse(options, parsed);
	return parsed;
}

/*
 * parse_host_port splits "host:port" (the last colon); false if it is not
 * of that form.
 */
static bool
parse_host_port(const char *text, char **host, int *port)
{
	const char *colon = strrchr(text, ':');
	char	   *end;
	long		value;

	if (colon == NULL || colon == text || colon[1] == '\0')
		return false;
	value = strtol(colon + 1, &end, 10);
	if (*end != '\0' || value < 1 || value > 65535)
		return false;
	*host = pnstrdup(text, colon - text);
	*port = (int) value;
	return true;
}

/*
 * topology_provider asks the hosts of the list the rest of the chain built
 * which is the primary, and adds the primary's streaming replicas.
 */
static void
topology_provider(ShardexecPlugin *self, ShardexecHostListRequest *request,
				  ShardexecHostListChain *chain)
{
	TopologyOptions *options = (TopologyOptions *) self->private_data;
	ShardexecHostList *list = request->list;
	int			nknown;
	char	  **hosts;
	int		   *ports;
	int			i;

	chain->next(chain, request);
	request->refresh_ms = options->refreshMs;

	/* the hosts known so far, primary first: the list changes as we add */
	nknown = list->nhosts;
	hosts = palloc(sizeof(char *) * Max(nknown, 1));
	ports = palloc(sizeof(int) * Max(nknown, 1));
	for (i = 0; i < nknown; i++)
	{
		hosts[i] = pstrdup(list->hosts[i].host);
		ports[i] = list->hosts[i].port;
	}

	for (i = 0; i < nknown; i++)
	{
		char	   *error = NULL;
		PGconn	   *conn = request->force_connect(request, hosts[i], ports[i], &error);
		PGresult   *res;
		bool		isPrimary = false;
		int			row;

		if (conn == NULL)
		{
			elog(DEBUG1, "shardexec topology: node \"%s\" at %s:%d: %s",
				 request->node_name, hosts[i], ports[i], error);
			continue;
		}
		if (!PluginProbeIsPrimary(conn, &isPrimary, &error) || !isPrimary)
		{
			PQfinish(conn);
			continue;
		}
		request->add_host(request, hosts[i], ports[i], SHARDEXEC_HOST_PRIMARY);
		res = PluginProbeQuery(conn,
							   "SELECT application_name, host(client_addr), client_hostname "
							   "FROM pg_catalog.pg_stat_replication "
							   "WHERE state IN ('streaming', 'catchup')",
							   options->probeTimeoutMs, &error);
		PQfinish(conn);
		if (res == NULL)
		{
			elog(DEBUG1, "shardexec topology: node \"%s\": %s", request->node_name, error);
			break;
		}
		for (row = 0; row < PQntuples(res); row++)
		{
			char	   *host = NULL;
			int			port = 0;

			if (!parse_host_port(PQgetvalue(res, row, 0), &host, &port))
			{
				if (!PQgetisnull(res, row, 2) && PQgetvalue(res, row, 2)[0] != '\0')
					host = pstrdup(PQgetvalue(res, row, 2));
				else if (!PQgetisnull(res, row, 1))
					host = pstrdup(PQgetvalue(res, row, 1));
				port = options->port > 0 ? options->port : ports[i];
			}
			if (host != NULL)
				request->add_host(request, host, port, SHARDEXEC_HOST_REPLICA);
		}
		PQclear(res);
		break;
	}
}

static const ShardexecPluginRoutine topology_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "host list: asks the node's servers for the primary and its streaming replicas",
	.default_weight = 400,
	.validate_options = topology_validate,
	.init = topology_init,
	.host_list_provider = topology_provider,
};

/*
 * shardexec_topology_handler is the handler of the topology plugin.
 */
Datum
shardexec_topology_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&topology_routine);
}
