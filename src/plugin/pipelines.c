/*-------------------------------------------------------------------------
 *
 * pipelines.c
 *		  Running the plugin pipelines; the nodes' host lists; routing a
 *		  statement's connections to replicas.
 *
 * Every pipeline call goes through the chain of the active plugins that
 * subscribe to it (plugin_cache.c) and ends in shardexec's own default:
 *
 *	 connect		  PluginStartConnect, called by connection.c where a
 *					  pooled connection is opened, chooses the host (the
 *					  node's primary, or a replica for a statement routed to
 *					  replicas), then runs the chain; each plugin calls
 *					  chain->next, and the end of the chain opens the
 *					  connection (default_connect).  A plugin sees the
 *					  outcome of next (a connection, or NULL and a reason)
 *					  and may change the request and call next again: that
 *					  is how failover reconnects elsewhere.  This makes the
 *					  connect synchronous, so with plugins active the new
 *					  connections of a statement are opened one after the
 *					  other rather than in parallel (each within
 *					  shardexec.connect_timeout); pooled connections are
 *					  reused, so this costs once per connection.
 *	 force_connect	  PluginForceConnect: a fresh connection outside the pool
 *					  to a given host of a node (failover probes, topology
 *					  queries), with the options connection.c would use
 *					  (server, user mapping); its chain ends in the connect
 *					  pipeline with info->forced set.
 *	 execute		  the executor calls PluginBeginExecution once per
 *					  statement (execute_statement: a plugin may route the
 *					  statement to replicas), PluginExecuteBegin before each
 *					  unit is sent (outermost plugin first), and
 *					  PluginExecuteEnd or PluginExecuteFailed after its last
 *					  result (innermost first), so the callbacks nest as
 *					  wrappers would even though units run asynchronously.
 *					  A unit whose connection was lost may be sent again
 *					  when a plugin asks (failover): a new execute_begin,
 *					  with one more attempt counted.
 *	 host_list_provider  GetNodeHostList: a chain whose end adds the primary
 *					  of the foreign server's options; built lazily per
 *					  node, kept until the chain or the node catalog
 *					  changes, or until the smallest refresh_ms a provider
 *					  asked for has passed.  Host states (down) and the
 *					  primary (failover) are changed in place by
 *					  SetHostState and SetPrimaryHost, which notify
 *					  host_list_changed.
 *	 accepts_strategy, get_host_by_strategy  SelectHostByStrategy: the first
 *					  plugin that accepts the strategy and returns a host.
 *	 connection_changed  PluginConnectionOutdated, called by connection.c
 *					  before it reuses an idle pooled connection: a
 *					  connection that no longer goes where the host list
 *					  says (the primary moved, its host went down) is
 *					  replaced unless a plugin says keep.
 *
 * Routing.  A statement that a plugin sends to replicas (read/write
 * splitting) claims its connections with PluginRouting set; connection.c
 * then keys the node's connection set with route 1 (PluginConnectionRoute),
 * so connections to replicas and to the primary are pooled apart and a
 * write never lands on a connection made for reads.  A node without a
 * replica that is up keeps route 0.
 *
 * Errors.  Each plugin call runs under an error context callback that
 * names the plugin and the pipeline; while a plugin's call to next runs
 * the rest of the chain, its context is taken off the stack, so an error
 * names the plugin that raised it, and an error of shardexec's own default
 * names no plugin.
 *
 * Statistics for host selection (this backend's): connections open per
 * host (counted with a libpq event procedure, which sees every PQfinish)
 * and a moving average of connect times per host.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "libpq-events.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "shardexec/connection.h"
#include "shardexec/metadata.h"
#include "shardexec/plugin.h"
#include "shardexec/shardexec.h"

#define HOST_KEY_LEN 300

/* weight of a new connect time in the moving average */
#define RESPONSE_EWMA_WEIGHT 0.3

PluginExecution *PluginRouting = NULL;

/* a statement's share of the execute pipeline */
struct PluginExecution
{
	ShardexecStatementInfo statement;
	bool		useReplicas;
	bool		unitCallbacks;	/* execute_begin or execute_end subscribed */
	int			nunits;
	ShardexecUnitInfo *units;
	instr_time *startTimes;
	char	   *begun;			/* 0 not begun, 1 begun, 2 ended */
	int		   *attempts;		/* times each unit was sent before */
};

/* this backend's statistics of one host:port */
typedef struct HostStats
{
	char		key[HOST_KEY_LEN];	/* "host:port", hash key */
	int			openConnections;
	double		responseMs;		/* < 0: unknown */
} HostStats;

/*
 * ConnectionTag: what a connection made through the connect pipeline
 * carries (libpq instance data of host_stats_event): its host's
 * statistics, and the chain it was made under.  malloc'd, freed with the
 * connection.
 */
typedef struct ConnectionTag
{
	HostStats  *stats;
	uint64		generation;
} ConnectionTag;

/* a node's host list */
typedef struct HostListEntry
{
	int32		nodeId;			/* hash key */
	bool		valid;
	bool		building;
	TimestampTz expiresAt;		/* 0: never */
	MemoryContext context;
	ShardexecHostList *list;
} HostListEntry;

/* ShardexecConnectInfo with shardexec's own state */
typedef struct ConnectInfoImpl
{
	ShardexecConnectInfo pub;	/* must be first */
	int			noptions;
	int			maxoptions;
	MemoryContext context;
	int			timeoutMs;
} ConnectInfoImpl;

/* ShardexecConnectChain with shardexec's own state */
typedef struct ConnectChainImpl
{
	ShardexecConnectChain pub;	/* must be first */
	PluginCallback callback;
	int			position;		/* the subscriber next() runs */
	int			calls;
	ErrorContextCallback *outerContext;
} ConnectChainImpl;

/* ShardexecHostListRequest with shardexec's own state */
typedef struct HostListRequestImpl
{
	ShardexecHostListRequest pub;	/* must be first */
	ShardexecNode *node;
	int			maxhosts;
	MemoryContext context;
} HostListRequestImpl;

typedef struct HostListChainImpl
{
	ShardexecHostListChain pub; /* must be first */
	int			position;
	int			calls;
	ErrorContextCallback *outerContext;
} HostListChainImpl;

/* the errcontext of one plugin call */
typedef struct PluginCallFrame
{
	ErrorContextCallback callback;
	const char *pluginName;
	const char *pipeline;
} PluginCallFrame;

static HTAB *hostStats = NULL;
static HTAB *hostLists = NULL;

static void for_each_subscriber(PluginCallback callback, bool innermostFirst,
								void (*call) (ActivePlugin *plugin, void *arg), void *arg);
static void call_execute_statement(ActivePlugin *plugin, void *arg);
static void push_plugin_frame(PluginCallFrame *frame, ActivePlugin *plugin,
							  PluginCallback callback);
static void plugin_error_context(void *arg);
static HostStats *host_stats(const char *host, int port);
static int	host_stats_event(PGEventId evtId, void *evtInfo, void *passThrough);
static void init_connect_info(ConnectInfoImpl *impl, ShardexecNode *node, Oid userId,
							  const char **keywords, const char **values);
static void connect_info_set_option(ShardexecConnectInfo *info, const char *keyword,
									const char *value);
static const char *connect_info_get_option(ShardexecConnectInfo *info, const char *keyword);
static void connect_info_set_host(ShardexecConnectInfo *info, const char *host, int port);
static PGconn *run_connect_chain(ConnectInfoImpl *impl, PluginCallback callback,
								 int position);
static PGconn *connect_next(ShardexecConnectChain *chain, ShardexecConnectInfo *info);
static PGconn *default_connect(ConnectInfoImpl *impl);
static void build_host_list(HostListEntry *entry, ShardexecNode *node);
static void run_host_list_chain(HostListRequestImpl *impl, int position);
static void host_list_next(ShardexecHostListChain *chain, ShardexecHostListRequest *request);
static ShardexecHost *request_add_host(ShardexecHostListRequest *request, const char *host,
									   int port, ShardexecHostRole role);
static PGconn *request_force_connect(ShardexecHostListRequest *request, const char *host,
									 int port, char **error);
static int	find_host(const ShardexecHostList *list, const char *host, int port);
static void sort_primary_first(ShardexecHostList *list);
static void notify_host_change(const ShardexecHostList *list, const ShardexecHost *host,
							   ShardexecHostChange change);
static void server_host(ShardexecNode *node, char **host, int *port);

PG_FUNCTION_INFO_V1(shardexec_host_list);

/* chain_has says whether an active plugin has callback */
static inline bool
chain_has(PluginCallback callback)
{
	return CurrentPluginChain != NULL && CurrentPluginChain->nsubscribers[callback] > 0;
}

/* ----------------------------------------------------------------
 * Error contexts
 * ----------------------------------------------------------------
 */

/*
 * push_plugin_frame pushes the error context of a call of plugin in the
 * pipeline of callback; pop_plugin_frame takes it off.
 */
static void
push_plugin_frame(PluginCallFrame *frame, ActivePlugin *plugin, PluginCallback callback)
{
	frame->pluginName = plugin->plugin.name;
	frame->pipeline = PluginPipelineName(callback);
	frame->callback.callback = plugin_error_context;
	frame->callback.arg = frame;
	frame->callback.previous = error_context_stack;
	error_context_stack = &frame->callback;
}

static inline void
pop_plugin_frame(PluginCallFrame *frame)
{
	error_context_stack = frame->callback.previous;
}

/*
 * for_each_subscriber calls call(plugin, arg) for every active plugin that
 * subscribes to callback, in chain order (innermostFirst: the reverse),
 * each under the error context that names it.
 */
static void
for_each_subscriber(PluginCallback callback, bool innermostFirst,
					void (*call) (ActivePlugin *plugin, void *arg), void *arg)
{
	PluginChain *chain = CurrentPluginChain;
	int			n = chain != NULL ? chain->nsubscribers[callback] : 0;
	int			i;

	if (n == 0)
		return;
	PluginCallDepth++;
	PG_TRY();
	{
		for (i = 0; i < n; i++)
		{
			ActivePlugin *plugin = chain->subscribers[callback][innermostFirst ? n - 1 - i : i];
			PluginCallFrame frame;

			push_plugin_frame(&frame, plugin, callback);
			call(plugin, arg);
			pop_plugin_frame(&frame);
		}
	}
	PG_FINALLY();
	{
		PluginCallDepth--;
	}
	PG_END_TRY();
}

/*
 * plugin_error_context names the plugin and the pipeline in an error.
 */
static void
plugin_error_context(void *arg)
{
	PluginCallFrame *frame = (PluginCallFrame *) arg;

	errcontext("shardexec plugin \"%s\", pipeline \"%s\"", frame->pluginName,
			   frame->pipeline);
}

/* ----------------------------------------------------------------
 * Host statistics
 * ----------------------------------------------------------------
 */

/*
 * host_stats returns this backend's statistics of host:port, creating
 * them.  Entries are never removed, so pointers to them stay valid.
 */
static HostStats *
host_stats(const char *host, int port)
{
	char		key[HOST_KEY_LEN];
	HostStats  *stats;
	bool		found;

	if (hostStats == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = HOST_KEY_LEN;
		ctl.entrysize = sizeof(HostStats);
		hostStats = hash_create("shardexec host statistics", 32, &ctl,
								HASH_ELEM | HASH_STRINGS);
	}
	memset(key, 0, sizeof(key));
	snprintf(key, sizeof(key), "%s:%d", host, port);
	stats = hash_search(hostStats, key, HASH_ENTER, &found);
	if (!found)
	{
		stats->openConnections = 0;
		stats->responseMs = -1;
	}
	return stats;
}

/*
 * host_stats_event is the libpq event procedure of every connection made
 * through the connect pipeline: it counts the connection as open until
 * PQfinish.
 */
static int
host_stats_event(PGEventId evtId, void *evtInfo, void *passThrough)
{
	ConnectionTag *tag = (ConnectionTag *) passThrough;

	if (evtId == PGEVT_REGISTER)
		tag->stats->openConnections++;
	else if (evtId == PGEVT_CONNDESTROY)
	{
		if (tag->stats->openConnections > 0)
			tag->stats->openConnections--;
		free(tag);
	}
	return 1;
}

/*
 * tag_connection attaches a ConnectionTag to conn, made to host:port
 * under the current chain.
 */
static void
tag_connection(PGconn *conn, const char *host, int port)
{
	ConnectionTag *tag = malloc(sizeof(ConnectionTag));

	if (tag == NULL)
		return;
	tag->stats = host_stats(host, port);
	tag->generation = PluginChainGeneration;
	if (!PQregisterEventProc(conn, host_stats_event, "shardexec host statistics", tag))
	{
		free(tag);
		return;
	}
	(void) PQsetInstanceData(conn, host_stats_event, tag);
}

/* ----------------------------------------------------------------
 * Connection requests
 * ----------------------------------------------------------------
 */

/*
 * init_connect_info fills impl for a connection to node as userId with
 * the libpq options keywords/values (NULL-terminated), copied into the
 * current memory context.
 */
static void
init_connect_info(ConnectInfoImpl *impl, ShardexecNode *node, Oid userId,
				  const char **keywords, const char **values)
{
	int			n = 0;
	int			i;
	const char *port;

	memset(impl, 0, sizeof(*impl));
	while (keywords[n] != NULL)
		n++;
	impl->context = CurrentMemoryContext;
	impl->maxoptions = n + 8;
	impl->pub.keywords = palloc0(sizeof(char *) * (impl->maxoptions + 1));
	impl->pub.values = palloc0(sizeof(char *) * (impl->maxoptions + 1));
	for (i = 0; i < n; i++)
	{
		impl->pub.keywords[i] = pstrdup(keywords[i]);
		impl->pub.values[i] = pstrdup(values[i]);
	}
	impl->noptions = n;
	impl->timeoutMs = ShardexecConnectTimeout * 1000;
	impl->pub.node_id = node->nodeId;
	impl->pub.node_name = node->nodeName;
	impl->pub.user_id = userId;
	impl->pub.role = SHARDEXEC_HOST_PRIMARY;
	impl->pub.set_option = connect_info_set_option;
	impl->pub.get_option = connect_info_get_option;
	impl->pub.set_host = connect_info_set_host;
	impl->pub.host = connect_info_get_option(&impl->pub, "host");
	if (impl->pub.host == NULL)
		impl->pub.host = connect_info_get_option(&impl->pub, "hostaddr");
	port = connect_info_get_option(&impl->pub, "port");
	impl->pub.port = (port != NULL && port[0] != '\0') ? atoi(port) : 5432;
}

/*
 * connect_info_set_option is ShardexecConnectInfo.set_option: it sets,
 * adds or (value NULL) removes a libpq option, copying the strings.
 */
static void
connect_info_set_option(ShardexecConnectInfo *info, const char *keyword, const char *value)
{
	ConnectInfoImpl *impl = (ConnectInfoImpl *) info;
	MemoryContext oldContext = MemoryContextSwitchTo(impl->context);
	int			i;

	for (i = 0; i < impl->noptions; i++)
	{
		if (strcmp(info->keywords[i], keyword) == 0)
			break;
	}
	if (value == NULL)
	{
		if (i < impl->noptions)
		{
			memmove(&info->keywords[i], &info->keywords[i + 1],
					sizeof(char *) * (impl->noptions - i));
			memmove(&info->values[i], &info->values[i + 1],
					sizeof(char *) * (impl->noptions - i));
			impl->noptions--;
		}
	}
	else if (i < impl->noptions)
		info->values[i] = pstrdup(value);
	else
	{
		if (impl->noptions == impl->maxoptions)
		{
			impl->maxoptions *= 2;
			info->keywords = repalloc(info->keywords, sizeof(char *) * (impl->maxoptions + 1));
			info->values = repalloc(info->values, sizeof(char *) * (impl->maxoptions + 1));
		}
		info->keywords[impl->noptions] = pstrdup(keyword);
		info->values[impl->noptions] = pstrdup(value);
		impl->noptions++;
		info->keywords[impl->noptions] = NULL;
		info->values[impl->noptions] = NULL;
	}
	MemoryContextSwitchTo(oldContext);
}

/*
 * connect_info_get_option is ShardexecConnectInfo.get_option.
 */
static const char *
connect_info_get_option(ShardexecConnectInfo *info, const char *keyword)
{
	ConnectInfoImpl *impl = (ConnectInfoImpl *) info;
	int			i;

	for (i = 0; i < impl->noptions; i++)
	{
		if (strcmp(info->keywords[i], keyword) == 0)
			return info->values[i];
	}
	return NULL;
}

/*
 * connect_info_set_host is ShardexecConnectInfo.set_host: host and port
 * replace the options host, hostaddr and port.
 */
static void
connect_info_set_host(ShardexecConnectInfo *info, const char *host, int port)
{
	char		portString[16];

	snprintf(portString, sizeof(portString), "%d", port);
	connect_info_set_option(info, "hostaddr", NULL);
	connect_info_set_option(info, "host", host);
	connect_info_set_option(info, "port", portString);
	info->host = connect_info_get_option(info, "host");
	info->port = port;
}

/* ----------------------------------------------------------------
 * connect and force_connect
 * ----------------------------------------------------------------
 */

/*
 * run_connect_chain runs the subscribers of callback (connect or
 * force_connect) from position on; past the last one, force_connect
 * continues with the connect pipeline and connect ends in
 * default_connect.  Returns a connection, or NULL with impl->pub.error.
 */
static PGconn *
run_connect_chain(ConnectInfoImpl *impl, PluginCallback callback, int position)
{
	PluginChain *chain = CurrentPluginChain;
	int			n = chain != NULL ? chain->nsubscribers[callback] : 0;

	if (position < n)
	{
		ActivePlugin *plugin = chain->subscribers[callback][position];
		ShardexecConnectCallback function;
		ConnectChainImpl link;
		PluginCallFrame frame;
		PGconn	   *conn;

		function = callback == PLUGIN_CB_CONNECT ? plugin->plugin.routine->connect :
			plugin->plugin.routine->force_connect;
		link.pub.next = connect_next;
		link.callback = callback;
		link.position = position + 1;
		link.calls = 0;
		link.outerContext = error_context_stack;

		push_plugin_frame(&frame, plugin, callback);
		conn = function(&plugin->plugin, &impl->pub, &link.pub);
		pop_plugin_frame(&frame);

		if (conn != NULL && link.calls == 0)
		{
			PQfinish(conn);
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("plugin \"%s\" returned a connection without calling the next plugin",
							plugin->plugin.name),
					 errdetail("A plugin in the %s pipeline must call chain->next to open a connection.",
							   PluginPipelineName(callback))));
		}
		if (conn != NULL && PQstatus(conn) != CONNECTION_OK)
		{
			PQfinish(conn);
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("plugin \"%s\" returned a connection that is not established",
							plugin->plugin.name)));
		}
		if (conn == NULL && impl->pub.error == NULL)
			impl->pub.error = psprintf("plugin \"%s\" refused the connection",
									   plugin->plugin.name);
		return conn;
	}
	if (callback == PLUGIN_CB_FORCE_CONNECT)
		return run_connect_chain(impl, PLUGIN_CB_CONNECT, 0);
	return default_connect(impl);
}

/*
 * connect_next is ShardexecConnectChain.next: it runs the rest of the
 * chain without the calling plugin's error context.
 */
static PGconn *
connect_next(ShardexecConnectChain *chain, ShardexecConnectInfo *info)
{
	ConnectChainImpl *link = (ConnectChainImpl *) chain;
	ErrorContextCallback *saved = error_context_stack;
	PGconn	   *conn;

	link->calls++;
	info->error = NULL;
	error_context_stack = link->outerContext;
	conn = run_connect_chain((ConnectInfoImpl *) info, link->callback, link->position);
	error_context_stack = saved;
	return conn;
}

/*
 * default_connect opens the connection impl describes and waits for it
 * on the latch (interrupts are honoured), for at most impl->timeoutMs.
 * Returns it, or NULL with impl->pub.error; never raises an error but for
 * an interrupt, and for a non-superuser whose options, as the plugins
 * left them, hold no password (a forced connection then fails instead).
 */
static PGconn *
default_connect(ConnectInfoImpl *impl)
{
	ShardexecConnectInfo *info = &impl->pub;
	PGconn	   *volatile conn;
	volatile PostgresPollingStatusType status = PGRES_POLLING_WRITING;
	TimestampTz deadline;
	instr_time	start;
	instr_time	elapsed;

	if (info->forced &&
		ConnectionPasswordMissing(info->user_id, info->keywords, info->values))
	{
		info->error = psprintf("password is required to connect to node \"%s\"",
							   info->node_name);
		return NULL;
	}
	CheckConnectionPassword(info->user_id, info->node_name, info->keywords, info->values);

	INSTR_TIME_SET_CURRENT(start);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), impl->timeoutMs);
	conn = PQconnectStartParams(info->keywords, info->values, false);
	if (conn == NULL)
	{
		info->error = pstrdup("out of memory");
		return NULL;
	}

	PG_TRY();
	{
		for (;;)
		{
			pgsocket	sock;
			uint32		events;
			uint32		occurred;
			long		timeout;

			if (PQstatus(conn) == CONNECTION_BAD || status == PGRES_POLLING_FAILED)
			{
				info->error = pchomp(PQerrorMessage(conn));
				PQfinish(conn);
				conn = NULL;
				break;
			}
			if (status == PGRES_POLLING_OK)
				break;
			timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (timeout <= 0)
			{
				info->error = psprintf("timeout after %d ms", impl->timeoutMs);
				PQfinish(conn);
				conn = NULL;
				break;
			}
			sock = PQsocket(conn);
			events = status == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
			if (WaitForSockets(1, &sock, &events, &occurred, timeout) > 0)
				status = PQconnectPoll(conn);
		}
	}
	PG_CATCH();
	{
		if (conn != NULL)
			PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (conn != NULL && info->host != NULL)
	{
		HostStats  *stats = host_stats(info->host, info->port);
		double		ms;

		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		ms = INSTR_TIME_GET_MILLISEC(elapsed);
		stats->responseMs = stats->responseMs < 0 ? ms :
			(1 - RESPONSE_EWMA_WEIGHT) * stats->responseMs + RESPONSE_EWMA_WEIGHT * ms;
		tag_connection(conn, info->host, info->port);
	}
	return conn;
}

/*
 * PluginStartConnect is called by connection.c to open a pooled
 * connection to nodeName for the current user, with the libpq options
 * keywords/values it built, when PluginConnectActive(): it chooses the
 * host, runs the connect pipeline and returns the established connection,
 * or raises an error naming the node.
 */
PGconn *
PluginStartConnect(const char *nodeName, const char **keywords, const char **values)
{
	ShardexecNode *node = LookupNodeByName(nodeName, false);
	ConnectInfoImpl impl;
	PGconn	   *volatile conn = NULL;

	init_connect_info(&impl, node, GetUserId(), keywords, values);
	PluginCallDepth++;
	PG_TRY();
	{
		ShardexecHostList *list = GetNodeHostList(node);
		int			index = -1;

		if (PluginConnectionRoute(node) == 1)
		{
			index = SelectHostByStrategy(list, SHARDEXEC_HOST_REPLICA,
										 PluginRouting->statement.reader_strategy);
			if (index >= 0)
				impl.pub.role = SHARDEXEC_HOST_REPLICA;
		}
		if (index < 0)
			index = PrimaryHostIndex(list);
		if (index >= 0 &&
			(impl.pub.host == NULL || strcmp(impl.pub.host, list->hosts[index].host) != 0 ||
			 impl.pub.port != list->hosts[index].port))
			connect_info_set_host(&impl.pub, list->hosts[index].host, list->hosts[index].port);

		conn = run_connect_chain(&impl, PLUGIN_CB_CONNECT, 0);
	}
	PG_FINALLY();
	{
		PluginCallDepth--;
	}
	PG_END_TRY();

	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to node \"%s\"", nodeName),
				 errdetail_internal("%s", impl.pub.error != NULL ? impl.pub.error : "")));
	return conn;
}

/*
 * PluginForceConnect opens a fresh connection, outside the pool, to
 * host:port of node, for role, through the force_connect pipeline, with
 * the options of the node's foreign server and the current user's user
 * mapping (as connection.c builds them), within timeoutMs (<= 0:
 * shardexec.connect_timeout).  Returns it (the caller must PQfinish it),
 * or NULL with *error set.
 */
PGconn *
PluginForceConnect(ShardexecNode *node, const char *host, int port,
				   ShardexecHostRole role, int timeoutMs, char **error)
{
	Oid			userId = GetUserId();
	const char **keywords;
	const char **values;
	ConnectInfoImpl impl;
	PGconn	   *volatile conn = NULL;

	BuildConnectionOptions(node->serverId, userId, node->nodeName, "shardexec", false,
						   &keywords, &values);
	init_connect_info(&impl, node, userId, keywords, values);
	impl.pub.forced = true;
	impl.pub.role = role;
	if (timeoutMs > 0)
		impl.timeoutMs = timeoutMs;
	connect_info_set_host(&impl.pub, host, port);

	PluginCallDepth++;
	PG_TRY();
	{
		conn = run_connect_chain(&impl, PLUGIN_CB_FORCE_CONNECT, 0);
	}
	PG_FINALLY();
	{
		PluginCallDepth--;
	}
	PG_END_TRY();

	if (conn != NULL && !superuser_arg(userId) && !PQconnectionUsedPassword(conn))
	{
		PQfinish(conn);
		conn = NULL;
		impl.pub.error = pstrdup("Non-superuser cannot connect if the node does not request a password.");
	}
	if (conn == NULL)
		*error = impl.pub.error != NULL ? impl.pub.error : pstrdup("unknown error");
	return conn;
}

/*
 * PluginProbeQuery runs sql on conn (from PluginForceConnect) and returns
 * its result if it has rows, within timeoutMs, without raising an error
 * but for an interrupt; NULL with *error set otherwise.  The caller must
 * PQclear the result.
 */
PGresult *
PluginProbeQuery(PGconn *conn, const char *sql, int timeoutMs, char **error)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeoutMs);
	PGresult   *res = NULL;
	PGresult   *next;

	if (!PQsendQuery(conn, sql))
	{
		*error = pchomp(PQerrorMessage(conn));
		return NULL;
	}
	for (;;)
	{
		while (PQisBusy(conn))
		{
			pgsocket	sock = PQsocket(conn);
			uint32		events = WL_SOCKET_READABLE;
			uint32		occurred;
			long		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

			if (timeout <= 0)
			{
				if (res != NULL)
					PQclear(res);
				*error = psprintf("no answer within %d ms", timeoutMs);
				return NULL;
			}
			if (WaitForSockets(1, &sock, &events, &occurred, timeout) > 0 &&
				!PQconsumeInput(conn))
			{
				if (res != NULL)
					PQclear(res);
				*error = pchomp(PQerrorMessage(conn));
				return NULL;
			}
		}
		next = PQgetResult(conn);
		if (next == NULL)
			break;
		if (res != NULL)
			PQclear(res);
		res = next;
	}
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		*error = res != NULL ? pchomp(PQresultErrorMessage(res)) : pstrdup("no result");
		if (res != NULL)
			PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * PluginProbeIsPrimary asks the server at the other end of conn whether
 * it is a primary (not in recovery).  false with *error if it cannot say.
 */
bool
PluginProbeIsPrimary(PGconn *conn, bool *isPrimary, char **error)
{
	PGresult   *res = PluginProbeQuery(conn, "SELECT pg_catalog.pg_is_in_recovery()",
									   ShardexecConnectTimeout * 1000, error);

	if (res == NULL)
		return false;
	*isPrimary = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "f") == 0;
	PQclear(res);
	return true;
}

/* ----------------------------------------------------------------
 * Host lists
 * ----------------------------------------------------------------
 */

/*
 * InvalidateHostLists drops every node's host list; they are built again
 * when next needed.
 */
void
InvalidateHostLists(void)
{
	HASH_SEQ_STATUS scan;
	HostListEntry *entry;

	if (hostLists == NULL)
		return;
	hash_seq_init(&scan, hostLists);
	while ((entry = hash_seq_search(&scan)) != NULL)
		entry->valid = false;
}

/*
 * RefreshNodeHostList has node's host list built again now.
 */
void
RefreshNodeHostList(ShardexecNode *node)
{
	HostListEntry *entry;

	if (hostLists == NULL)
		return;
	entry = hash_search(hostLists, &node->nodeId, HASH_FIND, NULL);
	if (entry != NULL)
		entry->valid = false;
	(void) GetNodeHostList(node);
}

/*
 * GetNodeHostList returns node's host list (primary first), building it
 * through the host_list_provider pipeline if needed.  The list belongs to
 * the cache: it stays valid until the next pipeline call.
 */
ShardexecHostList *
GetNodeHostList(ShardexecNode *node)
{
	HostListEntry *entry;
	bool		found;

	if (hostLists == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(HostListEntry);
		hostLists = hash_create("shardexec host lists", 16, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(hostLists, &node->nodeId, HASH_ENTER, &found);
	if (!found)
	{
		entry->valid = false;
		entry->building = false;
		entry->context = NULL;
		entry->list = NULL;
		entry->expiresAt = 0;
	}
	if (entry->valid && entry->expiresAt != 0 && GetCurrentTimestamp() >= entry->expiresAt)
		entry->valid = false;
	if (!entry->valid && !entry->building)
		build_host_list(entry, node);
	if (entry->list == NULL)
		elog(ERROR, "host list of node \"%s\" is needed while it is being built",
			 node->nodeName);
	return entry->list;
}

/*
 * build_host_list runs the host_list_provider pipeline for node into a new
 * memory context, carries the hosts' states over from the old list,
 * notifies host_list_changed of hosts added and removed, and swaps the
 * new list in.
 */
static void
build_host_list(HostListEntry *entry, ShardexecNode *node)
{
	HostListRequestImpl impl;
	ShardexecHostList *old = entry->list;
	int			i;

	memset(&impl, 0, sizeof(impl));
	impl.context = AllocSetContextCreate(TopMemoryContext, "shardexec host list",
										 ALLOCSET_SMALL_SIZES);
	impl.node = node;
	impl.maxhosts = 4;
	impl.pub.node_id = node->nodeId;
	impl.pub.node_name = MemoryContextStrdup(impl.context, node->nodeName);
	impl.pub.list = MemoryContextAllocZero(impl.context, sizeof(ShardexecHostList));
	impl.pub.list->node_id = node->nodeId;
	impl.pub.list->node_name = impl.pub.node_name;
	impl.pub.list->hosts = MemoryContextAllocZero(impl.context,
												  sizeof(ShardexecHost) * impl.maxhosts);
	impl.pub.add_host = request_add_host;
	impl.pub.force_connect = request_force_connect;

	entry->building = true;
	PluginCallDepth++;
	PG_TRY();
	{
		run_host_list_chain(&impl, 0);
	}
	PG_CATCH();
	{
		PluginCallDepth--;
		entry->building = false;
		MemoryContextDelete(impl.context);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PluginCallDepth--;
	entry->building = false;

	sort_primary_first(impl.pub.list);
	if (old != NULL)
	{
		for (i = 0; i < impl.pub.list->nhosts; i++)
		{
			ShardexecHost *host = &impl.pub.list->hosts[i];
			int			j = find_host(old, host->host, host->port);

			if (j >= 0)
				host->state = old->hosts[j].state;
		}
	}

	entry->list = impl.pub.list;
	if (entry->context != NULL)
	{
		/* tell who cares what changed, then free the old list */
		for (i = 0; old != NULL && i < entry->list->nhosts; i++)
		{
			if (find_host(old, entry->list->hosts[i].host, entry->list->hosts[i].port) < 0)
				notify_host_change(entry->list, &entry->list->hosts[i], SHARDEXEC_HOST_ADDED);
		}
		for (i = 0; old != NULL && i < old->nhosts; i++)
		{
			if (find_host(entry->list, old->hosts[i].host, old->hosts[i].port) < 0)
				notify_host_change(entry->list, &old->hosts[i], SHARDEXEC_HOST_REMOVED);
		}
		MemoryContextDelete(entry->context);
	}
	entry->context = impl.context;
	entry->expiresAt = impl.pub.refresh_ms > 0 ?
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), impl.pub.refresh_ms) : 0;
	entry->valid = true;
}

/*
 * run_host_list_chain runs the host_list_provider subscribers from
 * position on; the end of the chain adds the foreign server's host as
 * the primary.
 */
static void
run_host_list_chain(HostListRequestImpl *impl, int position)
{
	PluginChain *chain = CurrentPluginChain;
	int			n = chain != NULL ? chain->nsubscribers[PLUGIN_CB_HOST_LIST_PROVIDER] : 0;

	if (position < n)
	{
		ActivePlugin *plugin = chain->subscribers[PLUGIN_CB_HOST_LIST_PROVIDER][position];
		HostListChainImpl link;
		PluginCallFrame frame;

		link.pub.next = host_list_next;
		link.position = position + 1;
		link.calls = 0;
		link.outerContext = error_context_stack;
		push_plugin_frame(&frame, plugin, PLUGIN_CB_HOST_LIST_PROVIDER);
		plugin->plugin.routine->host_list_provider(&plugin->plugin, &impl->pub, &link.pub);
		pop_plugin_frame(&frame);
	}
	else
	{
		char	   *host;
		int			port;

		server_host(impl->node, &host, &port);
		if (host != NULL)
			request_add_host(&impl->pub, host, port, SHARDEXEC_HOST_PRIMARY);
	}
}

/*
 * host_list_next is ShardexecHostListChain.next: it runs the rest of the
 * chain without the calling plugin's error context.
 */
static void
host_list_next(ShardexecHostListChain *chain, ShardexecHostListRequest *request)
{
	HostListChainImpl *link = (HostListChainImpl *) chain;
	ErrorContextCallback *saved = error_context_stack;

	link->calls++;
	error_context_stack = link->outerContext;
	run_host_list_chain((HostListRequestImpl *) request, link->position);
	error_context_stack = saved;
}

/*
 * server_host reads the host (or hostaddr) and port of node's foreign
 * server; *host is NULL if it has neither.
 */
static void
server_host(ShardexecNode *node, char **host, int *port)
{
	ForeignServer *server = GetForeignServer(node->serverId);
	ListCell   *lc;

	*host = NULL;
	*port = 5432;
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "host") == 0 ||
			(strcmp(def->defname, "hostaddr") == 0 && *host == NULL))
			*host = defGetString(def);
		else if (strcmp(def->defname, "port") == 0)
			*port = atoi(defGetString(def));
	}
}

/*
 * request_add_host is ShardexecHostListRequest.add_host: it appends a host
 * to the list being built, or updates the role of one already there.
 * There is one primary: adding another demotes the first to a replica.
 */
static ShardexecHost *
request_add_host(ShardexecHostListRequest *request, const char *host, int port,
				 ShardexecHostRole role)
{
	HostListRequestImpl *impl = (HostListRequestImpl *) request;
	ShardexecHostList *list = request->list;
	ShardexecHost *entry;
	int			i = find_host(list, host, port);

	if (host == NULL || host[0] == '\0' || port < 1 || port > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid host \"%s\" port %d for node \"%s\"",
						host != NULL ? host : "", port, request->node_name)));
	if (role == SHARDEXEC_HOST_PRIMARY)
	{
		for (i = 0; i < list->nhosts; i++)
		{
			if (list->hosts[i].role == SHARDEXEC_HOST_PRIMARY)
				list->hosts[i].role = SHARDEXEC_HOST_REPLICA;
		}
		i = find_host(list, host, port);
	}
	if (i >= 0)
	{
		list->hosts[i].role = role;
		return &list->hosts[i];
	}
	if (list->nhosts == impl->maxhosts)
	{
		impl->maxhosts *= 2;
		list->hosts = repalloc(list->hosts, sizeof(ShardexecHost) * impl->maxhosts);
	}
	entry = &list->hosts[list->nhosts++];
	memset(entry, 0, sizeof(*entry));
	entry->host = MemoryContextStrdup(impl->context, host);
	entry->port = port;
	entry->role = role;
	entry->state = SHARDEXEC_HOST_UP;
	entry->weight = 1;
	entry->response_ms = -1;
	return entry;
}

/*
 * request_force_connect is ShardexecHostListRequest.force_connect.
 */
static PGconn *
request_force_connect(ShardexecHostListRequest *request, const char *host, int port,
					  char **error)
{
	HostListRequestImpl *impl = (HostListRequestImpl *) request;

	return PluginForceConnect(impl->node, host, port, SHARDEXEC_HOST_PRIMARY, 0, error);
}

/*
 * find_host returns the index of host:port in list, or -1.
 */
static int
find_host(const ShardexecHostList *list, const char *host, int port)
{
	int			i;

	if (list == NULL || host == NULL)
		return -1;
	for (i = 0; i < list->nhosts; i++)
	{
		if (list->hosts[i].port == port && strcmp(list->hosts[i].host, host) == 0)
			return i;
	}
	return -1;
}

/* sort_primary_first moves the primary to the front, keeping the others' order */
static void
sort_primary_first(ShardexecHostList *list)
{
	int			p = PrimaryHostIndex(list);

	if (p > 0)
	{
		ShardexecHost primary = list->hosts[p];

		memmove(&list->hosts[1], &list->hosts[0], sizeof(ShardexecHost) * p);
		list->hosts[0] = primary;
	}
}

/*
 * PrimaryHostIndex returns the index of list's primary, or -1 if it has
 * none.
 */
int
PrimaryHostIndex(const ShardexecHostList *list)
{
	int			i;

	for (i = 0; i < list->nhosts; i++)
	{
		if (list->hosts[i].role == SHARDEXEC_HOST_PRIMARY)
			return i;
	}
	return -1;
}

/*
 * notify_host_change runs the host_list_changed pipeline.
 */
/* the arguments of a host_list_changed call */
typedef struct HostChangeCall
{
	const ShardexecHostList *list;
	const ShardexecHost *host;
	ShardexecHostChange change;
} HostChangeCall;

static void
call_host_list_changed(ActivePlugin *plugin, void *arg)
{
	HostChangeCall *call = (HostChangeCall *) arg;

	plugin->plugin.routine->host_list_changed(&plugin->plugin, call->list, call->host,
											  call->change);
}

static void
notify_host_change(const ShardexecHostList *list, const ShardexecHost *host,
				   ShardexecHostChange change)
{
	HostChangeCall call = {list, host, change};

	for_each_subscriber(PLUGIN_CB_HOST_LIST_CHANGED, false, call_host_list_changed, &call);
}

/*
 * SetHostState records that host:port of node is up or down, and tells
 * host_list_changed if that is news.
 */
void
SetHostState(ShardexecNode *node, const char *host, int port, ShardexecHostState state)
{
	ShardexecHostList *list = GetNodeHostList(node);
	int			i = find_host(list, host, port);

	if (i < 0 || list->hosts[i].state == state)
		return;
	list->hosts[i].state = state;
	notify_host_change(list, &list->hosts[i],
					   state == SHARDEXEC_HOST_DOWN ? SHARDEXEC_HOST_WENT_DOWN :
					   SHARDEXEC_HOST_CAME_UP);
}

/*
 * SetPrimaryHost makes host:port (which must be in the list) node's
 * primary, the old primary a replica, and tells host_list_changed.
 */
void
SetPrimaryHost(ShardexecNode *node, const char *host, int port)
{
	ShardexecHostList *list = GetNodeHostList(node);
	int			i = find_host(list, host, port);
	int			p = PrimaryHostIndex(list);

	if (i < 0 || i == p)
		return;
	if (p >= 0)
		list->hosts[p].role = SHARDEXEC_HOST_REPLICA;
	list->hosts[i].role = SHARDEXEC_HOST_PRIMARY;
	list->hosts[i].state = SHARDEXEC_HOST_UP;
	sort_primary_first(list);
	notify_host_change(list, &list->hosts[0], SHARDEXEC_HOST_PROMOTED);
}

/* ----------------------------------------------------------------
 * Host selection
 * ----------------------------------------------------------------
 */

/*
 * SelectHostByStrategy returns the index in list of the host for role
 * chosen by strategy, or -1 if there is none (no host of that role is
 * up).  With no strategy (NULL or empty), the first host of the role that
 * is up.  A strategy that no active plugin accepts is an error.
 */
int
SelectHostByStrategy(const ShardexecHostList *list, ShardexecHostRole role,
					 const char *strategy)
{
	PluginChain *chain = CurrentPluginChain;
	int			n = chain != NULL ? chain->nsubscribers[PLUGIN_CB_GET_HOST_BY_STRATEGY] : 0;
	volatile bool accepted = false;
	volatile int result = -1;
	int			i;

	/* the statistics the strategies may use */
	for (i = 0; i < list->nhosts; i++)
	{
		HostStats  *stats = host_stats(list->hosts[i].host, list->hosts[i].port);

		list->hosts[i].open_connections = stats->openConnections;
		list->hosts[i].response_ms = stats->responseMs;
	}

	if (strategy == NULL || strategy[0] == '\0')
	{
		for (i = 0; i < list->nhosts; i++)
		{
			if (list->hosts[i].role == role && list->hosts[i].state == SHARDEXEC_HOST_UP)
				return i;
		}
		return -1;
	}

	PluginCallDepth++;
	PG_TRY();
	{
		for (i = 0; i < n && result < 0; i++)
		{
			ActivePlugin *plugin = chain->subscribers[PLUGIN_CB_GET_HOST_BY_STRATEGY][i];
			const ShardexecPluginRoutine *routine = plugin->plugin.routine;
			PluginCallFrame frame;
			bool		accepts = true;

			if (routine->accepts_strategy != NULL)
			{
				push_plugin_frame(&frame, plugin, PLUGIN_CB_ACCEPTS_STRATEGY);
				accepts = routine->accepts_strategy(&plugin->plugin, role, strategy);
				pop_plugin_frame(&frame);
			}
			if (!accepts)
				continue;
			accepted = true;
			push_plugin_frame(&frame, plugin, PLUGIN_CB_GET_HOST_BY_STRATEGY);
			result = routine->get_host_by_strategy(&plugin->plugin, list, role, strategy);
			pop_plugin_frame(&frame);
			if (result >= list->nhosts)
				ereport(ERROR,
						(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
						 errmsg("plugin \"%s\" chose host %d of a list of %d",
								plugin->plugin.name, result, list->nhosts)));
		}
	}
	PG_FINALLY();
	{
		PluginCallDepth--;
	}
	PG_END_TRY();

	if (!accepted)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("no active plugin accepts the host selection strategy \"%s\"", strategy),
				 errhint("Add a plugin that provides it (host_selection provides random, round_robin, least_connections and fastest_response) to shardexec.plugins.")));
	return result;
}

/* ----------------------------------------------------------------
 * Routing and pooled connections (connection.c's call sites)
 * ----------------------------------------------------------------
 */

/*
 * PluginReaderRoute returns the route of node's connections for a
 * statement routed to replicas: 1 if the node has a replica that is up,
 * else 0 (the primary's connections).
 */
int32
PluginReaderRoute(ShardexecNode *node)
{
	ShardexecHostList *list = GetNodeHostList(node);
	int			i;

	for (i = 0; i < list->nhosts; i++)
	{
		if (list->hosts[i].role == SHARDEXEC_HOST_REPLICA &&
			list->hosts[i].state == SHARDEXEC_HOST_UP)
			return 1;
	}
	return 0;
}

/* the votes of connection_changed */
typedef struct ConnectionVote
{
	const ShardexecConnectionChange *change;
	ShardexecOldConnectionAction action;	/* KEEP from anyone wins */
} ConnectionVote;

static void
call_connection_changed(ActivePlugin *plugin, void *arg)
{
	ConnectionVote *vote = (ConnectionVote *) arg;
	ShardexecOldConnectionAction action;

	action = plugin->plugin.routine->connection_changed(&plugin->plugin, vote->change);
	if (action == SHARDEXEC_CONNECTION_KEEP ||
		(action == SHARDEXEC_CONNECTION_CLOSE && vote->action == SHARDEXEC_CONNECTION_NO_OPINION))
		vote->action = action;
}

/*
 * PluginConnectionOutdated says whether conn, an idle pooled connection
 * of nodeName on route (0: primary, 1: replicas), should be replaced
 * because it no longer goes where node's host list says: its host left
 * the list or went down, or (route 0) is no longer the primary.  Before
 * it is replaced, connection_changed may keep it.
 */
bool
PluginConnectionOutdated(PGconn *conn, const char *nodeName, int32 route)
{
	ShardexecNode *node = LookupNodeByName(nodeName, true);
	ShardexecHostList *list;
	ShardexecConnectionChange change;
	ConnectionVote vote;
	const char *port;
	ConnectionTag *tag;
	int			i;

	if (node == NULL || PQhost(conn) == NULL)
		return false;
	list = GetNodeHostList(node);
	memset(&change, 0, sizeof(change));
	change.node_id = node->nodeId;
	change.node_name = node->nodeName;
	change.role = route == 1 ? SHARDEXEC_HOST_REPLICA : SHARDEXEC_HOST_PRIMARY;
	change.old_host = PQhost(conn);
	port = PQport(conn);
	change.old_port = (port != NULL && port[0] != '\0') ? atoi(port) : 5432;

	i = find_host(list, change.old_host, change.old_port);
	tag = PQinstanceData(conn, host_stats_event);
	if ((tag == NULL && chain_has(PLUGIN_CB_CONNECT)) ||
		(tag != NULL && tag->generation != PluginChainGeneration))
		change.reason = "the plugin chain changed since it was made";
	else if (i < 0)
		change.reason = "its host is no longer in the node's host list";
	else if (list->hosts[i].state == SHARDEXEC_HOST_DOWN)
		change.reason = "its host went down";
	else if (route == 0 && list->hosts[i].role != SHARDEXEC_HOST_PRIMARY)
		change.reason = "its host is no longer the node's primary";
	else
		return false;

	vote.change = &change;
	vote.action = SHARDEXEC_CONNECTION_NO_OPINION;
	for_each_subscriber(PLUGIN_CB_CONNECTION_CHANGED, false, call_connection_changed, &vote);

	if (vote.action == SHARDEXEC_CONNECTION_KEEP)
		return false;
	elog(DEBUG1, "shardexec: replacing a connection to node \"%s\" at %s:%d: %s",
		 node->nodeName, change.old_host, change.old_port, change.reason);
	return true;
}

/* ----------------------------------------------------------------
 * execute (the executor's call sites)
 * ----------------------------------------------------------------
 */

/*
 * PluginBeginExecutionSlow is PluginBeginExecution past its test: it runs
 * execute_statement for the statement's units (a List of ExecutionUnit),
 * allocating in the current memory context, which must last until the
 * execution ends.  Returns NULL when nothing more is to be done.
 */
PluginExecution *
PluginBeginExecutionSlow(List *units)
{
	PluginChain *chain = CurrentPluginChain;
	PluginExecution *execution = palloc0(sizeof(PluginExecution));
	ListCell   *lc;

	execution->nunits = list_length(units);
	execution->statement.nunits = execution->nunits;
	execution->statement.read_only = true;
	foreach(lc, units)
	{
		if (((ExecutionUnit *) lfirst(lc))->modifies)
			execution->statement.read_only = false;
	}
	execution->statement.in_transaction_block = IsTransactionBlock();
	execution->statement.transaction_read_only = XactReadOnly;

	for_each_subscriber(PLUGIN_CB_EXECUTE_STATEMENT, false, call_execute_statement,
						&execution->statement);
	/* only what only reads may go to replicas */
	execution->useReplicas = execution->statement.use_replicas &&
		execution->statement.read_only;
	if (execution->statement.reader_strategy != NULL)
		execution->statement.reader_strategy = pstrdup(execution->statement.reader_strategy);

	execution->unitCallbacks = chain != NULL &&
		(chain->nsubscribers[PLUGIN_CB_EXECUTE_BEGIN] > 0 ||
		 chain->nsubscribers[PLUGIN_CB_EXECUTE_END] > 0);
	if (!execution->useReplicas && !execution->unitCallbacks)
	{
		pfree(execution);
		return NULL;
	}
	if (execution->unitCallbacks)
	{
		execution->units = palloc0(sizeof(ShardexecUnitInfo) * Max(execution->nunits, 1));
		execution->startTimes = palloc0(sizeof(instr_time) * Max(execution->nunits, 1));
		execution->begun = palloc0(Max(execution->nunits, 1));
		execution->attempts = palloc0(sizeof(int) * Max(execution->nunits, 1));
	}
	return execution;
}

/*
 * PluginRouteConnections is called by the executor right before it claims
 * a statement's connections (with execution, which may be NULL) and right
 * after (with NULL): while set, connection.c pools and opens the
 * connections of a statement routed to replicas on route 1.
 */
void
PluginRouteConnections(PluginExecution *execution)
{
	PluginRouting = (execution != NULL && execution->useReplicas) ? execution : NULL;
}

static void
call_execute_statement(ActivePlugin *plugin, void *arg)
{
	plugin->plugin.routine->execute_statement(&plugin->plugin, (ShardexecStatementInfo *) arg);
}

static void
call_execute_begin(ActivePlugin *plugin, void *arg)
{
	plugin->plugin.routine->execute_begin(&plugin->plugin, (ShardexecUnitInfo *) arg);
}

static void
call_execute_end(ActivePlugin *plugin, void *arg)
{
	plugin->plugin.routine->execute_end(&plugin->plugin, (ShardexecUnitInfo *) arg);
}

/*
 * run_unit_callbacks runs execute_begin (outermost first) or execute_end
 * (innermost first) for unit.
 */
static void
run_unit_callbacks(ShardexecUnitInfo *unit, PluginCallback callback)
{
	if (callback == PLUGIN_CB_EXECUTE_BEGIN)
		for_each_subscriber(callback, false, call_execute_begin, unit);
	else
		for_each_subscriber(callback, true, call_execute_end, unit);
}

/*
 * PluginExecuteBegin is called by the executor just before unit (number
 * index of the statement) is sent to nodeName on conn.  A plugin may fail
 * the unit by raising an error.
 */
void
PluginExecuteBegin(PluginExecution *execution, int index, ExecutionUnit *unit,
				   const char *nodeName, PGconn *conn)
{
	ShardexecUnitInfo *info;
	const char *port;

	if (!execution->unitCallbacks || index < 0 || index >= execution->nunits)
		return;
	info = &execution->units[index];
	memset(info, 0, sizeof(*info));
	info->node_id = unit->nodeId;
	info->node_name = nodeName;
	info->shard_id = unit->shardId;
	info->sql = unit->sql;
	info->modifies = unit->modifies;
	info->host = PQhost(conn) != NULL ?
		MemoryContextStrdup(GetMemoryChunkContext(execution), PQhost(conn)) : NULL;
	port = PQport(conn);
	info->port = (port != NULL && port[0] != '\0') ? atoi(port) : 5432;
	info->statement = &execution->statement;
	info->attempt = execution->attempts[index];
	execution->begun[index] = 1;
	INSTR_TIME_SET_CURRENT(execution->startTimes[index]);
	run_unit_callbacks(info, PLUGIN_CB_EXECUTE_BEGIN);
}

/*
 * unit_end runs execute_end for unit index, once.
 */
static void
unit_end(PluginExecution *execution, int index, uint64 rows, uint64 affected)
{
	ShardexecUnitInfo *info = &execution->units[index];
	instr_time	elapsed;

	execution->begun[index] = 2;
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, execution->startTimes[index]);
	info->elapsed_ms = INSTR_TIME_GET_MILLISEC(elapsed);
	info->rows = rows;
	info->rows_affected = affected;
	run_unit_callbacks(info, PLUGIN_CB_EXECUTE_END);
}

/*
 * PluginExecuteEnd is called by the executor after the last result of
 * unit index, which received rows rows and whose command reported
 * affected rows.  A plugin may still fail the statement by raising an
 * error.
 */
void
PluginExecuteEnd(PluginExecution *execution, int index, uint64 rows, uint64 affected)
{
	if (!execution->unitCallbacks || index < 0 || index >= execution->nunits ||
		execution->begun[index] != 1)
		return;
	unit_end(execution, index, rows, affected);
}

/*
 * PluginExecuteFailed is called by the executor when unit index failed
 * (lost: its connection was lost).  Unless retryable, that is after the
 * cleanup and just before the executor raises its error; a plugin may
 * raise its own instead.  With retryable (the executor can send the unit
 * again on another connection), returns whether a plugin asked for that;
 * the unit's next execute_begin counts one more attempt.
 */
bool
PluginExecuteFailed(PluginExecution *execution, int index, uint64 rows, bool lost,
					const char *message, const char *sqlstate, bool retryable)
{
	ShardexecUnitInfo *info;

	if (!execution->unitCallbacks || index < 0 || index >= execution->nunits ||
		execution->begun[index] != 1)
		return false;
	info = &execution->units[index];
	info->failed = true;
	info->connection_lost = lost;
	info->error_message = message;
	info->sqlstate = sqlstate;
	info->retryable = retryable;
	info->retry = false;
	unit_end(execution, index, rows, 0);
	if (!retryable || !info->retry)
		return false;
	execution->attempts[index]++;
	return true;
}

/* ----------------------------------------------------------------
 * SQL
 * ----------------------------------------------------------------
 */

/*
 * shardexec_host_list implements shardexec.host_list(node_name): the host
 * list of one node (NULL: every node) as this backend sees it, with its
 * statistics.
 */
Datum
shardexec_host_list(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *nodes;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	(void) PluginCallbacksActive(0);
	if (PG_ARGISNULL(0))
		nodes = ShardexecNodeList();
	else
		nodes = list_make1(LookupNodeByName(text_to_cstring(PG_GETARG_TEXT_PP(0)), false));

	foreach(lc, nodes)
	{
		ShardexecNode *node = lfirst(lc);
		ShardexecHostList *list = GetNodeHostList(node);
		int			i;

		for (i = 0; i < list->nhosts; i++)
		{
			ShardexecHost *host = &list->hosts[i];
			HostStats  *stats = host_stats(host->host, host->port);
			Datum		values[7];
			bool		nulls[7] = {false, false, false, false, false, false, false};

			values[0] = CStringGetTextDatum(node->nodeName);
			values[1] = CStringGetTextDatum(host->host);
			values[2] = Int32GetDatum(host->port);
			values[3] = CStringGetTextDatum(host->role == SHARDEXEC_HOST_PRIMARY ?
											"primary" : "replica");
			values[4] = CStringGetTextDatum(host->state == SHARDEXEC_HOST_UP ? "up" : "down");
			values[5] = Int32GetDatum(stats->openConnections);
			if (stats->responseMs >= 0)
				values[6] = Float8GetDatum(stats->responseMs);
			else
				nulls[6] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
