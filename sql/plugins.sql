--
-- plugins: the registry and its checks, the plugin chain and
-- shardexec.plugins, errors that name the plugin and the pipeline, and the
-- plugins one instance can show: fault_injection, execution_time,
-- log_query, the third-party example plugin (test/plugin_example, built
-- with PGXS against the installed header) through every pipeline, host
-- lists, routing of reads to a replica address, and failover sending a
-- unit again when its connection is lost in the middle of a statement.
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
-- failover sends a unit again when its connection is lost in the middle
-- of a read-only statement outside a transaction block, as long as none
-- of the unit's rows was returned yet.  A node session is made to end as
-- a node going away would end it (terminated, SQLSTATE 57P01) by
-- public.die_at(node, sequence, n), which every node database gets: on
-- node "node", the n-th call counted by the sequence terminates its own
-- session (and rejects its row, so no row is sent in the same breath).
-- The rows come through shardexec_test_execute, whose filter is SQL sent
-- to every shard as it is.
--
SELECT current_database() AS coordinator \gset
\c node1
CREATE SEQUENCE public.die_a; CREATE SEQUENCE public.die_b; CREATE SEQUENCE public.die_c;
CREATE SEQUENCE public.die_d; CREATE SEQUENCE public.die_e; CREATE SEQUENCE public.die_f;
CREATE FUNCTION public.die_at(node name, seq text, n bigint) RETURNS bool
LANGUAGE sql VOLATILE AS $$
  SELECT CASE WHEN current_database() <> node THEN true
              WHEN nextval(('public.' || seq)::regclass) = n
              THEN NOT pg_terminate_backend(pg_backend_pid())
              ELSE true END
$$;
\c node2
CREATE SEQUENCE public.die_a; CREATE SEQUENCE public.die_b; CREATE SEQUENCE public.die_c;
CREATE SEQUENCE public.die_d; CREATE SEQUENCE public.die_e; CREATE SEQUENCE public.die_f;
CREATE FUNCTION public.die_at(node name, seq text, n bigint) RETURNS bool
LANGUAGE sql VOLATILE AS $$
  SELECT CASE WHEN current_database() <> node THEN true
              WHEN nextval(('public.' || seq)::regclass) = n
              THEN NOT pg_terminate_backend(pg_backend_pid())
              ELSE true END
$$;
\c node3
CREATE FUNCTION public.die_at(node name, seq text, n bigint) RETURNS bool
LANGUAGE sql VOLATILE AS $$ SELECT true $$;
\c :coordinator
SET search_path TO plugins;
CREATE FUNCTION test_execute(rel regclass, filter text, order_by text,
                             max_rows bigint, params text[])
RETURNS SETOF record AS 'shardexec', 'shardexec_test_execute' LANGUAGE C;
-- rows per shard: node1 holds two shards, node2 one
SELECT shardexec.shard_id_for_value('items', id) AS shard_id, count(*)
  FROM items GROUP BY 1 ORDER BY 1;
SELECT count(*) AS first_shard_rows FROM items
 WHERE shardexec.shard_id_for_value('items', id) = 990000 \gset

-- without failover the statement fails, naming the node and its shard query
SELECT count(*) FROM test_execute('items', $$public.die_at('node2', 'die_a', 1)$$,
                                  NULL, NULL, NULL) AS r(id bigint, v text);
-- with failover the unit is sent again, and the statement gives every row
SET shardexec.plugins = 'failover';
SELECT count(*), sum(id) FROM test_execute('items', $$public.die_at('node2', 'die_b', 1)$$,
                                           NULL, NULL, NULL) AS r(id bigint, v text);
-- ordered, and connection-strict: node1's two units share a pipelined
-- connection; both are sent again
SET shardexec.max_connections_per_query = 1;
SELECT array_agg(id) = array(SELECT id FROM items ORDER BY id) AS same_rows
  FROM test_execute('items', $$public.die_at('node1', 'die_c', 1)$$,
                    'id', NULL, NULL) AS r(id bigint, v text);
-- the first unit ends before the connection is lost: its rows are kept,
-- and only the second unit is sent again
SELECT count(*), sum(id)
  FROM test_execute('items', format('public.die_at(%L, %L, %s)', 'node1', 'die_d',
                                    :first_shard_rows + 1),
                    NULL, NULL, NULL) AS r(id bigint, v text);
RESET shardexec.max_connections_per_query;
-- rows of the unit were returned already: not sent again, and the error
-- says the statement can be run again
SELECT count(*) FROM test_execute('items', $$public.die_at('node2', 'die_e', 3)$$,
                                  NULL, NULL, NULL) AS r(id bigint, v text);
-- max_retries 0 never sends a unit again
SELECT shardexec.register_plugin('failover_no_retry', 'shardexec.failover_handler', NULL,
                                 '{"max_retries": -1}');
SELECT shardexec.register_plugin('failover_no_retry', 'shardexec.failover_handler', NULL,
                                 '{"max_retries": 0}');
SET shardexec.plugins = 'failover_no_retry';
SELECT count(*) FROM test_execute('items', $$public.die_at('node2', 'die_f', 1)$$,
                                  NULL, NULL, NULL) AS r(id bigint, v text);
-- inside a transaction block, the transaction's outcome on the node is
-- unknown (the hint names the node's primary, with its port: terse)
SET shardexec.plugins = 'failover';
\set VERBOSITY terse
BEGIN;
SELECT count(*) FROM items;
SELECT count(*) FROM test_execute('items', $$public.die_at('node1', 'die_f', 1)$$,
                                  NULL, NULL, NULL) AS r(id bigint, v text);
ROLLBACK;
\set VERBOSITY default
-- the session goes on
SELECT count(*) FROM items;
RESET shardexec.plugins;
SELECT shardexec.unregister_plugin('failover_no_retry');
DROP FUNCTION test_execute(regclass, text, text, bigint, text[]);
\c node1
DROP FUNCTION public.die_at(name, text, bigint);
DROP SEQUENCE public.die_a, public.die_b, public.die_c, public.die_d, public.die_e, public.die_f;
\c node2
DROP FUNCTION public.die_at(name, text, bigint);
DROP SEQUENCE public.die_a, public.die_b, public.die_c, public.die_d, public.die_e, public.die_f;
\c node3
DROP FUNCTION public.die_at(name, text, bigint);
\c :coordinator
SET search_path TO plugins;

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
