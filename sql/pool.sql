--
-- pool: the connection pool (shardexec.connections, close_idle_connections,
-- shared_connection_counts), its settings, two-phase commit and the recovery
-- of prepared transactions.  The nodes are databases of this instance, so
-- pg_prepared_xacts here shows what is prepared on all of them.
--
CREATE SCHEMA pool;
SET search_path = pool, public;

-- the background recovery would race with the checks below: stop it
ALTER SYSTEM SET shardexec.recovery_interval = 0;
SELECT pg_reload_conf();
DO $$
BEGIN
    -- a pass that started before the reload finishes within seconds
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity
                               WHERE backend_type = 'shardexec recovery worker');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT pg_sleep(0.2);

CREATE TABLE items (id int PRIMARY KEY, v int);
INSERT INTO items SELECT g, g FROM generate_series(1, 30) g;
SELECT shardexec.create_distributed_table('items', 'id', 6);

-- a clean start: no connection of this backend
SELECT shardexec.close_idle_connections() >= 0 AS closed;
SELECT count(*) FROM shardexec.connections;

--
-- The pool view
--
SELECT v FROM items WHERE id = 1;
SELECT node_name, host, port = current_setting('port')::int AS same_port,
       user_name = current_user AS same_user,
       key LIKE 'host=127.0.0.1 port=% dbname=' || node_name || ' user=%' AS key_shape,
       state, reference_count, in_transaction, age >= '0'::interval AS aged, uses, slot,
       remote_pid > 0 AS has_pid
  FROM shardexec.connections ORDER BY node_name, slot;

-- reused, not reopened: one connection per node however many statements
SELECT remote_pid AS pid_before FROM shardexec.connections \gset
DO $$
BEGIN
    FOR i IN 1 .. 50 LOOP
        PERFORM v FROM pool.items WHERE id = 1;
    END LOOP;
END $$;
SELECT count(*) AS connections, max(uses) > 50 AS reused,
       bool_and(remote_pid = :pid_before) AS same_session
  FROM shardexec.connections;

-- inside a transaction: the remote transaction shows
BEGIN;
SELECT count(*) FROM items;
SELECT node_name, state, in_transaction FROM shardexec.connections ORDER BY 1, slot;
-- connections in a remote transaction are not closed
SELECT shardexec.close_idle_connections();
COMMIT;
SELECT node_name, count(*) FILTER (WHERE in_transaction) AS in_transaction
  FROM shardexec.connections GROUP BY 1 ORDER BY 1;

-- close_idle_connections closes every idle one and says how many
SELECT count(*) AS open FROM shardexec.connections \gset
SELECT shardexec.close_idle_connections() = :open AS all_closed;
SELECT count(*) FROM shardexec.connections;

-- the counts of every backend, per node; no cap by default
SELECT v FROM items WHERE id = 2;
SELECT node_name, connections >= 0 AS counted, cap
  FROM shardexec.shared_connection_counts() ORDER BY 1;
SELECT sum(connections) >= (SELECT count(*) FROM shardexec.connections) AS at_least_ours
  FROM shardexec.shared_connection_counts();

--
-- Idle limits
--
-- with a limit of 1 per node, a query on 2 connections per node leaves 1
SET shardexec.max_connections_per_query = 2;
SET shardexec.max_idle_connections_per_node = 1;
SELECT count(*) FROM items;
SELECT node_name, count(*) FROM shardexec.connections GROUP BY 1 ORDER BY 1;
-- 0: nothing is kept
SET shardexec.max_idle_connections_per_node = 0;
SELECT count(*) FROM items;
SELECT count(*) FROM shardexec.connections;
RESET shardexec.max_idle_connections_per_node;
RESET shardexec.max_connections_per_query;

-- an idle timeout of 1s closes what was not used in the last second
SET shardexec.connection_idle_timeout = '1s';
SELECT v FROM items WHERE id = 1;
SELECT count(*) AS before_sleep FROM shardexec.connections;
SELECT pg_sleep(1.2);
SELECT count(*) AS after_idle FROM shardexec.connections;
RESET shardexec.connection_idle_timeout;

--
-- A changed user mapping: the connection is replaced, and the key shows
-- the new options with the password masked
--
SELECT v FROM items WHERE id = 1;
SELECT node_name, remote_pid AS old_pid FROM shardexec.connections \gset
CREATE USER MAPPING FOR CURRENT_USER SERVER :node_name OPTIONS (password 'secret');
SELECT v FROM items WHERE id = 1;
SELECT count(*) AS connections, bool_and(remote_pid <> :old_pid) AS replaced,
       bool_and(key LIKE '%password=********%') AS masked,
       bool_and(key NOT LIKE '%secret%') AS no_secret
  FROM shardexec.connections WHERE node_name = :'node_name';
DROP USER MAPPING FOR CURRENT_USER SERVER :node_name;
SELECT v FROM items WHERE id = 1;
SELECT count(*) AS connections, bool_and(key NOT LIKE '%password%') AS no_password
  FROM shardexec.connections WHERE node_name = :'node_name';

--
-- Settings
--
\set VERBOSITY terse
SET shardexec.use_2pc = maybe;
SET shardexec.max_shared_pool_size = 1;
SET shardexec.recovery_interval = '1s';
SET shardexec.pool_wait_timeout = -1;
SET shardexec.remote_lock_timeout = -1;
SET shardexec.max_idle_connections_per_node = -1;
CREATE ROLE pool_user;
SET ROLE pool_user;
SET shardexec.test_2pc_fault = error_after_prepare;
SHOW shardexec.test_2pc_fault;
SELECT shardexec.recover_prepared_transactions();
RESET ROLE;
DROP ROLE pool_user;
\set VERBOSITY default
SHOW shardexec.use_2pc;
SHOW shardexec.max_shared_pool_size;
SHOW shardexec.remote_lock_timeout;

--
-- Two-phase commit
--
-- a write on every node: prepared, recorded, committed
UPDATE items SET v = v + 100;
SELECT count(*) FROM pg_prepared_xacts;
SELECT sum(v) FROM items;
-- nothing is left to recover; the records are deleted
SELECT shardexec.recover_prepared_transactions();
SELECT count(*) FROM shardexec.transaction_record;

-- auto: one phase for a write through one remote transaction, two for more;
-- on: two phases for any write; off: one phase (the records show it)
UPDATE items SET v = v + 1 WHERE id = 1;
SELECT count(*) AS records_auto_one FROM shardexec.transaction_record;
SET shardexec.use_2pc = on;
UPDATE items SET v = v + 1 WHERE id = 1;
SELECT count(*) AS records_on_one FROM shardexec.transaction_record;
SET shardexec.use_2pc = off;
UPDATE items SET v = v - 2;
SELECT count(*) AS records_off_all FROM shardexec.transaction_record;
RESET shardexec.use_2pc;
SELECT shardexec.recover_prepared_transactions();
SELECT count(*) FROM shardexec.transaction_record;
SELECT sum(v) FROM items;

-- an error after PREPARE: everything is rolled back, nothing stays prepared
SET shardexec.test_2pc_fault = error_after_prepare;
\set VERBOSITY terse
UPDATE items SET v = v + 1000;
\set VERBOSITY default
RESET shardexec.test_2pc_fault;
SELECT count(*) FROM pg_prepared_xacts;
SELECT count(*) FROM shardexec.transaction_record;
SELECT sum(v) FROM items;

-- the same in a transaction block with a savepoint
BEGIN;
INSERT INTO items VALUES (101, 1), (102, 2), (103, 3), (104, 4);
SAVEPOINT s;
DELETE FROM items WHERE id > 100;
ROLLBACK TO SAVEPOINT s;
SET LOCAL shardexec.test_2pc_fault = error_after_prepare;
\set VERBOSITY terse
COMMIT;
\set VERBOSITY default
SELECT count(*) FROM items WHERE id > 100;
SELECT count(*) FROM pg_prepared_xacts;

--
-- Recovery: prepared transactions made by hand with this coordinator's
-- names, one with a commit record (committed) and one without (rolled back)
--
SELECT 'shardexec_' || system_identifier || '_' ||
       (SELECT oid FROM pg_database WHERE datname = current_database()) || '_' AS prefix
  FROM pg_control_system() \gset
SELECT shard_table AS shard1, node_name AS node
  FROM shardexec.shards WHERE shard_id = shardexec.shard_id_for_value('items', 1) \gset
SELECT node_id FROM shardexec.node WHERE node_name = :'node' \gset
-- the xid of a finished transaction
SELECT txid_current() AS xid \gset
SELECT :'prefix' || :'xid' || '_' || :'node_id' || '_0' AS gid_commit,
       :'prefix' || :'xid' || '_' || :'node_id' || '_1' AS gid_rollback \gset
-- another coordinator's name, not ours to touch
SELECT 'shardexec_1_1_' || :'xid' || '_' || :'node_id' || '_0' AS gid_other \gset
INSERT INTO shardexec.transaction_record (gid, node_id) VALUES (:'gid_commit', :node_id);
\c :node
BEGIN;
INSERT INTO :shard1 VALUES (1001, 1);
PREPARE TRANSACTION :'gid_commit';
BEGIN;
INSERT INTO :shard1 VALUES (1002, 2);
PREPARE TRANSACTION :'gid_rollback';
BEGIN;
INSERT INTO :shard1 VALUES (1003, 3);
PREPARE TRANSACTION :'gid_other';
\c regression
SET search_path = pool, public;
SELECT count(*) FROM pg_prepared_xacts;
SELECT shardexec.recover_prepared_transactions();
SELECT gid = :'gid_other' AS only_the_other_left FROM pg_prepared_xacts;
SELECT count(*) FROM shardexec.transaction_record;
\c :node
SELECT id FROM :shard1 WHERE id > 1000 ORDER BY id;
ROLLBACK PREPARED :'gid_other';
\c regression
SET search_path = pool, public;
SELECT shardexec.recover_prepared_transactions();

-- a record of a node that no longer exists is deleted
INSERT INTO shardexec.transaction_record (gid, node_id) VALUES (:'prefix' || '1_999_0', 999);
SELECT shardexec.recover_prepared_transactions();
SELECT count(*) FROM shardexec.transaction_record;

-- clean up
DROP SCHEMA pool CASCADE;
ALTER SYSTEM RESET shardexec.recovery_interval;
SELECT pg_reload_conf();
