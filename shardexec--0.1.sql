/* shardexec--0.1.sql: the install script of shardexec 0.1 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION shardexec" to load this file. \quit

/*
 * The foreign-data wrapper.  Every node is a foreign server of it; the
 * validator checks server and user mapping options.
 */
CREATE FUNCTION shardexec_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION shardexec_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER shardexec
  HANDLER shardexec_fdw_handler
  VALIDATOR shardexec_fdw_validator;

/*
 * Catalog tables.  They are read by the backend-local metadata cache
 * (src/metadata/metadata_cache.c), which every backend drops when they
 * change, and dumped by pg_dump (pg_extension_config_dump below).
 *
 * Host, port and dbname of a node live in the options of its foreign
 * server; shardexec.node maps the node id used in placements to it.
 */
CREATE TABLE node (
    node_id int PRIMARY KEY,
    node_name name NOT NULL UNIQUE
);

CREATE TABLE replica (
    node_id int NOT NULL REFERENCES node (node_id),
    host text NOT NULL,
    port int NOT NULL CHECK (port BETWEEN 1 AND 65535),
    PRIMARY KEY (node_id, host, port)
);

CREATE TABLE colocation (
    colocation_id int PRIMARY KEY,
    shard_count int NOT NULL,
    distribution_type regtype,
    distribution_collation oid NOT NULL DEFAULT 0
);

CREATE TABLE dist_table (
    table_id regclass PRIMARY KEY,
    kind "char" NOT NULL CHECK (kind IN ('h', 'r')),
    distribution_attnum int2 NOT NULL,
    colocation_id int NOT NULL REFERENCES colocation (colocation_id)
);
CREATE INDEX ON dist_table (colocation_id);

CREATE TABLE shard (
    shard_id bigint PRIMARY KEY,
    table_id regclass NOT NULL REFERENCES dist_table (table_id) ON DELETE CASCADE,
    shard_index int NOT NULL,
    hash_min int,
    hash_max int,
    UNIQUE (table_id, shard_index)
);

CREATE TABLE placement (
    shard_id bigint NOT NULL REFERENCES shard (shard_id) ON DELETE CASCADE,
    node_id int NOT NULL REFERENCES node (node_id),
    PRIMARY KEY (shard_id, node_id)
);
CREATE INDEX ON placement (node_id);

CREATE SEQUENCE node_id_seq AS int;
CREATE SEQUENCE colocation_id_seq AS int;
CREATE SEQUENCE shard_id_seq AS bigint START 102008;

SELECT pg_catalog.pg_extension_config_dump('node', '');
SELECT pg_catalog.pg_extension_config_dump('replica', '');
SELECT pg_catalog.pg_extension_config_dump('colocation', '');
SELECT pg_catalog.pg_extension_config_dump('dist_table', '');
SELECT pg_catalog.pg_extension_config_dump('shard', '');
SELECT pg_catalog.pg_extension_config_dump('placement', '');
SELECT pg_catalog.pg_extension_config_dump('node_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('colocation_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('shard_id_seq', '');

GRANT USAGE ON SCHEMA shardexec TO PUBLIC;
GRANT SELECT ON node, replica, colocation, dist_table, shard, placement TO PUBLIC;

/*
 * Nodes.  These functions change the cluster's topology; they are not
 * executable by PUBLIC.  A superuser may GRANT EXECUTE on them to an
 * administrative role.
 */
CREATE FUNCTION add_node(node_name text, host text, port int DEFAULT 5432,
                         dbname text DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'shardexec_add_node'
LANGUAGE C;

CREATE FUNCTION remove_node(node_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_remove_node'
LANGUAGE C STRICT;

CREATE FUNCTION add_replica(node_name text, host text, port int DEFAULT 5432)
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_add_replica'
LANGUAGE C STRICT;

REVOKE ALL ON FUNCTION add_node(text, text, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION remove_node(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_replica(text, text, int) FROM PUBLIC;

/*
 * Tables.  Distributing a table requires owning it; the functions check
 * that themselves.
 */
CREATE FUNCTION create_distributed_table(table_name regclass,
                                         distribution_column text,
                                         shard_count int DEFAULT 32,
                                         colocate_with regclass DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_create_distributed_table'
LANGUAGE C;

CREATE FUNCTION create_reference_table(table_name regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_create_reference_table'
LANGUAGE C STRICT;

CREATE FUNCTION undistribute_table(table_name regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_undistribute_table'
LANGUAGE C STRICT;

CREATE FUNCTION shard_id_for_value(table_name regclass, value anyelement)
RETURNS bigint
AS 'MODULE_PATHNAME', 'shardexec_shard_id_for_value'
LANGUAGE C STABLE;

/*
 * The placeholder a coordinator query reads the nodes' results from; the
 * planner hook replaces it by the scan of the shards.
 */
CREATE FUNCTION remote_scan(int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'shardexec_remote_scan'
LANGUAGE C STRICT;

/*
 * Concatenates arrays: how the coordinator combines the shards' array_agg.
 */
CREATE AGGREGATE array_cat_agg(anycompatiblearray) (
    SFUNC = pg_catalog.array_cat,
    STYPE = anycompatiblearray
);

CREATE FUNCTION shard_table_name(table_name regclass, shard_id bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'shardexec_shard_table_name'
LANGUAGE C STABLE STRICT;

/*
 * DROP TABLE, DROP SCHEMA ... CASCADE and DROP OWNED all end here: the
 * shards of a dropped distributed table are dropped on the nodes in the
 * same transaction and its metadata is removed.
 */
CREATE FUNCTION drop_trigger()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'shardexec_drop_trigger'
LANGUAGE C;

CREATE EVENT TRIGGER shardexec_drop ON sql_drop
  EXECUTE FUNCTION drop_trigger();

/* Views */
CREATE VIEW nodes AS
SELECT n.node_id,
       n.node_name,
       coalesce(o.host, '') AS host,
       coalesce(o.port, '5432')::int AS port,
       o.dbname,
       (SELECT count(*) FROM replica r WHERE r.node_id = n.node_id)::int AS replicas
  FROM node n
  LEFT JOIN pg_catalog.pg_foreign_server s ON s.srvname = n.node_name
  LEFT JOIN LATERAL (
       SELECT max(split_part(opt, '=', 2)) FILTER (WHERE split_part(opt, '=', 1) = 'host') AS host,
              max(split_part(opt, '=', 2)) FILTER (WHERE split_part(opt, '=', 1) = 'port') AS port,
              max(split_part(opt, '=', 2)) FILTER (WHERE split_part(opt, '=', 1) = 'dbname') AS dbname
         FROM unnest(s.srvoptions) AS opt) o ON true;

CREATE VIEW tables AS
SELECT d.table_id AS table_name,
       CASE d.kind WHEN 'h' THEN 'distributed' ELSE 'reference' END AS kind,
       a.attname AS distribution_column,
       c.shard_count,
       d.colocation_id
  FROM dist_table d
  JOIN colocation c USING (colocation_id)
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = d.table_id AND a.attnum = d.distribution_attnum;

CREATE VIEW shards AS
SELECT s.shard_id,
       s.table_id AS table_name,
       s.shard_index,
       s.hash_min,
       s.hash_max,
       n.node_name,
       shard_table_name(s.table_id, s.shard_id) AS shard_table
  FROM shard s
  JOIN placement p USING (shard_id)
  JOIN node n USING (node_id);

GRANT SELECT ON nodes, tables, shards TO PUBLIC;

/*
 * Two-phase commit (src/connection/connection.c): one commit record per
 * transaction prepared on a node, inserted in the local transaction whose
 * commit decides the outcome; recovery (transaction_recovery.c) commits
 * prepared transactions that have a record, rolls back those that have
 * none, and deletes the records it no longer needs.
 */
CREATE TABLE transaction_record (
    gid text PRIMARY KEY,
    node_id int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('transaction_record', '');
GRANT SELECT ON transaction_record TO PUBLIC;

CREATE FUNCTION recover_prepared_transactions()
RETURNS int
AS 'MODULE_PATHNAME', 'shardexec_recover_prepared_transactions'
LANGUAGE C STRICT;

REVOKE ALL ON FUNCTION recover_prepared_transactions() FROM PUBLIC;

/*
 * The connection pool: this backend's connections, the connection counts
 * of all backends per node, and closing idle connections.
 */
CREATE FUNCTION connection_list(OUT node_name name, OUT host text, OUT port int,
                                OUT user_name text, OUT key text, OUT state text,
                                OUT reference_count int, OUT in_transaction boolean,
                                OUT age interval, OUT uses bigint, OUT slot int,
                                OUT remote_pid int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'shardexec_connections'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW connections AS
SELECT * FROM connection_list();

CREATE FUNCTION shared_connection_counts()
RETURNS TABLE (node_name name, connections int, cap int)
AS 'MODULE_PATHNAME', 'shardexec_shared_connection_counts'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION close_idle_connections()
RETURNS int
AS 'MODULE_PATHNAME', 'shardexec_close_idle_connections'
LANGUAGE C VOLATILE STRICT;

GRANT SELECT ON connections TO PUBLIC;

/*
 * Plugins (src/plugin/).  A plugin is a C function handler(internal)
 * RETURNS internal that returns a routine struct (plugin_api.h, installed
 * with the server headers); the registry below gives it a name, a weight
 * and options, and shardexec.plugins = 'name, ...' makes it active.
 * Every write to the registry makes every backend rebuild its plugin chain
 * (the trigger sends a relcache invalidation).  The built-in plugins are
 * registered here, and are not dumped (pg_dump keeps the others).
 */
CREATE TABLE plugin (
    plugin_name text PRIMARY KEY,
    handler regproc NOT NULL,
    weight int NOT NULL,
    options jsonb NOT NULL DEFAULT '{}',
    builtin boolean NOT NULL DEFAULT false
);

CREATE FUNCTION plugin_catalog_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'shardexec_plugin_catalog_trigger'
LANGUAGE C;

CREATE TRIGGER plugin_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plugin
  FOR EACH STATEMENT EXECUTE FUNCTION plugin_catalog_trigger();

SELECT pg_catalog.pg_extension_config_dump('plugin', 'WHERE NOT builtin');
GRANT SELECT ON plugin TO PUBLIC;

CREATE FUNCTION register_plugin(plugin_name text, handler regproc,
                                weight int DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_register_plugin'
LANGUAGE C;

CREATE FUNCTION unregister_plugin(plugin_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_unregister_plugin'
LANGUAGE C STRICT;

REVOKE ALL ON FUNCTION register_plugin(text, regproc, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION unregister_plugin(text) FROM PUBLIC;

CREATE FUNCTION plugin_status(OUT plugin_name text, OUT description text,
                              OUT pipelines text[], OUT active boolean,
                              OUT chain_position int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'shardexec_plugin_status'
LANGUAGE C STABLE;

-- active and chain_position are those of the current session
CREATE VIEW plugins AS
SELECT p.plugin_name, p.handler, p.weight, p.options, p.builtin,
       s.description, s.pipelines,
       coalesce(s.active, false) AS active, s.chain_position
  FROM plugin p
  LEFT JOIN plugin_status() s USING (plugin_name);

-- the host list of a node (NULL: every node) as this backend sees it
CREATE FUNCTION host_list(node text DEFAULT NULL)
RETURNS TABLE (node_name text, host text, port int, role text, state text,
               open_connections int, response_ms float8)
AS 'MODULE_PATHNAME', 'shardexec_host_list'
LANGUAGE C VOLATILE;

/* The built-in plugins' handlers */
CREATE FUNCTION execution_time_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_execution_time_handler' LANGUAGE C STRICT;
CREATE FUNCTION log_query_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_log_query_handler' LANGUAGE C STRICT;
CREATE FUNCTION static_hosts_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_static_hosts_handler' LANGUAGE C STRICT;
CREATE FUNCTION topology_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_topology_handler' LANGUAGE C STRICT;
CREATE FUNCTION failover_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_failover_handler' LANGUAGE C STRICT;
CREATE FUNCTION read_write_splitting_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_read_write_splitting_handler' LANGUAGE C STRICT;
CREATE FUNCTION host_selection_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_host_selection_handler' LANGUAGE C STRICT;
CREATE FUNCTION credentials_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_credentials_handler' LANGUAGE C STRICT;
CREATE FUNCTION fault_injection_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'shardexec_fault_injection_handler' LANGUAGE C STRICT;

INSERT INTO plugin (plugin_name, handler, weight, options, builtin) VALUES
    ('execution_time', 'execution_time_handler', 10, '{}', true),
    ('log_query', 'log_query_handler', 20, '{}', true),
    ('failover', 'failover_handler', 30, '{}', true),
    ('read_write_splitting', 'read_write_splitting_handler', 100, '{}', true),
    ('host_selection', 'host_selection_handler', 100, '{}', true),
    ('topology', 'topology_handler', 400, '{}', true),
    ('static_hosts', 'static_hosts_handler', 500, '{}', true),
    ('credentials', 'credentials_handler', 900, '{}', true),
    ('fault_injection', 'fault_injection_handler', 1000, '{}', true);

/* execution_time's figures, per node and pipeline, of this backend */
CREATE FUNCTION execution_time_stats(OUT node_name text, OUT pipeline text,
                                     OUT calls bigint, OUT failures bigint,
                                     OUT rows bigint, OUT total_ms float8,
                                     OUT min_ms float8, OUT max_ms float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'shardexec_execution_time_stats'
LANGUAGE C VOLATILE;

CREATE VIEW execution_time AS
SELECT node_name, pipeline, calls, failures, rows, total_ms,
       total_ms / calls AS mean_ms, min_ms, max_ms
  FROM execution_time_stats();

CREATE FUNCTION reset_execution_time()
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_reset_execution_time'
LANGUAGE C;

-- fault_injection: the next count calls of pipeline on the node fail
CREATE FUNCTION inject_fault(node_name text, pipeline text, count int DEFAULT 1)
RETURNS void
AS 'MODULE_PATHNAME', 'shardexec_inject_fault'
LANGUAGE C STRICT;

GRANT SELECT ON plugins, execution_time TO PUBLIC;
