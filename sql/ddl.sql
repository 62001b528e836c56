--
-- ddl: DDL on distributed and reference tables reaches every shard.
--
-- Each statement kind runs on the coordinator, then the shards are checked
-- where they live: "\c node1" etc. connect to the node databases and print
-- the shard tables' columns, constraints and indexes (the :shape query).
-- Then the table is read and written through the coordinator.  Failures on
-- one node must leave the coordinator's catalog and every node as they
-- were, and the statements shardexec refuses each have their error here.
--
-- Shard ids come from a sequence that other test files use too, so they are
-- never printed: :shape and try() mask them as <shard>, and shard tables are
-- named through psql variables.  Remote errors whose text names a shard run
-- through try(), inside a subtransaction; the others run at top level.
--
-- The cluster is 00_setup's (nodes node1, node2, node3, the databases of the
-- same names); run alone, this file creates it if it is missing.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shardexec;
RESET client_min_messages;
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'node1') AS missing_node1,
       NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'node2') AS missing_node2,
       NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'node3') AS missing_node3 \gset
\if :missing_node1
CREATE DATABASE node1;
\endif
\if :missing_node2
CREATE DATABASE node2;
\endif
\if :missing_node3
CREATE DATABASE node3;
\endif
SELECT current_setting('port') AS port \gset
SELECT count(*) >= 0 AS nodes_ready
  FROM (SELECT shardexec.add_node(n, '127.0.0.1', :port, n)
          FROM unnest(ARRAY['node1', 'node2', 'node3']) AS n
         WHERE NOT EXISTS (SELECT 1 FROM shardexec.nodes WHERE node_name = n)
         ORDER BY n) added;
SELECT node_name FROM shardexec.nodes ORDER BY node_id;

\set coordinator :DBNAME
CREATE SCHEMA ddl;
-- the shards' schema on the nodes
\c node1
CREATE SCHEMA IF NOT EXISTS ddl;
\c node2
CREATE SCHEMA IF NOT EXISTS ddl;
\c node3
CREATE SCHEMA IF NOT EXISTS ddl;
\c :coordinator
SET search_path TO ddl;

-- runs cmd; returns 'ok' or its error message with shard ids masked
CREATE FUNCTION try(cmd text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    msg text;
BEGIN
    EXECUTE cmd;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    RETURN regexp_replace(msg, '_[0-9]{6,}', '_<shard>', 'g');
END
$$;

-- the shape of every table of schema ddl in the current database: on the
-- coordinator the shells, on a node the shards
SELECT $q$
SELECT regexp_replace(c.relname, '_[0-9]{6,}$', '_<shard>') AS "table",
       (SELECT string_agg(format('%s %s%s%s%s', a.attname,
                                 format_type(a.atttypid, a.atttypmod),
                                 CASE WHEN a.attcollation <> t.typcollation
                                      THEN ' collate ' || a.attcollation::regcollation END,
                                 CASE WHEN a.attnotnull THEN ' not null' END,
                                 CASE a.attgenerated WHEN 's' THEN ' generated ' ELSE ' default ' END
                                 || pg_get_expr(d.adbin, d.adrelid)),
                          ', ' ORDER BY a.attnum)
          FROM pg_attribute a
          JOIN pg_type t ON t.oid = a.atttypid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       (SELECT string_agg(regexp_replace(format('%s %s', conname, pg_get_constraintdef(oid)),
                                         '_[0-9]{6,}', '_<shard>', 'g'),
                          ', ' ORDER BY conname)
          FROM pg_constraint WHERE conrelid = c.oid) AS constraints,
       (SELECT string_agg(regexp_replace(replace(replace(pg_get_indexdef(indexrelid), 'CREATE ', ''),
                                                 ' ON ddl.' || quote_ident(c.relname), ''),
                                         '_[0-9]{6,}', '_<shard>', 'g'),
                          ', ' ORDER BY indexrelid::regclass::text)
          FROM pg_index WHERE indrelid = c.oid) AS indexes
  FROM pg_class c
 WHERE c.relnamespace = 'ddl'::regnamespace AND c.relkind = 'r'
 ORDER BY 1, 2
$q$ AS shape \gset

--
-- a hash-distributed table (one shard on each node) and a reference table
--
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int DEFAULT 0);
INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 9) g;
SELECT shardexec.create_distributed_table('items', 'id', 3);
CREATE TABLE codes (code text PRIMARY KEY, label text);
INSERT INTO codes VALUES ('a', 'A'), ('b', 'B');
SELECT shardexec.create_reference_table('codes');
SELECT shard_index, node_name FROM shardexec.shards
 WHERE table_name = 'items'::regclass ORDER BY shard_index;

-- the shards of items on node2 and node3, for the failure tests
SELECT shard_id AS node2_shard FROM shardexec.shards
 WHERE table_name = 'items'::regclass AND node_name = 'node2' \gset
SELECT shard_id AS node3_shard FROM shardexec.shards
 WHERE table_name = 'items'::regclass AND node_name = 'node3' \gset

--
-- CREATE INDEX: named and unnamed, expressions, predicates, unique
--
CREATE INDEX items_name_idx ON items (name);
CREATE INDEX ON items (lower(name)) WHERE qty > 2;
CREATE UNIQUE INDEX ON items (id, name);
CREATE INDEX IF NOT EXISTS items_name_idx ON items (qty);
CREATE INDEX ON codes (upper(label));
\x on
:shape;
\c node1
:shape;
\c node2
:shape;
\c node3
:shape;
\x off
\c :coordinator
SET search_path TO ddl;
SELECT id, name FROM items WHERE lower(name) = 'item 4';
INSERT INTO items VALUES (10, 'item 10', 10);
SELECT count(*) FROM items;

-- refused: unique without the distribution column, exclusion, CONCURRENTLY
CREATE UNIQUE INDEX items_name_key ON items (name);
CREATE UNIQUE INDEX ON items (lower(id::text));
CREATE INDEX CONCURRENTLY ON items (qty);
-- on a reference table, any unique index is fine
CREATE UNIQUE INDEX codes_label_key ON codes (label);

--
-- ALTER TABLE ADD COLUMN: the shards' rows get the default (deparsed in
-- the nodes' date format, whatever the session's)
--
SET datestyle = 'SQL, DMY';
ALTER TABLE items
    ADD COLUMN price numeric(8,2) NOT NULL DEFAULT 1.50,
    ADD COLUMN note varchar(20) COLLATE "C" CHECK (note <> ''),
    ADD COLUMN made date DEFAULT '2024-01-31';
RESET datestyle;
ALTER TABLE items ADD COLUMN total numeric GENERATED ALWAYS AS (price * 2) STORED;
ALTER TABLE items ADD COLUMN IF NOT EXISTS qty int;
ALTER TABLE codes ADD COLUMN rank int DEFAULT 3;
\x on
:shape;
\c node1
:shape;
\c node2
:shape;
\c node3
:shape;
\x off
\c :coordinator
SET search_path TO ddl;
SELECT * FROM items ORDER BY id LIMIT 3;
INSERT INTO items (id, name, qty) VALUES (11, 'item 11', 2);
SELECT * FROM items WHERE id = 11;
SELECT * FROM codes ORDER BY code;

-- refused: a default the nodes cannot evaluate, identity, a column twice
CREATE SEQUENCE item_seq;
ALTER TABLE items ADD COLUMN seq int DEFAULT nextval('item_seq');
ALTER TABLE items ADD COLUMN num serial;
ALTER TABLE items ADD COLUMN ident int GENERATED ALWAYS AS IDENTITY;
ALTER TABLE items ADD COLUMN extra int, ALTER COLUMN extra SET DEFAULT 1;

--
-- ALTER COLUMN SET DEFAULT / DROP DEFAULT / SET NOT NULL / DROP NOT NULL
--
ALTER TABLE items ALTER COLUMN qty SET DEFAULT 5, ALTER COLUMN made DROP DEFAULT;
-- the coordinator computes a sequence default; the shards get none
ALTER TABLE items ALTER COLUMN price SET DEFAULT nextval('item_seq');
ALTER TABLE items ALTER COLUMN qty SET NOT NULL, ALTER COLUMN name DROP NOT NULL;
\c node1
SELECT attname, attnotnull, pg_get_expr(adbin, adrelid) AS "default"
  FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
 WHERE attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^items_[0-9]+$')
   AND attname IN ('name', 'qty', 'price', 'made') ORDER BY attnum;
\c node2
SELECT attname, attnotnull, pg_get_expr(adbin, adrelid) AS "default"
  FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
 WHERE attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^items_[0-9]+$')
   AND attname IN ('name', 'qty', 'price', 'made') ORDER BY attnum;
\c node3
SELECT attname, attnotnull, pg_get_expr(adbin, adrelid) AS "default"
  FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
 WHERE attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^items_[0-9]+$')
   AND attname IN ('name', 'qty', 'price', 'made') ORDER BY attnum;
\c :coordinator
SET search_path TO ddl;
INSERT INTO items (id, name) VALUES (12, NULL);
SELECT id, name, qty, price, made FROM items WHERE id = 12;
SELECT try($$INSERT INTO items (id, name, qty) VALUES (13, 'null qty', NULL)$$);
ALTER TABLE items ALTER COLUMN price SET DEFAULT 1.50;

-- SET NOT NULL fails on the shards holding NULLs: nothing changes anywhere
SELECT try('ALTER TABLE items ALTER COLUMN note SET NOT NULL');
SELECT attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'note';
\c node1
SELECT attnotnull FROM pg_attribute
 WHERE attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^items_[0-9]+$') AND attname = 'note';
\c :coordinator
SET search_path TO ddl;

--
-- ALTER COLUMN TYPE, with and without USING
--
ALTER TABLE items ALTER COLUMN qty TYPE bigint;
ALTER TABLE items ALTER COLUMN note TYPE text COLLATE "C" USING coalesce(note, 'n' || id);
ALTER TABLE items ALTER COLUMN made TYPE text USING to_char(made, 'DD.MM.YYYY');
ALTER TABLE codes ALTER COLUMN rank TYPE numeric(4,1) USING rank / 2.0;
\x on
:shape;
\c node1
:shape;
\c node2
:shape;
\c node3
:shape;
\x off
\c :coordinator
SET search_path TO ddl;
SELECT id, qty, note, made FROM items ORDER BY id LIMIT 3;
SELECT * FROM codes ORDER BY code;
-- USING that fails on some node's rows fails everywhere (top level)
\set VERBOSITY terse
ALTER TABLE items ALTER COLUMN qty TYPE smallint USING qty * 10000;
ALTER TABLE items ALTER COLUMN qty TYPE int USING qty / (qty - qty);
\set VERBOSITY default
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'items'::regclass AND attname IN ('qty', 'note') ORDER BY attnum;
\c node2
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^items_[0-9]+$')
   AND attname IN ('qty', 'note') ORDER BY attnum;
\c :coordinator
SET search_path TO ddl;
-- refused: the distribution column's type
ALTER TABLE items ALTER COLUMN id TYPE bigint;

--
-- ADD / DROP / VALIDATE CONSTRAINT
--
ALTER TABLE items ADD CONSTRAINT qty_nonnegative CHECK (qty >= 0);
ALTER TABLE items ADD CHECK (price < 1000) NOT VALID;
ALTER TABLE items VALIDATE CONSTRAINT items_price_check;
ALTER TABLE items ADD CONSTRAINT items_id_note_key UNIQUE (id, note);
-- the primary key dropped, then made again from an existing index
ALTER TABLE items DROP CONSTRAINT items_pkey;
CREATE UNIQUE INDEX items_id_idx ON items (id);
ALTER TABLE items ADD CONSTRAINT items_pkey PRIMARY KEY USING INDEX items_id_idx;
ALTER TABLE items DROP CONSTRAINT items_note_check, DROP CONSTRAINT IF EXISTS no_such;
ALTER TABLE codes ADD CONSTRAINT codes_rank_check CHECK (rank > 0);
\x on
:shape;
\c node1
:shape;
\c node2
:shape;
\c node3
:shape;
\x off
\c :coordinator
SET search_path TO ddl;
SELECT try($$INSERT INTO items (id, name, qty) VALUES (14, 'negative', -1)$$);
SELECT try($$INSERT INTO items (id, name) VALUES (1, 'duplicate')$$);
INSERT INTO items (id, name) VALUES (15, 'item 15');
SELECT count(*) FROM items;

-- a CHECK constraint violated on one node's rows: nothing changes anywhere
SELECT try('ALTER TABLE items ADD CONSTRAINT few CHECK (qty < 9)');
SELECT count(*) AS few FROM pg_constraint WHERE conname = 'few';
\c node1
SELECT count(*) AS few FROM pg_constraint WHERE conname ~ '^few_';
\c node2
SELECT count(*) AS few FROM pg_constraint WHERE conname ~ '^few_';
\c node3
SELECT count(*) AS few FROM pg_constraint WHERE conname ~ '^few_';
\c :coordinator
SET search_path TO ddl;

-- refused: unique without the distribution column, exclusion, foreign keys
ALTER TABLE items ADD CONSTRAINT items_name_key UNIQUE (name);
ALTER TABLE items ADD COLUMN sku text UNIQUE;
ALTER TABLE items ADD EXCLUDE USING btree (id WITH =);
ALTER TABLE items ADD FOREIGN KEY (note) REFERENCES codes (code);
ALTER TABLE items ADD COLUMN code text REFERENCES codes (code);
CREATE TABLE local_orders (item int REFERENCES items (id));
CREATE TABLE local_orders (item int, FOREIGN KEY (item) REFERENCES items (id));
CREATE TABLE local_orders (code text);
ALTER TABLE local_orders ADD FOREIGN KEY (code) REFERENCES codes (code);
DROP TABLE local_orders;

--
-- renames: column (also the distribution column), constraint, index, table
--
ALTER TABLE items RENAME COLUMN note TO remark;
ALTER TABLE items RENAME COLUMN id TO item_id;
ALTER TABLE items RENAME CONSTRAINT qty_nonnegative TO items_qty_check;
ALTER TABLE items RENAME CONSTRAINT items_id_note_key TO items_id_remark_key;
ALTER INDEX items_name_idx RENAME TO items_by_name;
ALTER TABLE items_lower_idx RENAME TO items_lower_name_idx;
ALTER TABLE items RENAME TO goods;
ALTER TABLE codes RENAME TO labels;
\x on
:shape;
\c node1
:shape;
\c node2
:shape;
\c node3
:shape;
\x off
\c :coordinator
SET search_path TO ddl;
SELECT table_name, kind, distribution_column FROM shardexec.tables
 WHERE table_name IN ('goods'::regclass, 'labels'::regclass) ORDER BY 1;
SELECT count(*) AS named_after_table FROM shardexec.shards
 WHERE table_name = 'goods'::regclass AND shard_table = format('ddl.goods_%s', shard_id);
SELECT item_id, name, remark FROM goods WHERE item_id = 3;
INSERT INTO goods (item_id, name, remark) VALUES (16, 'item 16', 'sixteen');
SELECT item_id, remark FROM goods WHERE item_id IN (3, 16) ORDER BY 1;
SELECT * FROM labels ORDER BY code;

-- a rename that clashes on one node: nothing changes anywhere
SELECT 'wares_' || :node3_shard AS clash \gset
\c node3
CREATE TABLE ddl.:"clash" (x int);
\c :coordinator
SET search_path TO ddl;
SELECT try('ALTER TABLE goods RENAME TO wares');
SELECT relname FROM pg_class WHERE relnamespace = 'ddl'::regnamespace AND relkind = 'r' ORDER BY 1;
\c node1
SELECT regexp_replace(relname, '[0-9]+', '<shard>') AS relname FROM pg_class
 WHERE relnamespace = 'ddl'::regnamespace AND relkind = 'r' ORDER BY 1;
\c node3
SELECT regexp_replace(relname, '[0-9]+', '<shard>') AS relname FROM pg_class
 WHERE relnamespace = 'ddl'::regnamespace AND relkind = 'r' ORDER BY 1;
DROP TABLE ddl.:"clash";
\c :coordinator
SET search_path TO ddl;

--
-- DROP INDEX, DROP COLUMN
--
DROP INDEX items_by_name, codes_upper_idx;
DROP INDEX IF EXISTS no_such_index, items_lower_name_idx;
ALTER TABLE goods DROP COLUMN made, DROP COLUMN IF EXISTS no_such;
ALTER TABLE goods DROP COLUMN total;
ALTER TABLE labels DROP COLUMN rank CASCADE;
\x on
:shape;
\c node1
:shape;
\c node2
:shape;
\c node3
:shape;
\x off
\c :coordinator
SET search_path TO ddl;
SELECT * FROM goods WHERE item_id = 16;
-- refused: the distribution column, CONCURRENTLY
ALTER TABLE goods DROP COLUMN item_id;
DROP INDEX CONCURRENTLY items_id_name_idx;

--
-- failure atomicity: an object that exists on one node only
--
-- an index name that is taken on node2
SELECT 'goods_qty_idx_' || :node2_shard AS clash, 'goods_' || :node2_shard AS node2_goods \gset
\c node2
CREATE INDEX :"clash" ON ddl.:"node2_goods" (qty);
\c :coordinator
SET search_path TO ddl;
SELECT try('CREATE INDEX goods_qty_idx ON goods (qty)');
SELECT count(*) AS coordinator_index FROM pg_class WHERE relname = 'goods_qty_idx';
\c node1
SELECT count(*) AS qty_indexes FROM pg_class WHERE relname ~ '^goods_qty_idx';
\c node2
SELECT count(*) AS qty_indexes FROM pg_class WHERE relname ~ '^goods_qty_idx';
\c node3
SELECT count(*) AS qty_indexes FROM pg_class WHERE relname ~ '^goods_qty_idx';
\c :coordinator
SET search_path TO ddl;

-- a column that exists on node3's shard only
SELECT 'goods_' || :node3_shard AS node3_goods \gset
\c node3
ALTER TABLE ddl.:"node3_goods" ADD COLUMN color text;
\c :coordinator
SET search_path TO ddl;
SELECT try('ALTER TABLE goods ADD COLUMN color text, ADD COLUMN size int');
\c node1
SELECT attname FROM pg_attribute
 WHERE attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^goods_[0-9]+$')
   AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
\c :coordinator
SET search_path TO ddl;
SELECT attname FROM pg_attribute
 WHERE attrelid = 'goods'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- the same in a transaction block: the error aborts it all, the earlier
-- DDL of the block too
BEGIN;
ALTER TABLE goods ADD COLUMN weight int;
\set VERBOSITY sqlstate
ALTER TABLE goods ADD COLUMN color text;
\set VERBOSITY default
COMMIT;
SELECT count(*) AS weight FROM pg_attribute WHERE attrelid = 'goods'::regclass AND attname = 'weight';
\c node1
SELECT count(*) AS weight FROM pg_attribute WHERE attname = 'weight'
   AND attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^goods_[0-9]+$');
\c node3
SELECT count(*) AS weight FROM pg_attribute WHERE attname = 'weight'
   AND attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^goods_[0-9]+$');
ALTER TABLE ddl.:"node3_goods" DROP COLUMN color;
\c :coordinator
SET search_path TO ddl;

-- ROLLBACK undoes DDL on the nodes too; a savepoint undoes its part
BEGIN;
ALTER TABLE goods ADD COLUMN weight int;
SAVEPOINT s;
ALTER TABLE goods ADD COLUMN height int;
ROLLBACK TO SAVEPOINT s;
CREATE INDEX goods_weight_idx ON goods (weight);
ROLLBACK;
BEGIN;
ALTER TABLE goods ADD COLUMN width int;
SAVEPOINT s;
ALTER TABLE goods ADD COLUMN depth int;
ROLLBACK TO SAVEPOINT s;
CREATE INDEX goods_width_idx ON goods (width);
COMMIT;
\c node1
SELECT attname FROM pg_attribute
 WHERE attrelid = (SELECT oid FROM pg_class WHERE relname ~ '^goods_[0-9]+$')
   AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT regexp_replace(relname, '[0-9]+', '<shard>') AS index FROM pg_class
 WHERE relname ~ '^goods_w';
\c node2
DROP INDEX ddl.:"clash";
\c :coordinator
SET search_path TO ddl;
SELECT item_id, width FROM goods WHERE item_id = 1;

--
-- refused statements, each with its reason
--
ALTER TABLE goods SET SCHEMA public;
ALTER SCHEMA ddl RENAME TO ddl2;
CREATE TABLE parted (item_id int) PARTITION BY RANGE (item_id);
ALTER TABLE parted ATTACH PARTITION goods FOR VALUES FROM (0) TO (100);
DROP TABLE parted;
CREATE TABLE parent (item_id int);
ALTER TABLE goods INHERIT parent;
CREATE TABLE child () INHERITS (goods);
ALTER TABLE parent INHERIT goods;
DROP TABLE parent;
ALTER TABLE goods ENABLE ROW LEVEL SECURITY;
ALTER TABLE goods FORCE ROW LEVEL SECURITY;
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER goods_noop BEFORE INSERT ON goods FOR EACH ROW EXECUTE FUNCTION noop();
CREATE RULE goods_nothing AS ON INSERT TO goods DO INSTEAD NOTHING;
ALTER TABLE goods SET (fillfactor = 50);
ALTER TABLE goods ALTER COLUMN name SET STATISTICS 10;
ALTER TABLE goods SET UNLOGGED;
ALTER INDEX items_pkey SET (fillfactor = 50);
-- coordinator-only subcommands are allowed
ALTER TABLE goods OWNER TO CURRENT_USER;

--
-- a generic plan of a router statement writes its shard SQL once (the
-- router SQL cache); a table dropped and made again under the same name
-- (new shards) or altered makes a new plan, whose SQL follows
--
SET plan_cache_mode = force_generic_plan;
CREATE TABLE cached (id int PRIMARY KEY, note text);
SELECT shardexec.create_distributed_table('cached', 'id', 3);
INSERT INTO cached VALUES (1, 'one'), (2, 'two');
PREPARE cached_row(int) AS SELECT count(*), max(note) FROM cached WHERE id = $1;
EXECUTE cached_row(1);
EXECUTE cached_row(2);
DROP TABLE cached;
CREATE TABLE cached (id int PRIMARY KEY, note text);
SELECT shardexec.create_distributed_table('cached', 'id', 3);
INSERT INTO cached VALUES (1, 'uno');
EXECUTE cached_row(1);
EXECUTE cached_row(2);
ALTER TABLE cached ADD COLUMN extra int DEFAULT 7;
UPDATE cached SET note = 'eins' WHERE id = 1;
EXECUTE cached_row(1);
DEALLOCATE cached_row;
RESET plan_cache_mode;

--
-- clean up: the shards go with the tables; the nodes' schema goes too
--
SET client_min_messages = warning;
DROP SCHEMA ddl CASCADE;
RESET client_min_messages;
SELECT count(*) AS left_over FROM shardexec.shards
 WHERE shard_table LIKE 'ddl.%';
\c node1
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'ddl';
DROP SCHEMA ddl;
\c node2
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'ddl';
DROP SCHEMA ddl;
\c node3
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'ddl';
DROP SCHEMA ddl;
\c :coordinator
