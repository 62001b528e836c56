/*-------------------------------------------------------------------------
 *
 * shardexec_plugin_example.c
 *		  A third-party shardexec plugin that subscribes to every pipeline.
 *
 * It is built outside shardexec, with PGXS, against the installed
 * plugin_api.h only, and shows what a plugin outside the repository can
 * do; the tests use it to check that every pipeline reaches such a
 * plugin.  It counts its calls per callback (plugin_example_calls()) and,
 * depending on its options:
 *
 *	 application_name	connect: sets the connection option, so the
 *						node's pg_stat_activity shows it
 *	 fail_in			raises an error in that callback (connect,
 *						force_connect, execute_statement, execute_begin,
 *						execute_end, host_list_provider)
 *	 extra_replica		host_list_provider: adds "host:port" as a replica
 *	 keep_connections	connection_changed: answers keep (else no opinion)
 *	 replicas			execute_statement: sends read-only statements to
 *						replicas, with strategy "example_last"
 *
 * and it provides the host selection strategy "example_last": the last
 * host of the wanted role that is up.
 *
 * plugin_example_noop_handler is a second plugin of the library, on the
 * execute pipeline only, that does nothing: for overhead measurements.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "extension/shardexec/plugin_api.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(plugin_example_handler);
PG_FUNCTION_INFO_V1(plugin_example_noop_handler);
PG_FUNCTION_INFO_V1(plugin_example_not_a_routine);
PG_FUNCTION_INFO_V1(plugin_example_future_version);
PG_FUNCTION_INFO_V1(plugin_example_calls);
PG_FUNCTION_INFO_V1(plugin_example_reset);

enum
{
	CB_CONNECT,
	CB_FORCE_CONNECT,
	CB_EXECUTE_STATEMENT,
	CB_EXECUTE_BEGIN,
	CB_EXECUTE_END,
	CB_HOST_LIST_PROVIDER,
	CB_CONNECTION_CHANGED,
	CB_HOST_LIST_CHANGED,
	CB_ACCEPTS_STRATEGY,
	CB_GET_HOST_BY_STRATEGY,
	CB_COUNT
};

static const char *const callbackNames[CB_COUNT] = {
	"connect", "force_connect", "execute_statement", "execute_begin", "execute_end",
	"host_list_provider", "connection_changed", "host_list_changed",
	"accepts_strategy", "get_host_by_strategy"
};

static int64 calls[CB_COUNT];

/* the parsed options, the plugin's private data */
typedef struct ExampleOptions
{
	char	   *applicationName;
	int			failIn;			/* a callback, or -1 */
	char	   *extraHost;
	int			extraPort;
	bool		keepConnections;
	bool		replicas;
} ExampleOptions;

static char *
string_option(Jsonb *options, const char *key)
{
	JsonbValue	value;

	if (getKeyJsonValueFromContainer(&options->root, key, strlen(key), &value) == NULL)
		return NULL;
	if (value.type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of plugin_example must be a string", key)));
	return pnstrdup(value.val.string.val, value.val.string.len);
}

static bool
bool_option(Jsonb *options, const char *key)
{
	JsonbValue	value;

	if (getKeyJsonValueFromContainer(&options->root, key, strlen(key), &value) == NULL)
		return false;
	if (value.type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of plugin_example must be true or false", key)));
	return value.val.boolean;
}

static ExampleOptions *
parse_options(Jsonb *options)
{
	static const char *const keys[] = {"application_name", "fail_in", "extra_replica",
	"keep_connections", "replicas", NULL};
	ExampleOptions *parsed = palloc0(sizeof(ExampleOptions));
	JsonbIterator *it = JsonbIteratorInit(&options->root);
	JsonbValue	value;
	JsonbIteratorToken token;
	char	   *failIn;
	char	   *extra;
	int			level = 0;
	int			i;

	while ((token = JsonbIteratorNext(&it, &value, true)) != WJB_DONE)
	{
		bool		known = false;

		if (token == WJB_BEGIN_OBJECT)
			level++;
		else if (token == WJB_END_OBJECT)
			level--;
		if (token != WJB_KEY || level != 1)
			continue;
		for (i = 0; keys[i] != NULL; i++)
			known |= ((int) strlen(keys[i]) == value.val.string.len &&
					  strncmp(keys[i], value.val.string.val, value.val.string.len) == 0);
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%.*s\" of plugin_example",
							(int) value.val.string.len, value.val.string.val)));
	}

	parsed->applicationName = string_option(options, "application_name");
	parsed->failIn = -1;
	failIn = string_option(options, "fail_in");
	if (failIn != NULL)
	{
		for (i = 0; i < CB_COUNT; i++)
		{
			if (strcmp(callbackNames[i], failIn) == 0)
				parsed->failIn = i;
		}
		if (parsed->failIn < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("plugin_example cannot fail in \"%s\"", failIn)));
	}
	extra = string_option(options, "extra_replica");
	if (extra != NULL)
	{
		char	   *colon = strrchr(extra, ':');

		if (colon == NULL || atoi(colon + 1) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("extra_replica must be \"host:port\"")));
		parsed->extraHost = pnstrdup(extra, colon - extra);
		parsed->extraPort = atoi(colon + 1);
	}
	parsed->keepConnections = bool_option(options, "keep_connections");
	parsed->replicas = bool_option(options, "replicas");
	return parsed;
}

/* count counts a call of callback, and fails it if the options say so */
static void
count(ShardexecPlugin *self, int callback)
{
	ExampleOptions *options = (ExampleOptions *) self->private_data;

	calls[callback]++;
	if (options->failIn == callback)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("plugin_example fails in %s as asked", callbackNames[callback])));
}

static void
example_validate(Jsonb *options)
{
	(void) parse_options(options);
}

static void *
example_init(const char *pluginName, Jsonb *options)
{
	return parse_options(options);
}

static PGconn *
example_connect(ShardexecPlugin *self, ShardexecConnectInfo *info,
				ShardexecConnectChain *chain)
{
	ExampleOptions *options = (ExampleOptions *) self->private_data;

	count(self, CB_CONNECT);
	if (options->applicationName != NULL)
		info->set_option(info, "application_name", options->applicationName);
	return chain->next(chain, info);
}

static PGconn *
example_force_connect(ShardexecPlugin *self, ShardexecConnectInfo *info,
					  ShardexecConnectChain *chain)
{
	count(self, CB_FORCE_CONNECT);
	return chain->next(chain, info);
}

static void
example_execute_statement(ShardexecPlugin *self, ShardexecStatementInfo *statement)
{
	ExampleOptions *options = (ExampleOptions *) self->private_data;

	count(self, CB_EXECUTE_STATEMENT);
	if (options->replicas && statement->read_only)
	{
		statement->use_replicas = true;
		statement->reader_strategy = "example_last";
	}
}

static void
example_execute_begin(ShardexecPlugin *self, ShardexecUnitInfo *unit)
{
	count(self, CB_EXECUTE_BEGIN);
}

static void
example_execute_end(ShardexecPlugin *self, ShardexecUnitInfo *unit)
{
	count(self, CB_EXECUTE_END);
}

static void
example_host_list_provider(ShardexecPlugin *self, ShardexecHostListRequest *request,
						   ShardexecHostListChain *chain)
{
	ExampleOptions *options = (ExampleOptions *) self->private_data;

	count(self, CB_HOST_LIST_PROVIDER);
	chain->next(chain, request);
	if (options->extraHost != NULL)
		request->add_host(request, options->extraHost, options->extraPort,
						  SHARDEXEC_HOST_REPLICA);
}

static ShardexecOldConnectionAction
example_connection_changed(ShardexecPlugin *self, const ShardexecConnectionChange *change)
{
	ExampleOptions *options = (ExampleOptions *) self->private_data;

	count(self, CB_CONNECTION_CHANGED);
	return options->keepConnections ? SHARDEXEC_CONNECTION_KEEP :
		SHARDEXEC_CONNECTION_NO_OPINION;
}

static void
example_host_list_changed(ShardexecPlugin *self, const ShardexecHostList *list,
						  const ShardexecHost *host, ShardexecHostChange change)
{
	count(self, CB_HOST_LIST_CHANGED);
}

static bool
example_accepts_strategy(ShardexecPlugin *self, ShardexecHostRole role, const char *strategy)
{
	count(self, CB_ACCEPTS_STRATEGY);
	return strcmp(strategy, "example_last") == 0;
}

static int
example_get_host_by_strategy(ShardexecPlugin *self, const ShardexecHostList *list,
							 ShardexecHostRole role, const char *strategy)
{
	int			i;

	count(self, CB_GET_HOST_BY_STRATEGY);
	for (i = list->nhosts - 1; i >= 0; i--)
	{
		if (list->hosts[i].role == role && list->hosts[i].state == SHARDEXEC_HOST_UP)
			return i;
	}
	return -1;
}

static const ShardexecPluginRoutine example_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "example third-party plugin: counts its calls in every pipeline",
	.default_weight = 200,
	.validate_options = example_validate,
	.init = example_init,
	.connect = example_connect,
	.force_connect = example_force_connect,
	.execute_statement = example_execute_statement,
	.execute_begin = example_execute_begin,
	.execute_end = example_execute_end,
	.host_list_provider = example_host_list_provider,
	.connection_changed = example_connection_changed,
	.host_list_changed = example_host_list_changed,
	.accepts_strategy = example_accepts_strategy,
	.get_host_by_strategy = example_get_host_by_strategy,
};

Datum
plugin_example_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&example_routine);
}

/*
 * plugin_example_noop_handler: a plugin on the execute pipeline only, whose
 * callbacks do nothing; the overhead benchmark chains three of them.
 */
static void
noop_execute(ShardexecPlugin *self, ShardexecUnitInfo *unit)
{
}

static const ShardexecPluginRoutine noop_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "does nothing around every execution unit (benchmarks)",
	.default_weight = 200,
	.execute_begin = noop_execute,
	.execute_end = noop_execute,
};

Datum
plugin_example_noop_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&noop_routine);
}

/* a handler with the right signature that returns something else */
Datum
plugin_example_not_a_routine(PG_FUNCTION_ARGS)
{
	static const int64 not_a_routine[8] = {42};

	PG_RETURN_POINTER(not_a_routine);
}

/* a routine of a plugin API version that does not exist yet */
Datum
plugin_example_future_version(PG_FUNCTION_ARGS)
{
	static ShardexecPluginRoutine future = {
		SHARDEXEC_PLUGIN_ROUTINE_INIT,
		.description = "from the future",
	};

	future.api_version = 99;
	PG_RETURN_POINTER(&future);
}

Datum
plugin_example_calls(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < CB_COUNT; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(callbackNames[i]);
		values[1] = Int64GetDatum(calls[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
plugin_example_reset(PG_FUNCTION_ARGS)
{
	memset(calls, 0, sizeof(calls));
	PG_RETURN_VOID();
}
