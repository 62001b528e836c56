--
-- distribute_errors: every input create_distributed_table,
-- create_reference_table and undistribute_table refuse, each with its error,
-- and the table intact afterwards; and the statements on distributed tables
-- that are not supported yet.
--
-- After a refusal the table must still be an ordinary table with all its
-- rows, and no shard table may be left on any node: the shards recorded in
-- shardexec.shards are the only tables of this schema on the nodes, which
-- "\c node1" etc. check at the end.
--
CREATE SCHEMA dist_errors;
SET search_path TO dist_errors;
\set coordinator :DBNAME

-- the tables of this schema that shardexec knows as distributed or reference
CREATE VIEW distributed AS
SELECT t.table_name, t.kind FROM shardexec.tables t JOIN pg_class c ON c.oid = t.table_name
 WHERE c.relnamespace = 'dist_errors'::regnamespace;

CREATE TABLE t (id int PRIMARY KEY, p point, x xml, v text,
                g int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO t SELECT i, point(i, i), '<a/>', 'v' || i FROM generate_series(1, 10) i;

--
-- arguments
--

-- unknown table or column, system and generated columns
SELECT shardexec.create_distributed_table('no_such_table', 'id');
SELECT shardexec.create_distributed_table('t', 'no_such_column');
SELECT shardexec.create_distributed_table('t', 'ID');
SELECT shardexec.create_distributed_table('t', 'ctid');
SELECT shardexec.create_distributed_table('t', 'g');
-- types without a hash function
SELECT shardexec.create_distributed_table('t', 'p');
SELECT shardexec.create_distributed_table('t', 'x');
-- shard_count out of range
SELECT shardexec.create_distributed_table('t', 'id', 0);
SELECT shardexec.create_distributed_table('t', 'id', -1);
SELECT shardexec.create_distributed_table('t', 'id', 4097);
SELECT shardexec.create_distributed_table('t', 'id', 100000);
-- NULL arguments
SELECT shardexec.create_distributed_table(NULL, 'id');
SELECT shardexec.create_distributed_table('t', NULL);
SELECT shardexec.create_distributed_table('t', 'id', NULL);
SELECT shardexec.create_reference_table(NULL) IS NULL AS strict_does_nothing;
SELECT shardexec.undistribute_table(NULL) IS NULL AS strict_does_nothing;

-- all refused: t is untouched
SELECT count(*), sum(id) FROM t;
SELECT * FROM distributed;

--
-- a table already distributed
--
SELECT shardexec.create_distributed_table('t', 'id', 4);
SELECT shardexec.create_distributed_table('t', 'id', 4);
SELECT shardexec.create_distributed_table('t', 'v', 8);
SELECT shardexec.create_reference_table('t');
CREATE TABLE ref (id int PRIMARY KEY);
SELECT shardexec.create_reference_table('ref');
SELECT shardexec.create_reference_table('ref');
SELECT shardexec.create_distributed_table('ref', 'id');
SELECT * FROM distributed ORDER BY 1;
SELECT count(*), sum(id) FROM t;

-- what is not distributed cannot be undistributed, nor looked up
CREATE TABLE plain (id int);
SELECT shardexec.undistribute_table('plain');
SELECT shardexec.shard_id_for_value('plain', 1);
-- a NULL value has no shard
SELECT shardexec.shard_id_for_value('t', NULL::int);

--
-- colocate_with
--
CREATE TABLE c_int4 (id int PRIMARY KEY);
CREATE TABLE c_int8 (id bigint PRIMARY KEY);
CREATE TABLE c_text_c (id text COLLATE "C" PRIMARY KEY);
CREATE TABLE c_text (id text PRIMARY KEY);
-- another shard count
SELECT shardexec.create_distributed_table('c_int4', 'id', 8, colocate_with => 't');
-- another column type, or collation
SELECT shardexec.create_distributed_table('c_int8', 'id', 4, colocate_with => 't');
SELECT shardexec.create_distributed_table('c_text_c', 'id', 4);
SELECT shardexec.create_distributed_table('c_text', 'id', 4, colocate_with => 'c_text_c');
-- a table that is not distributed, or a reference table
SELECT shardexec.create_distributed_table('c_int4', 'id', 4, colocate_with => 'plain');
SELECT shardexec.create_distributed_table('c_int4', 'id', 4, colocate_with => 'ref');
-- unlogged with logged, either way
CREATE UNLOGGED TABLE c_unlogged (id int PRIMARY KEY);
SELECT shardexec.create_distributed_table('c_unlogged', 'id', 4, colocate_with => 't');
SELECT shardexec.create_distributed_table('c_unlogged', 'id', 4);
SELECT shardexec.create_distributed_table('c_int4', 'id', 4, colocate_with => 'c_unlogged');
-- the right shard count and type work (int4 with int4)
SELECT shardexec.create_distributed_table('c_int4', 'id', 4, colocate_with => 't');
SELECT table_name, kind FROM distributed ORDER BY 1;

--
-- tables that cannot be distributed
--

-- temporary
CREATE TEMPORARY TABLE temp_t (id int PRIMARY KEY);
SELECT shardexec.create_distributed_table('temp_t', 'id');
SELECT shardexec.create_reference_table('temp_t');
DROP TABLE temp_t;

-- partitioned tables and partitions
CREATE TABLE parted (id int, v int) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
INSERT INTO parted VALUES (1, 1), (50, 2);
SELECT shardexec.create_distributed_table('parted', 'id');
SELECT shardexec.create_distributed_table('parted_1', 'id');
SELECT shardexec.create_reference_table('parted_1');
SELECT count(*) FROM parted;

-- inheritance, parent and child
CREATE TABLE parent (id int, v int);
CREATE TABLE child (extra text) INHERITS (parent);
INSERT INTO parent VALUES (1, 1);
INSERT INTO child VALUES (2, 2, 'x');
SELECT shardexec.create_distributed_table('parent', 'id');
SELECT shardexec.create_distributed_table('child', 'id');
SELECT shardexec.create_reference_table('parent');
SELECT count(*) FROM parent;

-- foreign keys, to or from the table
CREATE TABLE fk_target (id int PRIMARY KEY);
CREATE TABLE fk_source (id int PRIMARY KEY, target int CONSTRAINT fk_source_target_fkey REFERENCES fk_target);
INSERT INTO fk_target VALUES (1);
INSERT INTO fk_source VALUES (1, 1);
SELECT shardexec.create_distributed_table('fk_target', 'id');
SELECT shardexec.create_distributed_table('fk_source', 'id');
SELECT shardexec.create_reference_table('fk_target');
SELECT (SELECT count(*) FROM fk_target) AS targets, (SELECT count(*) FROM fk_source) AS sources;

-- triggers (internal triggers, such as those of foreign keys, do not count)
CREATE TABLE trig (id int PRIMARY KEY);
CREATE FUNCTION trig_fn() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER trig_before BEFORE INSERT ON trig FOR EACH ROW EXECUTE FUNCTION trig_fn();
SELECT shardexec.create_distributed_table('trig', 'id');
DROP TRIGGER trig_before ON trig;

-- row-level security
CREATE TABLE rls (id int PRIMARY KEY, owner name);
ALTER TABLE rls ENABLE ROW LEVEL SECURITY;
SELECT shardexec.create_distributed_table('rls', 'id');

-- rules
CREATE TABLE ruled (id int PRIMARY KEY);
CREATE RULE ruled_notify AS ON INSERT TO ruled DO ALSO NOTIFY ruled;
SELECT shardexec.create_distributed_table('ruled', 'id');

-- unique constraints and indexes must include the distribution column;
-- exclusion constraints are refused
CREATE TABLE uniq (id int PRIMARY KEY, code text UNIQUE, other int);
CREATE UNIQUE INDEX uniq_other ON uniq (other);
SELECT shardexec.create_distributed_table('uniq', 'id');
ALTER TABLE uniq DROP CONSTRAINT uniq_code_key;
SELECT shardexec.create_distributed_table('uniq', 'id');
SELECT shardexec.create_distributed_table('uniq', 'other');
SELECT shardexec.create_distributed_table('uniq', 'code');
DROP INDEX uniq_other;
CREATE TABLE excl (id int, r int4range, EXCLUDE USING gist (r WITH &&));
SELECT shardexec.create_distributed_table('excl', 'id');

-- not a table: view, materialized view, foreign table, sequence, index
CREATE VIEW a_view AS SELECT * FROM plain;
CREATE MATERIALIZED VIEW a_matview AS SELECT * FROM plain;
CREATE FOREIGN TABLE a_foreign_table (id int) SERVER node1;
CREATE SEQUENCE a_sequence;
CREATE INDEX an_index ON plain (id);
SELECT shardexec.create_distributed_table('a_view', 'id');
SELECT shardexec.create_distributed_table('a_matview', 'id');
SELECT shardexec.create_distributed_table('a_foreign_table', 'id');
SELECT shardexec.create_reference_table('a_foreign_table');
SELECT shardexec.create_distributed_table('a_sequence', 'last_value');
SELECT shardexec.create_distributed_table('an_index', 'id');

-- a caller who does not own the table
CREATE ROLE dist_errors_user;
GRANT USAGE ON SCHEMA dist_errors TO dist_errors_user;
GRANT ALL ON plain TO dist_errors_user;
SET ROLE dist_errors_user;
SELECT shardexec.create_distributed_table('plain', 'id');
SELECT shardexec.create_reference_table('plain');
SELECT shardexec.undistribute_table('t');
RESET ROLE;

-- nothing above was distributed
SELECT table_name, kind FROM distributed ORDER BY 1;

--
-- a bad row: a NULL distribution value fails the row move, and nothing is
-- left behind, here or on the nodes
--
CREATE TABLE null_rows (id int, v text);
INSERT INTO null_rows SELECT i, 'v' || i FROM generate_series(1, 100) i;
INSERT INTO null_rows VALUES (NULL, 'no id');
SELECT shardexec.create_distributed_table('null_rows', 'id', 4);
SELECT count(*), count(id) FROM null_rows;
SELECT pg_relation_size('null_rows') > 0 AS rows_are_local;
SELECT count(*) FROM shardexec.tables WHERE table_name = 'null_rows'::regclass;
-- no shard table of it on any node
\c node1
SELECT count(*) AS null_rows_shards FROM pg_tables
 WHERE schemaname = 'dist_errors' AND tablename LIKE 'null\_rows\_%';
\c node2
SELECT count(*) AS null_rows_shards FROM pg_tables
 WHERE schemaname = 'dist_errors' AND tablename LIKE 'null\_rows\_%';
\c node3
SELECT count(*) AS null_rows_shards FROM pg_tables
 WHERE schemaname = 'dist_errors' AND tablename LIKE 'null\_rows\_%';
\c :coordinator
SET search_path TO dist_errors;
-- without the bad row it works
DELETE FROM null_rows WHERE id IS NULL;
SELECT shardexec.create_distributed_table('null_rows', 'id', 4);
SELECT count(*), count(id) FROM null_rows;

-- a create_distributed_table that is rolled back leaves nothing either
CREATE TABLE rolled_back (id int PRIMARY KEY, v text);
INSERT INTO rolled_back SELECT i, 'v' || i FROM generate_series(1, 20) i;
BEGIN;
SELECT shardexec.create_distributed_table('rolled_back', 'id', 3);
INSERT INTO rolled_back VALUES (21, 'v21');
SELECT count(*) FROM rolled_back;
ROLLBACK;
SELECT count(*), pg_relation_size('rolled_back') > 0 AS rows_are_local FROM rolled_back;
SELECT count(*) FROM shardexec.tables WHERE table_name = 'rolled_back'::regclass;
-- and a failed statement inside a transaction only rolls back to its savepoint
BEGIN;
SAVEPOINT s;
SELECT shardexec.create_distributed_table('rolled_back', 'no_such_column');
ROLLBACK TO SAVEPOINT s;
SELECT shardexec.create_distributed_table('rolled_back', 'id', 3);
COMMIT;
SELECT count(*) FROM rolled_back;

--
-- no nodes: the catalog is per database, so a database without nodes
--
CREATE DATABASE dist_errors_nonodes;
\c dist_errors_nonodes
CREATE EXTENSION shardexec;
CREATE TABLE lonely (id int PRIMARY KEY);
INSERT INTO lonely VALUES (1);
SELECT shardexec.create_distributed_table('lonely', 'id');
SELECT shardexec.create_reference_table('lonely');
SELECT count(*) FROM lonely;
\c :coordinator
SET search_path TO dist_errors;
DROP DATABASE dist_errors_nonodes;

--
-- statements on distributed tables that are not supported yet
--
-- writes that cannot be pushed down are refused, never run on the shell
UPDATE t SET id = 2 WHERE id = 1;
DELETE FROM t WHERE v IN (SELECT v FROM plain);
DELETE FROM ref WHERE id IN (SELECT id FROM t);
UPDATE t SET v = (SELECT max(v) FROM t);
INSERT INTO t (id, v) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET id = excluded.id + 100;
INSERT INTO t (id, v) SELECT id, 'p' FROM plain ON CONFLICT DO NOTHING;
-- row locks over several shards (a query on one shard is pushed down whole,
-- row locks included)
SELECT * FROM t FOR UPDATE;
SELECT * FROM t WHERE v = 'v1' FOR SHARE;
SELECT * FROM t JOIN plain USING (id) FOR UPDATE OF t;
MERGE INTO t USING plain p ON t.id = p.id WHEN MATCHED THEN DELETE;
WITH ins AS (INSERT INTO t (id, v) VALUES (100, 'x') RETURNING id) SELECT * FROM ins;
UPDATE plain SET id = 1 WHERE id IN (SELECT id FROM t);
COPY t (id, v) FROM STDIN WHERE id > 5;
\.
-- nothing changed
SELECT count(*), sum(id), string_agg(v, ',' ORDER BY id) FROM t;

--
-- the only tables of this schema on the nodes are the recorded shards
--
SELECT coalesce(array_agg(shard_table ORDER BY shard_table) FILTER (WHERE node_name = 'node1'), '{}') AS shards1,
       coalesce(array_agg(shard_table ORDER BY shard_table) FILTER (WHERE node_name = 'node2'), '{}') AS shards2,
       coalesce(array_agg(shard_table ORDER BY shard_table) FILTER (WHERE node_name = 'node3'), '{}') AS shards3
  FROM shardexec.shards s JOIN pg_class c ON c.oid = s.table_name
 WHERE c.relnamespace = 'dist_errors'::regnamespace \gset
\c node1
SELECT array_agg(format('%I.%I', schemaname, tablename) ORDER BY format('%I.%I', schemaname, tablename))
       = :'shards1'::text[] AS only_shards
  FROM pg_tables WHERE schemaname = 'dist_errors';
\c node2
SELECT array_agg(format('%I.%I', schemaname, tablename) ORDER BY format('%I.%I', schemaname, tablename))
       = :'shards2'::text[] AS only_shards
  FROM pg_tables WHERE schemaname = 'dist_errors';
\c node3
SELECT array_agg(format('%I.%I', schemaname, tablename) ORDER BY format('%I.%I', schemaname, tablename))
       = :'shards3'::text[] AS only_shards
  FROM pg_tables WHERE schemaname = 'dist_errors';
\c :coordinator

--
-- clean up, here and on the nodes
--
SET client_min_messages TO warning;
DROP SCHEMA dist_errors CASCADE;
DROP ROLE dist_errors_user;
RESET client_min_messages;
\c node1
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'dist_errors';
DROP SCHEMA dist_errors;
\c node2
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'dist_errors';
DROP SCHEMA dist_errors;
\c node3
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'dist_errors';
DROP SCHEMA dist_errors;
\c :coordinator
