/*-------------------------------------------------------------------------
 *
 * plugin_cache.c
 *		  The backend's chain of active plugins, and when it is rebuilt.
 *
 * shardexec.plugins names the active plugins; shardexec.plugin (the
 * registry) gives each name a handler, a weight and options.  The chain is
 * the active plugins ordered by weight (lower runs outermost), ties by
 * their order in the setting; for every callback of the routine struct it
 * keeps the subscribers in chain order, and PluginActiveCallbacks has a
 * bit for each callback with at least one.  The connection and executor
 * layers test that bit before anything else (plugin.h), so a pipeline no
 * active plugin subscribes to costs a load and a branch.
 *
 * Loading.  Building the chain calls each active plugin's handler (fmgr
 * loads its library once per backend and caches the function), checks
 * the routine again (the function may have been replaced since it was
 * registered), copies its options and calls its init, all in one memory
 * context that is swapped in only when everything succeeded, as a cache
 * entry should be.  A name in the setting that is not registered, or
 * whose handler function was dropped, is skipped with a warning.
 *
 * Invalidation.  The chain is dropped (PluginCacheValid = false) when
 *	 - shardexec.plugins changes in this backend (its assign hook): SET,
 *	   ALTER ROLE/DATABASE ... SET at the next connection, or ALTER SYSTEM
 *	   and a reload, which every running backend processes between
 *	   statements;
 *	 - the registry changes: every write to shardexec.plugin fires a
 *	   statement trigger (plugin_catalog_trigger) that sends a relcache
 *	   invalidation of the table, which every backend processes at its
 *	   next command; the relcache callback below drops the chain;
 *	 - the extension is dropped (the same callback).
 * The chain is rebuilt lazily, at the next pipeline check, inside a
 * transaction.  With shardexec.plugins empty nothing is read at all.
 *
 * A chain is never freed while one of its plugins runs (PluginCallDepth):
 * a rebuild that would happen then is put off until the pipeline returns.
 *
 * The host lists of the nodes (pipelines.c) depend on the chain's
 * providers and on the node catalog: they are dropped with the chain, and
 * on a relcache invalidation of shardexec.node (add_node, remove_node,
 * add_replica send one).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "shardexec/metadata.h"
#include "shardexec/plugin.h"
#include "shardexec/shardexec.h"

/* columns of shardexec.plugin, as in the install script */
#define Anum_plugin_plugin_name 1
#define Anum_plugin_handler 2
#define Anum_plugin_weight 3
#define Anum_plugin_options 4
#define Natts_plugin 5

bool		PluginCacheValid = false;
uint32		PluginActiveCallbacks = 0;
PluginChain *CurrentPluginChain = NULL;
int			PluginCallDepth = 0;
uint64		PluginChainGeneration = 0;

/* relations whose invalidation concerns us; InvalidOid until known */
static Oid	pluginRelid = InvalidOid;
static Oid	nodeRelid = InvalidOid;

static const char *const pipelineNames[PLUGIN_CB_COUNT] = {
	"connect",
	"force_connect",
	"execute",					/* execute_statement */
	"execute",					/* execute_begin */
	"execute",					/* execute_end */
	"host_list_provider",
	"connection_changed",
	"host_list_changed",
	"accepts_strategy",
	"get_host_by_strategy"
};

/* one row of the registry, while the chain is built */
typedef struct RegistryRow
{
	char	   *name;
	Oid			handler;
	int			weight;
	Jsonb	   *options;
} RegistryRow;

/* errcontext of a plugin's init */
typedef struct InitContext
{
	const char *pluginName;
} InitContext;

static void plugin_relcache_callback(Datum arg, Oid relid);
static void plugin_xact_callback(XactEvent event, void *arg);
static void plugin_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									SubTransactionId parentSubid, void *arg);
static List *read_registry(Oid relid, MemoryContext context);
static PluginChain *build_chain(List *names);
static int	active_plugin_cmp(const void *a, const void *b);
static void init_error_context(void *arg);
static void set_chain(PluginChain *chain);

PG_FUNCTION_INFO_V1(shardexec_plugin_catalog_trigger);

/*
 * InitPlugins registers the invalidation and transaction callbacks.
 * Called once from _PG_init.
 */
void
InitPlugins(void)
{
	CacheRegisterRelcacheCallback(plugin_relcache_callback, (Datum) 0);
	RegisterXactCallback(plugin_xact_callback, NULL);
	RegisterSubXactCallback(plugin_subxact_callback, NULL);
}

/*
 * PluginPipelineName returns the name of the pipeline callback belongs
 * to, as users know it (execute_begin is "execute").
 */
const char *
PluginPipelineName(PluginCallback callback)
{
	return pipelineNames[callback];
}

/*
 * InvalidatePluginCache drops this backend's chain; the next pipeline
 * check builds it again.
 */
void
InvalidatePluginCache(void)
{
	PluginCacheValid = false;
}

/*
 * plugin_relcache_callback drops the chain when the registry changes (or
 * everything is invalidated) and the host lists when the nodes change.
 */
static void
plugin_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || (OidIsValid(pluginRelid) && relid == pluginRelid))
		PluginCacheValid = false;
	if (!OidIsValid(relid) || (OidIsValid(nodeRelid) && relid == nodeRelid))
		InvalidateHostLists();
}

/*
 * plugin_xact_callback and plugin_subxact_callback forget the routing of
 * a statement that failed while claiming its connections.
 */
static void
plugin_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		PluginRouting = NULL;
}

/*
 * plugin_subxact_callback: see plugin_xact_callback.
 */
static void
plugin_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		PluginRouting = NULL;
}

/*
 * CheckPluginsSetting is the check hook of shardexec.plugins: a list of
 * plugin names (identifiers), each at most once.  Whether they are
 * registered is not known here (the setting may be checked outside a
 * transaction, or in another database); unknown names are reported when
 * the chain is built.
 */
bool
CheckPluginsSetting(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names;
	ListCell   *lc;

	if (!SplitIdentifierString(raw, ',', &names))
	{
		GUC_check_errdetail("List syntax is invalid.");
		pfree(raw);
		list_free(names);
		return false;
	}
	foreach(lc, names)
	{
		ListCell   *other;

		for (other = list_head(names); other != lc; other = lnext(names, other))
		{
			if (strcmp(lfirst(other), lfirst(lc)) == 0)
			{
				GUC_check_errdetail("Plugin \"%s\" is listed more than once.",
									(char *) lfirst(lc));
				pfree(raw);
				list_free(names);
				return false;
			}
		}
	}
	pfree(raw);
	list_free(names);
	return true;
}

/*
 * AssignPluginsSetting is the assign hook of shardexec.plugins: the chain
 * is built again at the next pipeline check.
 */
void
AssignPluginsSetting(const char *newval, void *extra)
{
	PluginCacheValid = false;
}

/*
 * PluginCatalogRelid returns the OID of shardexec.plugin; the extension
 * must be loaded.
 */
Oid
PluginCatalogRelid(void)
{
	Oid			relid = get_relname_relid("plugin", ShardexecSchemaId());

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("shardexec catalog relation \"plugin\" does not exist"),
				 errhint("Drop and recreate the extension.")));
	return relid;
}

/*
 * RefreshPluginCache builds the chain again if it was dropped.  It does
 * nothing while a plugin runs (the old chain stays in use until the
 * pipeline returns) or outside a transaction (the chain then counts as
 * empty).  Errors of handlers and init callbacks are raised, and the
 * chain stays invalid, so the next statement tries again.
 */
void
RefreshPluginCache(void)
{
	char	   *raw;
	List	   *names;

	if (PluginCacheValid || PluginCallDepth > 0)
		return;

	if (ShardexecPlugins == NULL || ShardexecPlugins[0] == '\0')
	{
		set_chain(NULL);
		PluginCacheValid = true;
		return;
	}
	if (!IsTransactionState() || !ShardexecExtensionLoaded())
	{
		/* nothing can be looked up: no plugin runs, try again later */
		PluginActiveCallbacks = 0;
		return;
	}

	raw = pstrdup(ShardexecPlugins);
	if (!SplitIdentifierString(raw, ',', &names))
		elog(ERROR, "invalid list syntax in shardexec.plugins");

	set_chain(build_chain(names));
	PluginCacheValid = true;
	list_free(names);
	pfree(raw);
}

/*
 * set_chain makes chain (NULL: none) the backend's chain, frees the old
 * one and drops the host lists built by its providers.
 */
static void
set_chain(PluginChain *chain)
{
	int			i;

	if (CurrentPluginChain != NULL)
		MemoryContextDelete(CurrentPluginChain->context);
	CurrentPluginChain = chain;
	PluginChainGeneration++;
	PluginActiveCallbacks = 0;
	if (chain != NULL)
	{
		for (i = 0; i < PLUGIN_CB_COUNT; i++)
		{
			if (chain->nsubscribers[i] > 0)
				PluginActiveCallbacks |= PLUGIN_BIT(i);
		}
	}
	InvalidateHostLists();
}

/*
 * read_registry returns every row of shardexec.plugin (relid) as a list of
 * RegistryRow, allocated in context.  It is read with a plain catalog
 * scan, not SPI: this runs inside the executor and the connection code.
 */
static List *
read_registry(Oid relid, MemoryContext context)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	List	   *rows = NIL;
	MemoryContext oldContext;

	rel = table_open(relid, AccessShareLock);
	if (RelationGetDescr(rel)->natts != Natts_plugin)
		elog(ERROR, "shardexec.plugin has %d columns, %d expected",
			 RelationGetDescr(rel)->natts, Natts_plugin);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		values[Natts_plugin];
		bool		isnull[Natts_plugin];
		RegistryRow *row;

		heap_deform_tuple(tuple, RelationGetDescr(rel), values, isnull);
		if (isnull[Anum_plugin_plugin_name - 1] || isnull[Anum_plugin_handler - 1] ||
			isnull[Anum_plugin_weight - 1] || isnull[Anum_plugin_options - 1])
			continue;
		oldContext = MemoryContextSwitchTo(context);
		row = palloc0(sizeof(RegistryRow));
		row->name = TextDatumGetCString(values[Anum_plugin_plugin_name - 1]);
		row->handler = DatumGetObjectId(values[Anum_plugin_handler - 1]);
		row->weight = DatumGetInt32(values[Anum_plugin_weight - 1]);
		row->options = DatumGetJsonbPCopy(values[Anum_plugin_options - 1]);
		rows = lappend(rows, row);
		MemoryContextSwitchTo(oldContext);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return rows;
}

/*
 * build_chain builds the chain of the plugins named in names (in the
 * setting's order), all in a new memory context that is deleted if
 * anything fails.
 */
static PluginChain *
build_chain(List *names)
{
	MemoryContext context;
	MemoryContext oldContext;
	PluginChain *volatile chain = NULL;

	pluginRelid = PluginCatalogRelid();
	nodeRelid = get_relname_relid("node", ShardexecSchemaId());

	context = AllocSetContextCreate(TopMemoryContext, "shardexec plugin chain",
									ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		List	   *rows = read_registry(pluginRelid, context);
		ListCell   *lc;
		int			position = 0;
		int			cb;
		int			i;

		oldContext = MemoryContextSwitchTo(context);
		chain = palloc0(sizeof(PluginChain));
		chain->context = context;
		chain->plugins = palloc0(sizeof(ActivePlugin *) * Max(list_length(names), 1));

		foreach(lc, names)
		{
			const char *name = lfirst(lc);
			RegistryRow *row = NULL;
			ActivePlugin *ap;
			ListCell   *rc;

			position++;
			foreach(rc, rows)
			{
				if (strcmp(((RegistryRow *) lfirst(rc))->name, name) == 0)
					row = lfirst(rc);
			}
			if (row == NULL)
			{
				ereport(WARNING,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("plugin \"%s\" named in shardexec.plugins is not registered",
								name),
						 errhint("Register it with shardexec.register_plugin(), or remove it from shardexec.plugins.")));
				continue;
			}
			if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(row->handler)))
			{
				ereport(WARNING,
						(errcode(ERRCODE_UNDEFINED_FUNCTION),
						 errmsg("the handler of plugin \"%s\" no longer exists, the plugin is skipped",
								name),
						 errhint("Unregister the plugin with shardexec.unregister_plugin(), or remove it from shardexec.plugins.")));
				continue;
			}
			ap = palloc0(sizeof(ActivePlugin));
			ap->handler = row->handler;
			ap->gucPosition = position;
			ap->plugin.name = row->name;
			ap->plugin.weight = row->weight;
			ap->plugin.options = row->options;
			ap->plugin.routine = CallPluginHandler(row->handler, row->name);
			if (ap->plugin.routine->init != NULL)
			{
				ErrorContextCallback callback;
				InitContext arg;

				arg.pluginName = row->name;
				callback.callback = init_error_context;
				callback.arg = &arg;
				callback.previous = error_context_stack;
				error_context_stack = &callback;
				ap->plugin.private_data = ap->plugin.routine->init(row->name, row->options);
				error_context_stack = callback.previous;
			}
			chain->plugins[chain->nplugins++] = ap;
		}

		/* lower weight outermost, ties in the setting's order */
		qsort(chain->plugins, chain->nplugins, sizeof(ActivePlugin *), active_plugin_cmp);

		for (cb = 0; cb < PLUGIN_CB_COUNT; cb++)
		{
			chain->subscribers[cb] = palloc0(sizeof(ActivePlugin *) * Max(chain->nplugins, 1));
			for (i = 0; i < chain->nplugins; i++)
			{
				const ShardexecPluginRoutine *r = chain->plugins[i]->plugin.routine;
				bool		subscribed = false;

				switch ((PluginCallback) cb)
				{
					case PLUGIN_CB_CONNECT:
						subscribed = r->connect != NULL;
						break;
					case PLUGIN_CB_FORCE_CONNECT:
						subscribed = r->force_connect != NULL;
						break;
					case PLUGIN_CB_EXECUTE_STATEMENT:
						subscribed = r->execute_statement != NULL;
						break;
					case PLUGIN_CB_EXECUTE_BEGIN:
						subscribed = r->execute_begin != NULL;
						break;
					case PLUGIN_CB_EXECUTE_END:
						subscribed = r->execute_end != NULL;
						break;
					case PLUGIN_CB_HOST_LIST_PROVIDER:
						subscribed = r->host_list_provider != NULL;
						break;
					case PLUGIN_CB_CONNECTION_CHANGED:
						subscribed = r->connection_changed != NULL;
						break;
					case PLUGIN_CB_HOST_LIST_CHANGED:
						subscribed = r->host_list_changed != NULL;
						break;
					case PLUGIN_CB_ACCEPTS_STRATEGY:
						subscribed = r->accepts_strategy != NULL;
						break;
					case PLUGIN_CB_GET_HOST_BY_STRATEGY:
						subscribed = r->get_host_by_strategy != NULL;
						break;
				}
				if (subscribed)
					chain->subscribers[cb][chain->nsubscribers[cb]++] = chain->plugins[i];
			}
		}
		MemoryContextSwitchTo(oldContext);
	}
	PG_CATCH();
	{
		MemoryContextDelete(context);
		PG_RE_THROW();
	}
	PG_END_TRY();

	return chain;
}

/*
 * active_plugin_cmp orders the chain: by weight, then by position in the
 * setting.
 */
static int
active_plugin_cmp(const void *a, const void *b)
{
	const ActivePlugin *pa = *(ActivePlugin *const *) a;
	const ActivePlugin *pb = *(ActivePlugin *const *) b;

	if (pa->plugin.weight != pb->plugin.weight)
		return pa->plugin.weight < pb->plugin.weight ? -1 : 1;
	return (pa->gucPosition > pb->gucPosition) - (pa->gucPosition < pb->gucPosition);
}

/*
 * init_error_context names the plugin whose init failed.
 */
static void
init_error_context(void *arg)
{
	InitContext *context = (InitContext *) arg;

	errcontext("shardexec plugin \"%s\", while loading it", context->pluginName);
}

/*
 * shardexec_plugin_catalog_trigger is the statement trigger of
 * shardexec.plugin: any write to the registry (register_plugin,
 * unregister_plugin, a superuser's own UPDATE, a restore) makes every
 * backend rebuild its chain.
 */
Datum
shardexec_plugin_catalog_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("plugin_catalog_trigger must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	PluginCacheValid = false;
	PG_RETURN_POINTER(NULL);
}
