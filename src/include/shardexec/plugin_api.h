/*-------------------------------------------------------------------------
 *
 * plugin_api.h
 *		  The interface between shardexec and its plugins.
 *
 * This header is installed (make install puts it in
 * $(pg_config --includedir-server)/extension/shardexec/plugin_api.h), so
 * that a plugin can live in any shared library built with PGXS:
 *
 *	 #include "postgres.h"
 *	 #include "fmgr.h"
 *	 #include "extension/shardexec/plugin_api.h"
 *
 * and, in its Makefile, PG_CPPFLAGS = -I$(libpq_srcdir) (for libpq-fe.h).
 *
 * A plugin is a C function declared in SQL as
 *
 *	 CREATE FUNCTION my_handler(internal) RETURNS internal
 *	 AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
 *
 * that returns a pointer to a ShardexecPluginRoutine (usually a static
 * const struct), the same way an FDW handler returns an FdwRoutine.  It is
 * registered with shardexec.register_plugin(name, handler, weight,
 * options), which calls the handler at once and refuses anything that is
 * not a routine of a version this shardexec supports, and made active
 * with the setting shardexec.plugins = 'name, name'.  The handler's
 * argument is unused (NULL); the handler must not depend on it.
 *
 * Pipelines.  A routine subscribes to a pipeline by setting its callback;
 * NULL means "not subscribed", and a pipeline no active plugin subscribes
 * to costs nothing.  The active plugins form a chain ordered by weight
 * (lower runs outermost), ties by their order in shardexec.plugins.
 *
 *	 connect, force_connect	  chain of responsibility: each callback gets
 *							  the connection request and a chain, may change
 *							  the request (options, host), and calls
 *							  chain->next(chain, info), which runs the next
 *							  plugin and finally shardexec's own connect.
 *							  force_connect (a fresh connection outside the
 *							  pool) ends in the connect pipeline.
 *	 execute				  wraps each execution unit; because units run
 *							  asynchronously, the wrapper is split into
 *							  execute_statement (once per statement, before
 *							  its connections are chosen), execute_begin
 *							  (just before a unit is sent, outermost first)
 *							  and execute_end (after its last result, or its
 *							  failure, innermost first).  execute_end of a
 *							  unit that lost its connection may ask for the
 *							  unit to be sent again (see ShardexecUnitInfo).
 *	 host_list_provider		  chain: builds a node's host list.
 *	 host_list_changed		  notification, every subscriber.
 *	 connection_changed		  notification with a suggested action.
 *	 accepts_strategy,
 *	 get_host_by_strategy	  host selection: the first plugin that accepts
 *							  the strategy and returns a host wins.
 *
 * Errors.  A callback may raise an error with ereport(ERROR); it fails the
 * statement, with a context line naming the plugin and the pipeline.
 *
 * Memory.  Callbacks run in a short-lived memory context; what must last
 * belongs in the plugin's private data (made by init in a context that
 * lives until the plugin cache is rebuilt) or in memory the plugin manages
 * itself (TopMemoryContext).
 *
 * Versioning.  api_version is SHARDEXEC_PLUGIN_API_VERSION at build time;
 * shardexec refuses a routine with another magic, a version it does not
 * know, or a smaller struct_size than that version's.  New members are only
 * ever appended.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_PLUGIN_API_H
#define SHARDEXEC_PLUGIN_API_H

#include "libpq-fe.h"
#include "utils/jsonb.h"

#define SHARDEXEC_PLUGIN_MAGIC			0x53585047	/* "SXPG" */
#define SHARDEXEC_PLUGIN_API_VERSION	1

/* the pipelines, for messages and for shardexec.plugins' pipelines column */
typedef enum ShardexecPipeline
{
	SHARDEXEC_PIPELINE_CONNECT,
	SHARDEXEC_PIPELINE_FORCE_CONNECT,
	SHARDEXEC_PIPELINE_EXECUTE,
	SHARDEXEC_PIPELINE_HOST_LIST_PROVIDER,
	SHARDEXEC_PIPELINE_CONNECTION_CHANGED,
	SHARDEXEC_PIPELINE_HOST_LIST_CHANGED,
	SHARDEXEC_PIPELINE_ACCEPTS_STRATEGY,
	SHARDEXEC_PIPELINE_GET_HOST_BY_STRATEGY
} ShardexecPipeline;

#define SHARDEXEC_PIPELINE_COUNT 8

/* ----------------------------------------------------------------
 * Plugins and hosts
 * ----------------------------------------------------------------
 */

struct ShardexecPluginRoutine;

/*
 * ShardexecPlugin is one active, registered plugin: what every callback
 * gets as its first argument.  private_data is what the routine's init
 * returned (NULL without init).
 */
typedef struct ShardexecPlugin
{
	const char *name;			/* the registered name */
	int			weight;
	Jsonb	   *options;		/* validated at registration */
	const struct ShardexecPluginRoutine *routine;
	void	   *private_data;
} ShardexecPlugin;

typedef enum ShardexecHostRole
{
	SHARDEXEC_HOST_PRIMARY,		/* takes writes */
	SHARDEXEC_HOST_REPLICA		/* a streaming replica: reads only */
} ShardexecHostRole;

typedef enum ShardexecHostState
{
	SHARDEXEC_HOST_UP,			/* believed up (never failed, or came back) */
	SHARDEXEC_HOST_DOWN			/* the last connect to it failed */
} ShardexecHostState;

/*
 * ShardexecHost is one server of a node's host list.  The statistics are
 * this backend's, filled in by shardexec before host selection.
 */
typedef struct ShardexecHost
{
	char	   *host;
	int			port;
	ShardexecHostRole role;
	ShardexecHostState state;
	int			weight;			/* >= 1; for weighted strategies */

	/* statistics of this backend */
	int			open_connections;	/* connections it holds to the host */
	double		response_ms;	/* moving average of connect times, < 0 if
								 * unknown */
} ShardexecHost;

/* a node's host list: the primary first, then the replicas */
typedef struct ShardexecHostList
{
	int32		node_id;
	const char *node_name;
	int			nhosts;
	ShardexecHost *hosts;
} ShardexecHostList;

/* ----------------------------------------------------------------
 * connect and force_connect
 * ----------------------------------------------------------------
 */

/*
 * ShardexecConnectInfo is one connection being made to a node.  keywords
 * and values are libpq connection options (NULL-terminated), the foreign
 * server's and user mapping's plus shardexec's own; change them only with
 * set_option (a NULL value removes the keyword) and set_host.  The
 * strings given to them are copied.
 */
typedef struct ShardexecConnectInfo
{
	int32		node_id;
	const char *node_name;
	Oid			user_id;		/* the local role connecting */
	ShardexecHostRole role;		/* what the connection is for */
	bool		forced;			/* a fresh connection outside the pool
								 * (force_connect) */
	const char *host;			/* the chosen host, as in the options */
	int			port;

	const char **keywords;
	const char **values;

	void		(*set_option) (struct ShardexecConnectInfo *info,
							   const char *keyword, const char *value);
	const char *(*get_option) (struct ShardexecConnectInfo *info,
							   const char *keyword);
	void		(*set_host) (struct ShardexecConnectInfo *info,
							 const char *host, int port);

	/*
	 * Set when the pipeline returns NULL: why the connection could not be
	 * made (palloc'd).  A plugin that refuses a connection without calling
	 * next must set it.
	 */
	char	   *error;
} ShardexecConnectInfo;

struct ShardexecConnectChain;

typedef PGconn *(*ShardexecConnectNext) (struct ShardexecConnectChain *chain,
										 ShardexecConnectInfo *info);

/*
 * ShardexecConnectChain: call next to run the rest of the pipeline.  It
 * returns an established connection (CONNECTION_OK), or NULL with
 * info->error set when the connection could not be made; it raises an
 * error only for a cancel or an error of another plugin.  It may be
 * called again (a retry, after changing info).  A connection returned by
 * next that the plugin does not return must be closed with PQfinish.
 */
typedef struct ShardexecConnectChain
{
	ShardexecConnectNext next;
	/* shardexec's own state follows: never copy the struct */
} ShardexecConnectChain;

typedef PGconn *(*ShardexecConnectCallback) (ShardexecPlugin *self,
											 ShardexecConnectInfo *info,
											 ShardexecConnectChain *chain);

/* ----------------------------------------------------------------
 * execute
 * ----------------------------------------------------------------
 */

/*
 * ShardexecStatementInfo: a statement about to claim its connections.
 * A plugin may send it to replicas (read/write splitting) by setting
 * use_replicas, with a host selection strategy (NULL: the first replica
 * that is up).
 */
typedef struct ShardexecStatementInfo
{
	int			nunits;
	bool		read_only;		/* no unit writes or locks rows */
	bool		in_transaction_block;
	bool		transaction_read_only;

	bool		use_replicas;
	const char *reader_strategy;
} ShardexecStatementInfo;

/*
 * ShardexecUnitInfo: one execution unit.  execute_begin sees the first
 * group, execute_end all of it.
 */
typedef struct ShardexecUnitInfo
{
	int32		node_id;
	const char *node_name;
	int64		shard_id;
	const char *sql;
	bool		modifies;		/* writes (or locks rows of) the shard */
	const char *host;			/* the connection's server */
	int			port;
	const ShardexecStatementInfo *statement;

	/* execute_end */
	double		elapsed_ms;		/* from send to the last result */
	uint64		rows;			/* rows received */
	uint64		rows_affected;	/* the command's row count (INSERT, UPDATE,
								 * DELETE, SELECT) */
	bool		failed;
	bool		connection_lost;
	const char *error_message;	/* when failed */
	const char *sqlstate;		/* when failed with a node's error, or NULL */

	/*
	 * Retries (appended in API version 1: plugins built before never see
	 * them).  attempt counts the times the unit was sent before this one
	 * (0 the first time).  retryable, in execute_end of a unit whose
	 * connection was lost, says shardexec can send it again on another
	 * connection: the statement only reads, outside a transaction block,
	 * and no row of the unit has been returned yet.  A plugin that then
	 * sets retry has the unit sent again (a new connection is made
	 * through the connect pipeline, and execute_begin runs again);
	 * otherwise the statement fails.
	 */
	int			attempt;
	bool		retryable;
	bool		retry;
} ShardexecUnitInfo;

typedef void (*ShardexecExecuteStatementCallback) (ShardexecPlugin *self,
												   ShardexecStatementInfo *statement);
typedef void (*ShardexecExecuteCallback) (ShardexecPlugin *self,
										  ShardexecUnitInfo *unit);

/* ----------------------------------------------------------------
 * host_list_provider
 * ----------------------------------------------------------------
 */

/*
 * ShardexecHostListRequest: the node's host list being built.  hosts
 * starts empty (the end of the chain adds the primary from the foreign
 * server's options); add_host appends (or, for a host already listed,
 * updates) a host.  refresh_ms, if set (> 0, the smallest wins), has the
 * list built again after that many milliseconds.
 */
typedef struct ShardexecHostListRequest
{
	int32		node_id;
	const char *node_name;
	ShardexecHostList *list;
	int			refresh_ms;

	ShardexecHost *(*add_host) (struct ShardexecHostListRequest *request,
								const char *host, int port,
								ShardexecHostRole role);

	/*
	 * force_connect to one host of the node (for a provider that asks a
	 * server for its topology): an established connection, to be closed
	 * with PQfinish, or NULL with *error set.
	 */
	PGconn	   *(*force_connect) (struct ShardexecHostListRequest *request,
								  const char *host, int port, char **error);
} ShardexecHostListRequest;

struct ShardexecHostListChain;

typedef void (*ShardexecHostListNext) (struct ShardexecHostListChain *chain,
									   ShardexecHostListRequest *request);

typedef struct ShardexecHostListChain
{
	ShardexecHostListNext next;
	/* shardexec's own state follows: never copy the struct */
} ShardexecHostListChain;

typedef void (*ShardexecHostListProviderCallback) (ShardexecPlugin *self,
												   ShardexecHostListRequest *request,
												   ShardexecHostListChain *chain);

/* ----------------------------------------------------------------
 * host_list_changed and connection_changed
 * ----------------------------------------------------------------
 */

typedef enum ShardexecHostChange
{
	SHARDEXEC_HOST_ADDED,
	SHARDEXEC_HOST_REMOVED,
	SHARDEXEC_HOST_PROMOTED,	/* became the primary */
	SHARDEXEC_HOST_WENT_DOWN,
	SHARDEXEC_HOST_CAME_UP
} ShardexecHostChange;

typedef void (*ShardexecHostListChangedCallback) (ShardexecPlugin *self,
												  const ShardexecHostList *list,
												  const ShardexecHost *host,
												  ShardexecHostChange change);

typedef enum ShardexecOldConnectionAction
{
	SHARDEXEC_CONNECTION_NO_OPINION,
	SHARDEXEC_CONNECTION_KEEP,
	SHARDEXEC_CONNECTION_CLOSE
} ShardexecOldConnectionAction;

/*
 * ShardexecConnectionChange: a pooled connection that no longer goes
 * where its node's host list says its work should go (the primary moved,
 * its host went down): it is about to be replaced.  KEEP from any plugin
 * keeps it; otherwise it is closed and replaced.
 */
typedef struct ShardexecConnectionChange
{
	int32		node_id;
	const char *node_name;
	ShardexecHostRole role;		/* what the connection is for */
	const char *old_host;
	int			old_port;
	const char *reason;
} ShardexecConnectionChange;

typedef ShardexecOldConnectionAction (*ShardexecConnectionChangedCallback) (ShardexecPlugin *self,
																			const ShardexecConnectionChange *change);

/* ----------------------------------------------------------------
 * host selection
 * ----------------------------------------------------------------
 */

typedef bool (*ShardexecAcceptsStrategyCallback) (ShardexecPlugin *self,
												  ShardexecHostRole role,
												  const char *strategy);

/* returns the index of the chosen host in list, or -1 for "none" */
typedef int (*ShardexecGetHostByStrategyCallback) (ShardexecPlugin *self,
												   const ShardexecHostList *list,
												   ShardexecHostRole role,
												   const char *strategy);

/* ----------------------------------------------------------------
 * The routine
 * ----------------------------------------------------------------
 */

typedef struct ShardexecPluginRoutine
{
	uint32		magic;			/* SHARDEXEC_PLUGIN_MAGIC */
	uint16		api_version;	/* SHARDEXEC_PLUGIN_API_VERSION */
	uint16		struct_size;	/* sizeof(ShardexecPluginRoutine) */
	const char *description;
	int			default_weight; /* when registered with weight NULL */

	/*
	 * validate_options raises an error if options (a JSON object) are not
	 * valid for the plugin.  NULL: the plugin takes no options ({} only).
	 */
	void		(*validate_options) (Jsonb *options);

	/*
	 * init is called when a backend builds its plugin chain, in a memory
	 * context that lives as long as the chain; it returns private_data.
	 */
	void	   *(*init) (const char *plugin_name, Jsonb *options);

	/* pipelines: NULL = not subscribed */
	ShardexecConnectCallback connect;
	ShardexecConnectCallback force_connect;
	ShardexecExecuteStatementCallback execute_statement;
	ShardexecExecuteCallback execute_begin;
	ShardexecExecuteCallback execute_end;
	ShardexecHostListProviderCallback host_list_provider;
	ShardexecConnectionChangedCallback connection_changed;
	ShardexecHostListChangedCallback host_list_changed;
	ShardexecAcceptsStrategyCallback accepts_strategy;
	ShardexecGetHostByStrategyCallback get_host_by_strategy;
} ShardexecPluginRoutine;

#define SHARDEXEC_PLUGIN_ROUTINE_INIT \
	.magic = SHARDEXEC_PLUGIN_MAGIC, \
	.api_version = SHARDEXEC_PLUGIN_API_VERSION, \
	.struct_size = sizeof(ShardexecPluginRoutine)

#endif							/* SHARDEXEC_PLUGIN_API_H */
