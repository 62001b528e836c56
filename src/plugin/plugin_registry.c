/*-------------------------------------------------------------------------
 *
 * plugin_registry.c
 *		  register_plugin, unregister_plugin, the plugins view, and the
 *		  checks of plugin handlers and options.
 *
 * A plugin is registered under a name with a handler function, a weight
 * and options (a JSON object), in the catalog table shardexec.plugin.
 * register_plugin refuses, at once rather than at first use, anything
 * that would fail later:
 *
 *	 - a handler that is not a C function (internal) RETURNS internal: the
 *	   declared signature is checked before the function is called, so a
 *	   function of another kind (an FDW or table AM handler, a support
 *	   function) is never called with an argument it does not expect;
 *	 - a handler whose result is not a shardexec plugin routine (magic
 *	   number), or is one of an API version this shardexec does not know;
 *	 - options that are not a JSON object, or that the plugin's validator
 *	   rejects (a plugin without a validator takes no options).
 *
 * Calling the handler is as safe as the C code behind it: like CREATE
 * FUNCTION ... LANGUAGE C, registering is for superusers, or for roles a
 * superuser granted EXECUTE on register_plugin to (it is revoked from
 * PUBLIC, like add_node).  The registry is written as the extension's
 * owner, so such a role needs no privilege on the table itself.
 *
 * The option helpers at the end are for the built-in plugins' validators.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "shardexec/metadata.h"
#include "shardexec/plugin.h"

/* the size of a version 1 routine: the last member of version 1 */
#define ROUTINE_V1_SIZE \
	(offsetof(ShardexecPluginRoutine, get_host_by_strategy) + \
	 sizeof(ShardexecGetHostByStrategyCallback))

PG_FUNCTION_INFO_V1(shardexec_register_plugin);
PG_FUNCTION_INFO_V1(shardexec_unregister_plugin);
PG_FUNCTION_INFO_V1(shardexec_plugin_status);

typedef struct HandlerContext
{
	Oid			handler;
	const char *pluginName;
	const char *what;
} HandlerContext;

static void handler_error_context(void *arg);
static void check_plugin_name(const char *name);
static bool plugin_exists(const char *name);

/*
 * CheckPluginHandlerSignature raises an error unless handler is a C
 * function (internal) RETURNS internal that returns one row.
 */
void
CheckPluginHandlerSignature(Oid handler)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	char	   *name;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(handler));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %u does not exist", handler)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	name = format_procedure(handler);

	if (proc->prorettype != INTERNALOID || proc->proretset)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("function %s is not a shardexec plugin handler", name),
				 errdetail("It returns %s%s; a plugin handler returns internal.",
						   proc->proretset ? "a set of " : "",
						   format_type_be(proc->prorettype)),
				 errhint("A plugin handler is declared as handler(internal) RETURNS internal LANGUAGE C.")));
	if (proc->pronargs != 1 || proc->proargtypes.values[0] != INTERNALOID)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("function %s is not a shardexec plugin handler", name),
				 errdetail("A plugin handler takes one argument, of type internal."),
				 errhint("A plugin handler is declared as handler(internal) RETURNS internal LANGUAGE C.")));
	if (proc->prolang != ClanguageId)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("function %s is not a shardexec plugin handler", name),
				 errdetail("It is written in %s; a plugin handler is a C function.",
						   get_language_name(proc->prolang, false))));
	ReleaseSysCache(tuple);
}

/*
 * CallPluginHandler calls handler and returns the routine it gives,
 * after checking that it is a shardexec plugin routine of a version this
 * shardexec supports.  The handler's signature must have been checked.
 * pluginName (may be NULL) is only for error messages.
 */
const ShardexecPluginRoutine *
CallPluginHandler(Oid handler, const char *pluginName)
{
	const ShardexecPluginRoutine *routine;
	ErrorContextCallback callback;
	HandlerContext arg;

	arg.handler = handler;
	arg.pluginName = pluginName;
	arg.what = "calling its handler";
	callback.callback = handler_error_context;
	callback.arg = &arg;
	callback.previous = error_context_stack;
	error_context_stack = &callback;

	routine = (const ShardexecPluginRoutine *)
		DatumGetPointer(OidFunctionCall1(handler, PointerGetDatum(NULL)));

	if (routine == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("function %s did not return a shardexec plugin routine",
						format_procedure(handler)),
				 errdetail("It returned a null pointer.")));
	if (routine->magic != SHARDEXEC_PLUGIN_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("function %s did not return a shardexec plugin routine",
						format_procedure(handler)),
				 errdetail("The structure it returned does not begin with the shardexec plugin magic number.")));
	if (routine->api_version < 1 || routine->api_version > SHARDEXEC_PLUGIN_API_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function %s returned a shardexec plugin routine of an incompatible version",
						format_procedure(handler)),
				 errdetail("The plugin was built for plugin API version %d; this shardexec supports version %d.",
						   routine->api_version, SHARDEXEC_PLUGIN_API_VERSION),
				 errhint("Rebuild the plugin against this shardexec's plugin_api.h.")));
	if (routine->struct_size < ROUTINE_V1_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function %s returned a shardexec plugin routine of an incompatible version",
						format_procedure(handler)),
				 errdetail("Its routine has %d bytes; version %d has %d.",
						   (int) routine->struct_size, (int) routine->api_version,
						   (int) ROUTINE_V1_SIZE)));

	error_context_stack = callback.previous;
	return routine;
}

/*
 * handler_error_context names the plugin (or handler) being checked.
 */
static void
handler_error_context(void *arg)
{
	HandlerContext *context = (HandlerContext *) arg;

	if (context->pluginName != NULL)
		errcontext("shardexec plugin \"%s\", while %s", context->pluginName, context->what);
	else
		errcontext("shardexec plugin handler %s", format_procedure(context->handler));
}

/*
 * check_plugin_name: a plugin's name is a lowercase identifier, so that it
 * can be written in shardexec.plugins without quotes.
 */
static void
check_plugin_name(const char *name)
{
	const char *p;
	bool		ok = name[0] != '\0' && strlen(name) < NAMEDATALEN &&
		!(name[0] >= '0' && name[0] <= '9');

	for (p = name; *p != '\0' && ok; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid plugin name \"%s\"", name),
				 errdetail("A plugin name has 1 to %d lowercase letters, digits and underscores, and does not begin with a digit.",
						   NAMEDATALEN - 1)));
}

/*
 * plugin_exists says whether a plugin is registered as name.
 */
static bool
plugin_exists(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		found;

	values[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT 1 FROM shardexec.plugin WHERE plugin_name = $1",
							  1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read shardexec.plugin");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * shardexec_register_plugin implements shardexec.register_plugin(
 * plugin_name, handler, weight, options): it checks the handler and the
 * options (see the file header) and records the plugin.  A NULL weight
 * takes the routine's default weight.
 */
Datum
shardexec_register_plugin(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			handler;
	int			weight;
	Jsonb	   *options;
	const ShardexecPluginRoutine *routine;
	Oid			argtypes[4] = {TEXTOID, REGPROCOID, INT4OID, JSONBOID};
	Datum		values[4];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("plugin_name and handler must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	handler = PG_GETARG_OID(1);
	options = PG_ARGISNULL(3) ?
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))) :
		PG_GETARG_JSONB_P(3);

	check_plugin_name(name);
	LockRelationOid(PluginCatalogRelid(), ShareRowExclusiveLock);
	if (plugin_exists(name))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("plugin \"%s\" already exists", name),
				 errhint("Unregister it first with shardexec.unregister_plugin().")));

	CheckPluginHandlerSignature(handler);
	routine = CallPluginHandler(handler, name);

	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options of plugin \"%s\" must be a JSON object", name)));
	if (routine->validate_options != NULL)
	{
		ErrorContextCallback callback;
		HandlerContext arg;

		arg.handler = handler;
		arg.pluginName = name;
		arg.what = "validating its options";
		callback.callback = handler_error_context;
		callback.arg = &arg;
		callback.previous = error_context_stack;
		error_context_stack = &callback;
		routine->validate_options(options);
		error_context_stack = callback.previous;
	}
	else if (JB_ROOT_COUNT(options) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("plugin \"%s\" takes no options", name),
				 errdetail("Its handler %s has no options validator.",
						   format_procedure(handler))));

	weight = PG_ARGISNULL(2) ? routine->default_weight : PG_GETARG_INT32(2);

	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(handler);
	values[2] = Int32GetDatum(weight);
	values[3] = JsonbPGetDatum(options);
	ExecuteCatalogWrite("INSERT INTO shardexec.plugin (plugin_name, handler, weight, options) "
						"VALUES ($1, $2, $3, $4)", 4, argtypes, values);
	InvalidatePluginCache();
	PG_RETURN_VOID();
}

/*
 * shardexec_unregister_plugin implements shardexec.unregister_plugin(
 * plugin_name).  A plugin still named in shardexec.plugins is skipped,
 * with a warning, wherever the setting names it.
 */
Datum
shardexec_unregister_plugin(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];

	LockRelationOid(PluginCatalogRelid(), ShareRowExclusiveLock);
	if (!plugin_exists(name))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("plugin \"%s\" does not exist", name)));
	values[0] = CStringGetTextDatum(name);
	ExecuteCatalogWrite("DELETE FROM shardexec.plugin WHERE plugin_name = $1",
						1, argtypes, values);
	InvalidatePluginCache();
	PG_RETURN_VOID();
}

/*
 * shardexec_plugin_status returns, for every registered plugin, what the
 * shardexec.plugins view adds to the registry: the description and
 * pipelines of its routine, whether it is active in this session and its
 * position in the chain.
 */
Datum
shardexec_plugin_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;
	uint64		r;

	InitMaterializedSRF(fcinfo, 0);
	RefreshPluginCache();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT plugin_name, handler::oid FROM shardexec.plugin ORDER BY plugin_name",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read shardexec.plugin");

	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	row = SPI_tuptable->vals[r];
		bool		isnull;
		char	   *name = TextDatumGetCString(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull));
		Oid			handler = DatumGetObjectId(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull));
		const ShardexecPluginRoutine *routine;
		Datum		pipelines[SHARDEXEC_PIPELINE_COUNT];
		int			npipelines = 0;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		int			position = 0;
		MemoryContext oldContext;

		if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(handler)))
		{
			/* the handler was dropped: the plugin is skipped wherever active */
			values[0] = CStringGetTextDatum(name);
			values[1] = CStringGetTextDatum("(its handler function no longer exists)");
			nulls[2] = true;
			values[3] = BoolGetDatum(false);
			nulls[4] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			continue;
		}
		CheckPluginHandlerSignature(handler);
		routine = CallPluginHandler(handler, name);

#define ADD_PIPELINE(cond, pipeline) \
		if (cond) pipelines[npipelines++] = CStringGetTextDatum(pipeline)
		ADD_PIPELINE(routine->connect != NULL, "connect");
		ADD_PIPELINE(routine->force_connect != NULL, "force_connect");
		ADD_PIPELINE(routine->execute_statement != NULL || routine->execute_begin != NULL ||
					 routine->execute_end != NULL, "execute");
		ADD_PIPELINE(routine->host_list_provider != NULL, "host_list_provider");
		ADD_PIPELINE(routine->connection_changed != NULL, "connection_changed");
		ADD_PIPELINE(routine->host_list_changed != NULL, "host_list_changed");
		ADD_PIPELINE(routine->accepts_strategy != NULL, "accepts_strategy");
		ADD_PIPELINE(routine->get_host_by_strategy != NULL, "get_host_by_strategy");
#undef ADD_PIPELINE

		if (CurrentPluginChain != NULL && PluginCacheValid)
		{
			for (i = 0; i < CurrentPluginChain->nplugins; i++)
			{
				if (strcmp(CurrentPluginChain->plugins[i]->plugin.name, name) == 0)
					position = i + 1;
			}
		}

		oldContext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
		values[0] = CStringGetTextDatum(name);
		if (routine->description != NULL)
			values[1] = CStringGetTextDatum(routine->description);
		else
			nulls[1] = true;
		values[2] = PointerGetDatum(construct_array(pipelines, npipelines, TEXTOID,
													-1, false, TYPALIGN_INT));
		values[3] = BoolGetDatum(position > 0);
		if (position > 0)
			values[4] = Int32GetDatum(position);
		else
			nulls[4] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(oldContext);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * plugin_option looks key up in options, a JSON object; false if absent.
 */
static bool
plugin_option(Jsonb *options, const char *key, JsonbValue *value)
{
	if (options == NULL || !JB_ROOT_IS_OBJECT(options))
		return false;
	return getKeyJsonValueFromContainer(&options->root, key, strlen(key), value) != NULL;
}

/*
 * PluginOptionString returns the string option key of options, or NULL
 * if it is absent; another type is an error.
 */
char *
PluginOptionString(Jsonb *options, const char *key)
{
	JsonbValue	value;

	if (!plugin_option(options, key, &value))
		return NULL;
	if (value.type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a string", key)));
	return pnstrdup(value.val.string.val, value.val.string.len);
}

/*
 * PluginOptionNumber sets *result to the number option key of options and
 * returns true, or returns false if it is absent; another type is an
 * error.
 */
bool
PluginOptionNumber(Jsonb *options, const char *key, double *result)
{
	JsonbValue	value;

	if (!plugin_option(options, key, &value))
		return false;
	if (value.type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a number", key)));
	*result = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
												 NumericGetDatum(value.val.numeric)));
	return true;
}

/*
 * PluginOptionBool: as PluginOptionNumber, for a boolean.
 */
bool
PluginOptionBool(Jsonb *options, const char *key, bool *result)
{
	JsonbValue	value;

	if (!plugin_option(options, key, &value))
		return false;
	if (value.type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be true or false", key)));
	*result = value.val.boolean;
	return true;
}

/*
 * PluginCheckOptionKeys raises an error if options has a key that is not
 * in allowed (NULL-terminated).  pluginKind names the plugin in the
 * message.
 */
void
PluginCheckOptionKeys(Jsonb *options, const char *pluginKind, const char *const *allowed)
{
	JsonbIterator *it;
	JsonbValue	value;
	JsonbIteratorToken token;
	int			level = 0;

	it = JsonbIteratorInit(&options->root);
	while ((token = JsonbIteratorNext(&it, &value, true)) != WJB_DONE)
	{
		if (token == WJB_BEGIN_OBJECT || token == WJB_BEGIN_ARRAY)
			level++;
		else if (token == WJB_END_OBJECT || token == WJB_END_ARRAY)
			level--;
		else if (token == WJB_KEY && level == 1)
		{
			char	   *key = pnstrdup(value.val.string.val, value.val.string.len);
			const char *const *a;
			bool		known = false;
			StringInfoData list;

			for (a = allowed; *a != NULL; a++)
				known |= strcmp(*a, key) == 0;
			if (known)
				continue;
			initStringInfo(&list);
			for (a = allowed; *a != NULL; a++)
				appendStringInfo(&list, "%s%s", list.len > 0 ? ", " : "", *a);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\" of the %s plugin", key, pluginKind),
					 list.len > 0 ? errhint("Its options are: %s.", list.data) :
					 errhint("It takes no options.")));
		}
	}
}
