/*-------------------------------------------------------------------------
 *
 * plugin.h
 *		  Plugins: the registry, the backend's plugin chain, and the entry
 *		  points of the pipelines for the connection and executor layers.
 *
 * src/plugin/plugin_registry.c holds register_plugin, unregister_plugin
 * and the handler checks; plugin_cache.c builds the backend's chain of
 * active plugins (shardexec.plugins) and drops it when the registry or the
 * setting changes; pipelines.c runs the pipelines and holds the host lists
 * and connection routing; builtin_*.c are the plugins CREATE EXTENSION
 * registers.  The interface plugins see is plugin_api.h.
 *
 * The connection and executor layers call the inline functions below at
 * a handful of call sites; each one first tests a bit of
 * PluginActiveCallbacks, so that a pipeline no active plugin subscribes
 * to costs a load and a branch.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_PLUGIN_H
#define SHARDEXEC_PLUGIN_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"
#include "utils/guc.h"

#include "shardexec/executor.h"
#include "shardexec/metadata.h"
#include "shardexec/plugin_api.h"

/* the callbacks of a routine, one bit each in PluginActiveCallbacks */
typedef enum PluginCallback
{
	PLUGIN_CB_CONNECT,
	PLUGIN_CB_FORCE_CONNECT,
	PLUGIN_CB_EXECUTE_STATEMENT,
	PLUGIN_CB_EXECUTE_BEGIN,
	PLUGIN_CB_EXECUTE_END,
	PLUGIN_CB_HOST_LIST_PROVIDER,
	PLUGIN_CB_CONNECTION_CHANGED,
	PLUGIN_CB_HOST_LIST_CHANGED,
	PLUGIN_CB_ACCEPTS_STRATEGY,
	PLUGIN_CB_GET_HOST_BY_STRATEGY
} PluginCallback;

#define PLUGIN_CB_COUNT 10
#define PLUGIN_BIT(cb) (1U << (cb))

/* what makes shardexec open connections through src/plugin */
#define PLUGIN_CONNECT_BITS \
	(PLUGIN_BIT(PLUGIN_CB_CONNECT) | PLUGIN_BIT(PLUGIN_CB_HOST_LIST_PROVIDER) | \
	 PLUGIN_BIT(PLUGIN_CB_CONNECTION_CHANGED))
#define PLUGIN_EXECUTE_BITS \
	(PLUGIN_BIT(PLUGIN_CB_EXECUTE_STATEMENT) | PLUGIN_BIT(PLUGIN_CB_EXECUTE_BEGIN) | \
	 PLUGIN_BIT(PLUGIN_CB_EXECUTE_END))

/* one active plugin of the chain */
typedef struct ActivePlugin
{
	ShardexecPlugin plugin;		/* handed to the callbacks */
	Oid			handler;
	int			gucPosition;	/* in shardexec.plugins */
} ActivePlugin;

/* the backend's chain, in plugin_cache.c */
typedef struct PluginChain
{
	MemoryContext context;		/* holds all of it */
	int			nplugins;
	ActivePlugin **plugins;		/* in chain order */
	int			nsubscribers[PLUGIN_CB_COUNT];
	ActivePlugin **subscribers[PLUGIN_CB_COUNT];	/* in chain order */
} PluginChain;

/* routing of a statement's connections, see pipelines.c */
typedef struct PluginExecution PluginExecution;

/* plugin_cache.c */
extern bool PluginCacheValid;
extern uint32 PluginActiveCallbacks;
extern PluginChain *CurrentPluginChain;
extern int	PluginCallDepth;
extern uint64 PluginChainGeneration;
extern void InitPlugins(void);
extern void RefreshPluginCache(void);
extern void InvalidatePluginCache(void);
extern bool CheckPluginsSetting(char **newval, void **extra, GucSource source);
extern void AssignPluginsSetting(const char *newval, void *extra);
extern Oid	PluginCatalogRelid(void);
extern const char *PluginPipelineName(PluginCallback callback);

/* plugin_registry.c */
extern const ShardexecPluginRoutine *CallPluginHandler(Oid handler, const char *pluginName);
extern void CheckPluginHandlerSignature(Oid handler);
extern char *PluginOptionString(Jsonb *options, const char *key);
extern bool PluginOptionNumber(Jsonb *options, const char *key, double *value);
extern bool PluginOptionBool(Jsonb *options, const char *key, bool *value);
extern void PluginCheckOptionKeys(Jsonb *options, const char *pluginKind,
								  const char *const *allowed);

/* pipelines.c: call sites in connection.c */
extern PluginExecution *PluginRouting;
extern int32 PluginReaderRoute(ShardexecNode *node);
extern PGconn *PluginStartConnect(const char *nodeName, const char **keywords,
								  const char **values);
extern bool PluginConnectionOutdated(PGconn *conn, const char *nodeName, int32 route);

/* pipelines.c: call sites in distributed_executor.c */
extern PluginExecution *PluginBeginExecutionSlow(List *units);
extern void PluginRouteConnections(PluginExecution *execution);
extern void PluginExecuteBegin(PluginExecution *execution, int index,
							   ExecutionUnit *unit, const char *nodeName, PGconn *conn);
extern void PluginExecuteEnd(PluginExecution *execution, int index, uint64 rows,
							 uint64 affected);
extern bool PluginExecuteFailed(PluginExecution *execution, int index, uint64 rows,
								bool lost, const char *message, const char *sqlstate,
								bool retryable);

/* pipelines.c: for the built-in plugins and the SQL functions */
extern ShardexecHostList *GetNodeHostList(ShardexecNode *node);
extern void InvalidateHostLists(void);
extern void RefreshNodeHostList(ShardexecNode *node);
extern int	PrimaryHostIndex(const ShardexecHostList *list);
extern void SetHostState(ShardexecNode *node, const char *host, int port,
						 ShardexecHostState state);
extern void SetPrimaryHost(ShardexecNode *node, const char *host, int port);
extern PGconn *PluginForceConnect(ShardexecNode *node, const char *host, int port,
								  ShardexecHostRole role, int timeoutMs, char **error);
extern int	SelectHostByStrategy(const ShardexecHostList *list, ShardexecHostRole role,
								 const char *strategy);
extern PGresult *PluginProbeQuery(PGconn *conn, const char *sql, int timeoutMs,
								  char **error);
extern bool PluginProbeIsPrimary(PGconn *conn, bool *isPrimary, char **error);

/*
 * PluginCallbacksActive says whether an active plugin has any of the
 * callbacks in bits.  The chain is rebuilt first if the registry or
 * shardexec.plugins changed.
 */
static inline bool
PluginCallbacksActive(uint32 bits)
{
	if (unlikely(!PluginCacheValid))
		RefreshPluginCache();
	return (PluginActiveCallbacks & bits) != 0;
}

/*
 * PluginConnectActive says whether connections must be opened through
 * PluginStartConnect: a plugin subscribes to connect or provides hosts,
 * or a statement is being routed to replicas.
 */
static inline bool
PluginConnectActive(void)
{
	return PluginRouting != NULL || PluginCallbacksActive(PLUGIN_CONNECT_BITS);
}

/*
 * PluginConnectionRoute returns the pool route of node's connections for
 * the statement claiming them now: 0 for the primary, 1 for replicas.
 */
static inline int32
PluginConnectionRoute(ShardexecNode *node)
{
	return PluginRouting == NULL ? 0 : PluginReaderRoute(node);
}

/*
 * PluginBeginExecution starts the execute pipeline of a statement's units
 * (a list of ExecutionUnit); NULL when no active plugin subscribes to it.
 */
static inline PluginExecution *
PluginBeginExecution(List *units)
{
	if (!PluginCallbacksActive(PLUGIN_EXECUTE_BITS))
		return NULL;
	return PluginBeginExecutionSlow(units);
}

#endif							/* SHARDEXEC_PLUGIN_H */
