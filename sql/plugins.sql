--
-- plugins: the registry and its checks, the plugin chain and
-- shardexec.plugins, errors that name the plugin and the pipeline, and the
-- plugins one instance can show: fault_injection, execution_time,
-- log_query, the third-party example plugin (test/plugin_example, built
-- with PGXS against the installed header) through every pipeline, host
-- lists, and routing of reads to a replica address.
--
-- Replicas, failover, topology and credentials need several instances:
-- test/t/030_plugins.pl.
--
-- Shard ids are fixed for this file (the shard id sequence is set, then
-- put back), so the SQL that log_query logs is stable; ports are kept out
-- of the output.
--
CREATE SCHEMA plugins;
SET search_path TO plugins;
SELECT current_setting('port') AS port \gset
SELECT last_value AS saved_shard_id, is_called AS saved_is_called
  FROM shardexec.shard_id_seq \gset
SELECT setval('shardexec.shard_id_seq', 990000, false) IS NOT NULL AS ok;

CREATE EXTENSION shardexec_plugin_example SCHEMA plugins;

CREATE TABLE items (id bigint PRIMARY KEY, v text);
SELECT shardexec.create_distributed_table('items', 'id', 4);
INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 20) g;
SELECT shard_id, node_name FROM shardexec.shards WHERE table_name = 'items'::regclass
 ORDER BY shard_id;

--
-- The built-in plugins, registered by CREATE EXTENSION; none is active
--
SELECT plugin_name, handler, weight, builtin, pipelines, active
  FROM shardexec.plugins ORDER BY weight, plugin_name;
SHOW shardexec.plugins;

--
-- register_plugin refuses, at registration, whatever is not a shardexec
-- plugin of a version this shardexec supports, and invalid options
--

-- a handler of another kind (an FDW handler)
SELECT shardexec.register_plugin('wrong', 'shardexec.shardexec_fdw_handler');
-- the right signature, but not a C function
SELECT shardexec.register_plugin('wrong', 'pg_catalog.gtsvector_compress');
-- a C function that takes no argument of type internal
SELECT shardexec.register_plugin('wrong', 'shardexec.plugin_catalog_trigger');
-- the right signature, but it returns something else
SELECT shardexec.register_plugin('wrong', 'plugin_example_not_a_routine');
-- a routine of a plugin API version that does not exist yet
SELECT shardexec.register_plugin('wrong', 'plugin_example_future_version');
-- names, options, duplicates
SELECT shardexec.register_plugin('Wrong Name', 'plugin_example_handler');
SELECT shardexec.register_plugin('example', 'plugin_example_handler', NULL, '[1, 2]');
SELECT shardexec.register_plugin('example', 'plugin_example_handler', NULL, '{"colour": "blue"}');
SELECT shardexec.register_plugin('example', 'plugin_example_handler', NULL, '{"fail_in": "never"}');
SELECT shardexec.register_plugin('timing', 'shardexec.execution_time_handler', NULL, '{"a": 1}');
SELECT shardexec.register_plugin('lq', 'shardexec.log_query_handler', NULL, '{"level": "loud"}');
SELECT shardexec.register_plugin('execution_time', 'plugin_example_handler');
SELECT shardexec.unregister_plugin('nothing');
-- nothing was recorded
SELECT count(*) FROM shardexec.plugin WHERE NOT builtin;

-- a role that was not granted EXECUTE cannot register
CREATE ROLE plugins_user;
SET ROLE plugins_user;
SELECT shardexec.register_plugin('timing', 'shardexec.execution_time_handler');
RESET ROLE;
DROP ROLE plugins_user;

-- registration: a NULL weight takes the plugin's default
SELECT shardexec.register_plugin('example', 'plugin_example_handler');
SELECT shardexec.register_plugin('example_heavy', 'plugin_example_handler', 2000);
SELECT plugin_name, handler, weight, options, description, pipelines
  FROM shardexec.plugins WHERE NOT builtin ORDER BY plugin_name;

--
-- shardexec.plugins: the chain is ordered by weight (lower runs
-- outermost), ties by the order of the setting
--
SET shardexec.plugins = 'example_heavy, fault_injection, example, execution_time';
SELECT plugin_name, weight, chain_position FROM shardexec.plugins
 WHERE active ORDER BY chain_position;
SELECT shardexec.register_plugin('example_twin', 'plugin_example_handler', 200);
SET shardexec.plugins = 'example_twin, example';
SELECT plugin_name, chain_position FROM shardexec.plugins WHERE active ORDER BY chain_position;
SET shardexec.plugins = 'example, example_twin';
SELECT plugin_name, chain_position FROM shardexec.plugins WHERE active ORDER BY chain_position;
-- a plugin listed twice, bad syntax
SET shardexec.plugins = 'example, example';
SET shardexec.plugins = 'example,,';
-- a name that is not registered is skipped, with a warning
SET shardexec.plugins = 'nosuch, example';
SELECT count(*) FROM items;
SELECT plugin_name, chain_position FROM shardexec.plugins WHERE active ORDER BY chain_position;
RESET shardexec.plugins;
SELECT count(*) FROM shardexec.plugins WHERE active;

--
-- The third-party plugin through every pipeline: the example plugin
-- counts its calls.  It adds a second address of this instance as a
-- replica of every node (host list provider) and routes read-only
-- statements there (execute, strategy "example_last"); topology probes
-- the hosts with fresh connections (force_connect); the pooled
-- connections made before the chain changed are replaced
-- (connection_changed) and opened again (connect).
--
SELECT shardexec.register_plugin('example_all', 'plugin_example_handler', NULL,
       jsonb_build_object('replicas', true, 'extra_replica', 'localhost:' || :port,
                          'application_name', 'plugin_example'));
SET shardexec.plugins = 'example';
SELECT count(*) FROM items;
SELECT plugin_example_reset();
SET shardexec.plugins = 'example_all, topology';
SELECT count(*) FROM items;
SELECT * FROM items WHERE id = 7;
INSERT INTO items VALUES (21, 'v21');
SELECT callback, calls > 0 AS called FROM plugin_example_calls() ORDER BY callback;
-- the node connections carry the application_name the plugin set
SELECT count(*) > 0 AS seen FROM pg_stat_activity
 WHERE application_name = 'plugin_example' AND datname LIKE 'node_';
-- reads went to the replica address, the write to the primary
SELECT node_name, host, role, state, open_connections > 0 AS used
  FROM shardexec.host_list() ORDER BY node_name, role, host;
RESET shardexec.plugins;

--
-- A plugin that raises an error fails the statement; the error names
-- the plugin and the pipeline
--
SELECT shardexec.register_plugin('example_fails', 'plugin_example_handler', NULL,
                                 '{"fail_in": "execute_begin"}');
SET shardexec.plugins = 'example_fails';
SELECT count(*) FROM items;
SELECT shardexec.unregister_plugin('example_fails');
SELECT shardexec.register_plugin('example_fails', 'plugin_example_handler', NULL,
                                 '{"fail_in": "connect"}');
SELECT count(*) FROM items;
-- the session goes on once the plugin is gone from the chain
RESET shardexec.plugins;
SELECT count(*) FROM items;

--
-- fault_injection: the next execute, or connect, on a node fails
--
SET shardexec.plugins = 'fault_injection';
SELECT shardexec.inject_fault('node1', 'execute');
SELECT count(*) FROM items;
SELECT count(*) FROM items;
SELECT shardexec.inject_fault('node2', 'connect');
SET shardexec.plugins = 'fault_injection, execution_time';
SELECT count(*) FROM items;
SELECT count(*) FROM items;
SELECT shardexec.inject_fault('node2', 'sleep');
SELECT shardexec.inject_fault('nowhere', 'connect');
RESET shardexec.plugins;

--
-- execution_time: per node and pipeline, in this backend
--
SET shardexec.plugins = 'execution_time';
SELECT shardexec.reset_execution_time();
SELECT count(*) FROM items;
SELECT * FROM items WHERE id = 7;
SELECT node_name, calls, failures, rows, total_ms >= 0 AS timed,
       min_ms <= mean_ms AND mean_ms <= max_ms AS consistent
  FROM shardexec.execution_time WHERE pipeline = 'execute' ORDER BY node_name;
-- how many connections were opened depends on the pool
SELECT node_name, calls > 0 AS called, failures
  FROM shardexec.execution_time WHERE pipeline = 'connect' ORDER BY node_name;
SELECT shardexec.reset_execution_time();
SELECT count(*) FROM shardexec.execution_time;

--
-- log_query: each unit's SQL, with its node (here without host and time,
-- which change from run to run; and on one shard, since units on several
-- shards end in any order)
--
SELECT shardexec.register_plugin('log_notice', 'shardexec.log_query_handler', NULL,
                                 '{"level": "notice", "elapsed": false, "host": false}');
SET shardexec.plugins = 'log_notice';
SELECT * FROM items WHERE id = 7;
UPDATE items SET v = 'seven' WHERE id = 7;
SELECT count(*) FROM items WHERE id = 3;
RESET shardexec.plugins;

--
-- unregistering a plugin that is still named in the setting
--
SET shardexec.plugins = 'example';
SELECT shardexec.unregister_plugin('example');
SELECT count(*) FROM items;
RESET shardexec.plugins;

-- a plugin whose handler function was dropped is skipped, with a warning
SET shardexec.plugins = 'example_twin';
DROP EXTENSION shardexec_plugin_example;
SELECT count(*) FROM items;
SELECT plugin_name, description, pipelines, active
  FROM shardexec.plugins WHERE plugin_name = 'example_twin';
RESET shardexec.plugins;

-- clean up
SELECT shardexec.unregister_plugin(plugin_name)
  FROM shardexec.plugin WHERE NOT builtin ORDER BY plugin_name;
DROP SCHEMA plugins CASCADE;
SELECT setval('shardexec.shard_id_seq', :saved_shard_id, :'saved_is_called'::boolean)
       IS NOT NULL AS ok;
