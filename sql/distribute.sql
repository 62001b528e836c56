--
-- distribute: create_distributed_table, create_reference_table and
-- undistribute_table end to end, and reading, writing and dropping
-- distributed tables.
--
-- Rows are checked where they live: "\c node1" etc. connect to the node
-- databases and read the shard tables.  Shard ids come from a sequence that
-- other test files use too, so they are never printed: shard tables are named
-- through psql variables, and ids are shown relative to the table's first.
--
CREATE SCHEMA dist;
SET search_path TO dist;
\set coordinator :DBNAME

-- masks shard ids (6 digits or more after an underscore) in a message
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

--
-- a table with existing rows and every kind of column and index
--
CREATE TABLE items (
    id bigint NOT NULL,
    tenant int NOT NULL DEFAULT 7,
    serial_col serial,
    ident bigint GENERATED ALWAYS AS IDENTITY,
    name text COLLATE "C" NOT NULL DEFAULT 'unnamed',
    price numeric(12,2) CHECK (price >= 0),
    ratio float8,
    span interval,
    created timestamptz DEFAULT now(),
    day date,
    doc jsonb,
    raw bytea,
    tags text[],
    uid uuid DEFAULT gen_random_uuid(),
    note text,
    total numeric GENERATED ALWAYS AS (price * 2) STORED,
    PRIMARY KEY (tenant, id),
    CONSTRAINT items_id_name_key UNIQUE (id, name)
);
CREATE INDEX items_name_idx ON items (name);
CREATE INDEX items_lower_note_idx ON items (lower(note));
CREATE INDEX items_partial_idx ON items (price) WHERE price > 100;
CREATE UNIQUE INDEX items_uid_idx ON items (uid, id);

INSERT INTO items (id, name, price, ratio, span, created, day, doc, raw, tags, note) VALUES
    (1, 'quotes', 1.50, 0.1 + 0.2, '1 year 2 mons -3 days 04:05:06.789',
     '2020-01-01 00:00:00+00', '2020-02-29', '{"a": "x\"y", "u": "\u00fc"}',
     '\x00ff5c0a', '{a,"b c",NULL,"d\"e","f\\g"}', E'it''s a \\ back\\slash\nnew line\ttab\rcr'),
    (2, 'specials', 'NaN', '-Infinity', '-1 days', 'infinity', '-infinity', 'null', '',
     '{}', '\N'),
    (3, 'nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, 'empty', 0, 0, '0', '1999-12-31 23:59:59.999999+00', '2000-01-01', '[]', '\x', '{""}', ''),
    (5, 'unicode', 9999999999.99, 1e300, '1 day', '2038-01-19 03:14:08+00', '0001-01-01 BC',
     '{"k": [1, 2.5, true, null]}', '\xdeadbeef', '{üñí,€,𝄞}', 'üñíçødé € 𝄞');
INSERT INTO items (id, name, price, note)
SELECT g, 'n' || g, g / 4.0, repeat('x', g % 7) FROM generate_series(6, 200) g;

-- a view over the table, created before it is distributed
CREATE VIEW cheap_items AS SELECT id, name, price FROM items WHERE price < 2;

SELECT count(*) AS count_before,
       md5(string_agg(i::text, E'\n' ORDER BY id)) AS checksum_before
  FROM items i \gset

SELECT shardexec.create_distributed_table('items', 'id', 4);

-- the same rows, read back from the shards
SELECT count(*) = :count_before AS same_count,
       md5(string_agg(i::text, E'\n' ORDER BY id)) = :'checksum_before' AS same_checksum
  FROM items i;
SELECT id, name, price, ratio, span, created AT TIME ZONE 'UTC' AS created_utc, day,
       doc, raw, tags, note, total
  FROM items WHERE id <= 5 ORDER BY id;
SELECT note = E'it''s a \\ back\\slash\nnew line\ttab\rcr' AS note_intact,
       tags[5] = 'f\g' AS tag_intact, ratio = 0.1 + 0.2 AS float_exact
  FROM items WHERE id = 1;
SELECT note = '\N' AS backslash_n_is_text FROM items WHERE id = 2;
SELECT * FROM cheap_items ORDER BY id;

-- the local table is an empty shell
SELECT pg_relation_size('items') AS local_size;

-- metadata
SELECT table_name, kind, distribution_column, shard_count FROM shardexec.tables
 WHERE table_name = 'items'::regclass;
SELECT shard_id - min(shard_id) OVER () AS shard, shard_index, hash_min, hash_max, node_name,
       shard_table = format('dist.items_%s', shard_id) AS shard_table_named
  FROM shardexec.shards WHERE table_name = 'items'::regclass ORDER BY shard_index;
-- the hash ranges cover the whole 32-bit space without gaps
SELECT min(hash_min) = -2147483648 AS from_min, max(hash_max) = 2147483647 AS to_max,
       bool_and(hash_min = coalesce(lag_max + 1, hash_min)) AS contiguous
  FROM (SELECT hash_min, hash_max, lag(hash_max) OVER (ORDER BY shard_index) AS lag_max
          FROM shardexec.shards WHERE table_name = 'items'::regclass) s;

--
-- every row is in the shard shard_id_for_value names, and in no other:
-- collect (shard id, value) of every row of every shard table on each node
--
SELECT coalesce(string_agg(format('SELECT %s::bigint AS shard_id, id::text AS value FROM %s',
                                  shard_id, shard_table), ' UNION ALL ')
                  FILTER (WHERE node_name = 'node1'), 'SELECT 0::bigint, NULL::text WHERE false') AS q1,
       coalesce(string_agg(format('SELECT %s::bigint AS shard_id, id::text AS value FROM %s',
                                  shard_id, shard_table), ' UNION ALL ')
                  FILTER (WHERE node_name = 'node2'), 'SELECT 0::bigint, NULL::text WHERE false') AS q2,
       coalesce(string_agg(format('SELECT %s::bigint AS shard_id, id::text AS value FROM %s',
                                  shard_id, shard_table), ' UNION ALL ')
                  FILTER (WHERE node_name = 'node3'), 'SELECT 0::bigint, NULL::text WHERE false') AS q3
  FROM shardexec.shards WHERE table_name = 'dist.items'::regclass \gset
\c node1
SELECT coalesce(jsonb_agg(jsonb_build_array(shard_id, value)), '[]') AS rows1 FROM (:q1) s \gset
\c node2
SELECT coalesce(jsonb_agg(jsonb_build_array(shard_id, value)), '[]') AS rows2 FROM (:q2) s \gset
\c node3
SELECT coalesce(jsonb_agg(jsonb_build_array(shard_id, value)), '[]') AS rows3 FROM (:q3) s \gset
\c :coordinator
SET search_path TO dist;
SELECT count(*) AS rows_on_nodes,
       count(DISTINCT e->>1) AS distinct_ids,
       count(*) FILTER (WHERE shardexec.shard_id_for_value('items', (e->>1)::bigint) <> (e->>0)::bigint) AS misplaced,
       count(*) FILTER (WHERE hashint8((e->>1)::bigint) NOT BETWEEN s.hash_min AND s.hash_max) AS out_of_range
  FROM jsonb_array_elements(:'rows1'::jsonb || :'rows2'::jsonb || :'rows3'::jsonb) e
  JOIN shardexec.shards s ON s.shard_id = (e->>0)::bigint;
-- every shard got some rows
SELECT count(DISTINCT e->>0) AS shards_with_rows
  FROM jsonb_array_elements(:'rows1'::jsonb || :'rows2'::jsonb || :'rows3'::jsonb) e;

--
-- a shard's definition on its node: columns, shippable defaults (not the
-- sequence), the generated column, collation, constraints and indexes
--
SELECT shard_id AS shard0_id, shard_table AS shard0
  FROM shardexec.shards WHERE table_name = 'items'::regclass AND shard_index = 0 \gset
\c node1
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid) AS default_or_generated, a.attgenerated,
       CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation END AS collation
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = :'shard0'::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum;
SELECT replace(conname, :'shard0_id', 'N') AS conname, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE conrelid = :'shard0'::regclass ORDER BY 1;
SELECT replace(pg_get_indexdef(indexrelid), :'shard0_id', 'N') AS indexdef
  FROM pg_index WHERE indrelid = :'shard0'::regclass ORDER BY 1;
-- nothing else of the table's schema on the node: only its shards
SELECT count(*) AS tables_in_schema FROM pg_tables WHERE schemaname = 'dist';
\c :coordinator
SET search_path TO dist;
SELECT count(*) AS shards_on_node1 FROM shardexec.shards
 WHERE table_name = 'dist.items'::regclass AND node_name = 'node1';

--
-- INSERT: defaults, sequences and identities are evaluated once, on the
-- coordinator; RETURNING is computed there too, generated column included
--
INSERT INTO items (id, name, price) VALUES (1001, 'one', 3)
RETURNING id, tenant, serial_col = currval('items_serial_col_seq') AS serial_ok,
          ident > 200 AS ident_ok, name, price, total, uid IS NOT NULL AS has_uid;
INSERT INTO items (id, name, price, note) VALUES
    (1002, 'two', 4, E'multi\nrow'), (1003, 'three', NULL, '\'), (1004, 'four', 0.5, NULL)
RETURNING id, total;
INSERT INTO items (id, name) VALUES (1005, 'no price');
INSERT INTO items (id) VALUES (1006) RETURNING name, tenant;
-- identity GENERATED ALWAYS is enforced as usual
INSERT INTO items (id, name, ident) VALUES (1007, 'ident', 1);
INSERT INTO items (id, name, ident) OVERRIDING SYSTEM VALUE VALUES (1007, 'ident', -7)
RETURNING id, ident;
-- INSERT ... SELECT from a local table
CREATE TABLE staging (id bigint, name text, price numeric);
INSERT INTO staging SELECT g, 'staged ' || g, g FROM generate_series(2001, 2050) g;
INSERT INTO items (id, name, price) SELECT id, name, price FROM staging;
-- INSERT ... SELECT from the distributed table itself
INSERT INTO items (id, tenant, name, price, note)
SELECT id + 10000, 8, name, price, note FROM items WHERE id <= 5;
SELECT id, tenant, name, price, note, total FROM items WHERE id > 10000 ORDER BY id;
-- errors of the shards come back (names of shard objects masked)
SELECT try($$INSERT INTO items (id, name, price) VALUES (1001, 'one', 3)$$);
SELECT try($$INSERT INTO items (id, name, price) VALUES (3000, 'negative', -1)$$);
SELECT try($$INSERT INTO items (id, name) VALUES (3001, NULL)$$);
SELECT count(*) FROM items WHERE id IN (1001, 3000, 3001);
-- a statement that fails part way leaves nothing behind
SELECT try($$INSERT INTO items (id, name, price) VALUES (3002, 'ok', 1), (3003, 'bad', -1)$$);
SELECT count(*) FROM items WHERE id IN (3002, 3003);
-- in a transaction, rows are visible at once and gone after ROLLBACK
BEGIN;
INSERT INTO items (id, name) VALUES (3004, 'rolled back');
SELECT count(*) FROM items WHERE id = 3004;
ROLLBACK;
SELECT count(*) FROM items WHERE id = 3004;

--
-- COPY FROM (text and csv) routes rows like INSERT
--
COPY items (id, name, price, note, tags) FROM STDIN;
4001	copy text	1.25	tab\there, backslash \\ and newline\nend	{x,"y z"}
4002	copy nulls	\N	\N	\N
4003	copy \\N	0	\\N	{}
\.
COPY items (id, name, price, note) FROM STDIN (FORMAT csv, HEADER true);
id,name,price,note
4004,csv,2.5,"quoted ""x"", comma"
4005,csv empty,,""
4006,"csv, multi
line",3,
\.
SELECT id, name, price, note, tags, total, serial_col IS NOT NULL AS has_serial
  FROM items WHERE id BETWEEN 4001 AND 4006 ORDER BY id;
-- serial and identity values are unique over all shards
SELECT count(*) AS rows, count(DISTINCT serial_col) AS serials, count(DISTINCT ident) AS idents
  FROM items;

--
-- COPY TO
--
COPY (SELECT id, name, price, note, tags FROM items WHERE id BETWEEN 4001 AND 4006 ORDER BY id) TO STDOUT;
COPY (SELECT id, name, note FROM items WHERE id BETWEEN 4004 AND 4006 ORDER BY id) TO STDOUT (FORMAT csv, HEADER true);
-- COPY table TO reads the shards (one shard here, so the order is fixed)
CREATE TABLE single (k text PRIMARY KEY, v int DEFAULT 42);
INSERT INTO single VALUES ('b', 2), ('a', 1), ('c', NULL);
SELECT shardexec.create_distributed_table('single', 'k', 1);
SELECT node_name FROM shardexec.shards WHERE table_name = 'single'::regclass;
COPY single TO STDOUT;
COPY single (v, k) TO STDOUT (FORMAT csv);

--
-- the rows written above are in the right shards too
--
SELECT coalesce(string_agg(format('SELECT %s::bigint AS shard_id, id::text AS value FROM %s',
                                  shard_id, shard_table), ' UNION ALL ')
                  FILTER (WHERE node_name = 'node1'), 'SELECT 0::bigint, NULL::text WHERE false') AS q1,
       coalesce(string_agg(format('SELECT %s::bigint AS shard_id, id::text AS value FROM %s',
                                  shard_id, shard_table), ' UNION ALL ')
                  FILTER (WHERE node_name = 'node2'), 'SELECT 0::bigint, NULL::text WHERE false') AS q2,
       coalesce(string_agg(format('SELECT %s::bigint AS shard_id, id::text AS value FROM %s',
                                  shard_id, shard_table), ' UNION ALL ')
                  FILTER (WHERE node_name = 'node3'), 'SELECT 0::bigint, NULL::text WHERE false') AS q3
  FROM shardexec.shards WHERE table_name = 'dist.items'::regclass \gset
\c node1
SELECT coalesce(jsonb_agg(jsonb_build_array(shard_id, value)), '[]') AS rows1 FROM (:q1) s \gset
\c node2
SELECT coalesce(jsonb_agg(jsonb_build_array(shard_id, value)), '[]') AS rows2 FROM (:q2) s \gset
\c node3
SELECT coalesce(jsonb_agg(jsonb_build_array(shard_id, value)), '[]') AS rows3 FROM (:q3) s \gset
\c :coordinator
SET search_path TO dist;
SELECT count(*) = (SELECT count(*) FROM items) AS all_rows_on_nodes,
       count(DISTINCT e->>1) = count(*) AS each_once,
       count(*) FILTER (WHERE shardexec.shard_id_for_value('items', (e->>1)::bigint) <> (e->>0)::bigint) AS misplaced
  FROM jsonb_array_elements(:'rows1'::jsonb || :'rows2'::jsonb || :'rows3'::jsonb) e;

--
-- colocation
--
CREATE TABLE item_notes (item_id bigint NOT NULL, seq int NOT NULL, body text,
                         PRIMARY KEY (item_id, seq));
INSERT INTO item_notes SELECT id, s, 'note ' || id || '.' || s
  FROM generate_series(1, 10) id, generate_series(1, 2) s;
SELECT shardexec.create_distributed_table('item_notes', 'item_id', 4, colocate_with => 'items');
-- same group, and shard i of both tables on the same node
SELECT t.table_name, t.shard_count, t.colocation_id = i.colocation_id AS same_group
  FROM shardexec.tables t, shardexec.tables i
 WHERE i.table_name = 'items'::regclass AND t.table_name = 'item_notes'::regclass;
SELECT a.shard_index, a.node_name, b.node_name = a.node_name AS same_node,
       a.hash_min = b.hash_min AND a.hash_max = b.hash_max AS same_range
  FROM shardexec.shards a JOIN shardexec.shards b USING (shard_index)
 WHERE a.table_name = 'items'::regclass AND b.table_name = 'item_notes'::regclass
 ORDER BY a.shard_index;
-- a value maps to the same shard index in both
SELECT count(*) AS differing
  FROM generate_series(1, 1000) v
  JOIN shardexec.shards a ON a.shard_id = shardexec.shard_id_for_value('items', v::bigint)
  JOIN shardexec.shards b ON b.shard_id = shardexec.shard_id_for_value('item_notes', v::bigint)
 WHERE a.shard_index <> b.shard_index;
-- shard_id_for_value converts a value of another type to the column's
SELECT shardexec.shard_id_for_value('items', 42) = shardexec.shard_id_for_value('items', 42::bigint) AS int4_ok,
       shardexec.shard_id_for_value('items', '42'::text) = shardexec.shard_id_for_value('items', 42::bigint) AS text_ok;

-- the default shard count, placed round-robin over the three nodes
CREATE TABLE wide (id int PRIMARY KEY);
SELECT shardexec.create_distributed_table('wide', 'id');
SELECT node_name, count(*) FROM shardexec.shards WHERE table_name = 'wide'::regclass
 GROUP BY node_name ORDER BY node_name;
SELECT bool_and(node_name = 'node' || (shard_index % 3 + 1)) AS round_robin
  FROM shardexec.shards WHERE table_name = 'wide'::regclass;
INSERT INTO wide SELECT generate_series(1, 1000);
SELECT count(*), sum(id) FROM wide;
SELECT count(*) AS empty_shards FROM shardexec.shards s
 WHERE table_name = 'wide'::regclass
   AND NOT EXISTS (SELECT 1 FROM generate_series(1, 1000) v
                    WHERE shardexec.shard_id_for_value('wide', v) = s.shard_id);

--
-- reference tables: a full copy on every node
--
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
INSERT INTO countries VALUES ('de', 'Germany'), ('fr', 'France'), ('it', 'Italy');
SELECT shardexec.create_reference_table('countries');
SELECT table_name, kind, distribution_column, shard_count
  FROM shardexec.tables WHERE table_name = 'countries'::regclass;
SELECT shard_index, hash_min, hash_max, node_name FROM shardexec.shards
 WHERE table_name = 'countries'::regclass ORDER BY node_name;
INSERT INTO countries VALUES ('es', 'Spain');
COPY countries FROM STDIN (FORMAT csv);
pt,Portugal
\.
SELECT * FROM countries ORDER BY code;
SELECT pg_relation_size('countries') AS local_size;
SELECT shard_table AS countries_shard FROM shardexec.shards
 WHERE table_name = 'countries'::regclass LIMIT 1 \gset
\c node1
SELECT string_agg(code, ',' ORDER BY code) AS node1_copy FROM :countries_shard;
\c node2
SELECT string_agg(code, ',' ORDER BY code) AS node2_copy FROM :countries_shard;
\c node3
SELECT string_agg(code, ',' ORDER BY code) AS node3_copy FROM :countries_shard;
\c :coordinator
SET search_path TO dist;

--
-- joins of a distributed table, a colocated one, a reference table and a
-- local table, and aggregates over them
--
CREATE TABLE item_country (item_id bigint, code char(2));
INSERT INTO item_country VALUES (1, 'de'), (2, 'fr'), (3, 'it'), (4, 'de'), (5, 'xx'), (6, 'pt');
SELECT i.id, i.name, c.name AS country, count(n.seq) AS notes
  FROM items i
  JOIN item_country ic ON ic.item_id = i.id
  LEFT JOIN countries c ON c.code = ic.code
  LEFT JOIN item_notes n ON n.item_id = i.id
 GROUP BY i.id, i.name, c.name
 ORDER BY i.id;
SELECT c.name, count(*), sum(i.price)
  FROM items i JOIN item_country ic ON ic.item_id = i.id JOIN countries c USING (code)
 GROUP BY c.name ORDER BY c.name;
SELECT count(*) AS pairs FROM items a JOIN item_notes b ON a.id = b.item_id;
SELECT (SELECT count(*) FROM items) AS items, (SELECT count(*) FROM item_notes) AS notes,
       (SELECT max(id) FROM items WHERE id < 1000) AS max_small_id;
SELECT name FROM items WHERE id IN (SELECT item_id FROM item_notes WHERE seq = 2 AND item_id > 8)
 ORDER BY name;
WITH t AS (SELECT tenant, count(*) AS n FROM items GROUP BY tenant)
SELECT * FROM t ORDER BY tenant;
-- UNION ALL branches read the shards too
SELECT count(*), sum(id) FROM (SELECT id FROM items UNION ALL SELECT item_id FROM item_notes) s;
SELECT id FROM items WHERE id < 3 UNION ALL SELECT item_id FROM item_notes WHERE seq = 1 AND item_id < 3
 ORDER BY 1;

--
-- names with quotes, spaces, semicolons and upper case, end to end
--
CREATE SCHEMA "Dist ""S""; x";
CREATE TABLE "Dist ""S""; x"."My ""Table""; x" (
    "Key Col" text NOT NULL,
    "Val;ue" int DEFAULT 1 CHECK ("Val;ue" > 0),
    "UPPER" text,
    PRIMARY KEY ("Key Col")
);
CREATE INDEX "Idx ""Val"";" ON "Dist ""S""; x"."My ""Table""; x" ("Val;ue", "UPPER");
INSERT INTO "Dist ""S""; x"."My ""Table""; x" VALUES ('a b', 1, 'A'), ('c"d', 2, 'B'), ('e;f', 3, NULL);
SELECT shardexec.create_distributed_table('"Dist ""S""; x"."My ""Table""; x"', 'Key Col', 3);
SELECT table_name, distribution_column FROM shardexec.tables
 WHERE table_name = '"Dist ""S""; x"."My ""Table""; x"'::regclass;
INSERT INTO "Dist ""S""; x"."My ""Table""; x" ("Key Col", "UPPER") VALUES ('g''h', 'G')
RETURNING *;
COPY "Dist ""S""; x"."My ""Table""; x" ("Key Col", "Val;ue") FROM STDIN;
i\tj	5
\.
SELECT * FROM "Dist ""S""; x"."My ""Table""; x" ORDER BY "Key Col";
SELECT count(*) AS shard_tables_named
  FROM shardexec.shards
 WHERE table_name = '"Dist ""S""; x"."My ""Table""; x"'::regclass
   AND shard_table = format('"Dist ""S""; x"."My ""Table""; x_%s"', shard_id);
TRUNCATE "Dist ""S""; x"."My ""Table""; x";
SELECT count(*) FROM "Dist ""S""; x"."My ""Table""; x";
INSERT INTO "Dist ""S""; x"."My ""Table""; x" VALUES ('back', 9, 'again');
SELECT shardexec.undistribute_table('"Dist ""S""; x"."My ""Table""; x"');
SELECT * FROM "Dist ""S""; x"."My ""Table""; x";
DROP SCHEMA "Dist ""S""; x" CASCADE;

-- names of 63 bytes: the table part of a shard's name is cut to fit
CREATE TABLE long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa (
    id int PRIMARY KEY, v text);
CREATE TABLE long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab (
    id int PRIMARY KEY, v text);
INSERT INTO long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa VALUES (1, 'a');
INSERT INTO long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab VALUES (1, 'b');
SELECT shardexec.create_distributed_table('long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'id', 2);
SELECT shardexec.create_distributed_table('long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab', 'id', 2);
SELECT length(shard_table) - length('dist.') AS name_length,
       shard_table = format('dist.%s_%s', left(table_name::text, 63 - 1 - length(shard_id::text)), shard_id) AS cut_name
  FROM shardexec.shards WHERE table_name::text LIKE 'long_name_%' ORDER BY shard_id;
\c node1
SELECT length(tablename) AS table_length, length(indexname) AS index_length,
       indexname LIKE '%\_________\_1_____' AS hashed_index_name
  FROM pg_indexes WHERE schemaname = 'dist' AND tablename LIKE 'long\_name\_%' ORDER BY tablename;
\c :coordinator
SET search_path TO dist;
SELECT * FROM long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
UNION ALL
SELECT * FROM long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab ORDER BY v;
DROP TABLE long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,
           long_name_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab;

--
-- TRUNCATE empties the shards, of distributed and reference tables alike
--
SELECT array_agg(shard_table) AS truncated_shards FROM shardexec.shards
 WHERE table_name IN ('items'::regclass, 'countries'::regclass) AND node_name = 'node2' \gset
TRUNCATE items, countries;
SELECT (SELECT count(*) FROM items) AS items, (SELECT count(*) FROM countries) AS countries;
\c node2
SELECT count(*) AS shard_tables,
       sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %s', t), false, true, '')))[1]::text::int) AS rows
  FROM unnest(:'truncated_shards'::text[]) t;
\c :coordinator
SET search_path TO dist;
-- and the tables work as before
INSERT INTO items (id, name) VALUES (1, 'after truncate');
INSERT INTO countries VALUES ('nl', 'Netherlands');
SELECT i.id, i.name, c.name FROM items i, countries c;

--
-- undistribute_table: the rows come back into the local table, the shards
-- are dropped, the metadata is removed
--
SELECT array_agg(shard_table) AS notes_shards FROM shardexec.shards
 WHERE table_name = 'item_notes'::regclass \gset
SELECT count(*) AS notes_before, md5(string_agg(n::text, ',' ORDER BY item_id, seq)) AS notes_sum
  FROM item_notes n \gset
SELECT shardexec.undistribute_table('item_notes');
SELECT count(*) = :notes_before AS same_count,
       md5(string_agg(n::text, ',' ORDER BY item_id, seq)) = :'notes_sum' AS same_checksum
  FROM item_notes n;
SELECT pg_relation_size('item_notes') > 0 AS local_rows;
SELECT count(*) FROM shardexec.tables WHERE table_name = 'item_notes'::regclass;
SELECT count(*) FROM shardexec.shard WHERE table_id = 'item_notes'::regclass;
-- an ordinary table again: UPDATE works, the primary key is enforced
UPDATE item_notes SET body = upper(body) WHERE item_id = 1 AND seq = 1;
SELECT body FROM item_notes WHERE item_id = 1 AND seq = 1;
INSERT INTO item_notes VALUES (1, 1, 'duplicate');
-- items keeps its colocation group
SELECT count(*) AS items_group FROM shardexec.colocation c JOIN shardexec.tables t USING (colocation_id)
 WHERE t.table_name = 'items'::regclass;
-- undistributing what is not distributed
SELECT shardexec.undistribute_table('item_notes');
-- a reference table comes back the same way
CREATE TABLE ref_back (k int PRIMARY KEY, v text);
INSERT INTO ref_back VALUES (1, 'one'), (2, 'two');
SELECT shardexec.create_reference_table('ref_back');
INSERT INTO ref_back VALUES (3, 'three');
SELECT shard_table AS ref_back_shard FROM shardexec.shards
 WHERE table_name = 'ref_back'::regclass LIMIT 1 \gset
SELECT shardexec.undistribute_table('ref_back');
SELECT * FROM ref_back ORDER BY k;
SELECT pg_relation_size('ref_back') > 0 AS local_rows;
SELECT count(*) FROM shardexec.shard WHERE table_id = 'ref_back'::regclass;
\c node1
SELECT count(*) AS notes_shards_left FROM unnest(:'notes_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
SELECT to_regclass(:'ref_back_shard') IS NULL AS ref_back_shard_dropped;
\c node2
SELECT count(*) AS notes_shards_left FROM unnest(:'notes_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
SELECT to_regclass(:'ref_back_shard') IS NULL AS ref_back_shard_dropped;
\c node3
SELECT count(*) AS notes_shards_left FROM unnest(:'notes_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
SELECT to_regclass(:'ref_back_shard') IS NULL AS ref_back_shard_dropped;
\c :coordinator
SET search_path TO dist;
-- and it can be distributed again
SELECT shardexec.create_distributed_table('item_notes', 'item_id', 4, colocate_with => 'items');
SELECT count(*) FROM item_notes;

--
-- DROP TABLE drops the shards and the metadata
--
SELECT array_agg(shard_table) AS dropped_shards FROM shardexec.shards
 WHERE table_name IN ('items'::regclass, 'item_notes'::regclass, 'countries'::regclass) \gset
SELECT 'items'::regclass::oid AS items_oid \gset
DROP VIEW cheap_items;
DROP TABLE items, item_notes;
DROP TABLE countries;
SELECT count(*) AS metadata_left FROM shardexec.dist_table WHERE table_id = :items_oid;
SELECT count(*) AS shards_left FROM shardexec.shard WHERE table_id = :items_oid;
SELECT t.table_name FROM shardexec.tables t JOIN pg_class c ON c.oid = t.table_name
 WHERE c.relnamespace = 'dist'::regnamespace ORDER BY 1;
\c node1
SELECT count(*) AS dropped_shards_left FROM unnest(:'dropped_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
\c node2
SELECT count(*) AS dropped_shards_left FROM unnest(:'dropped_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
\c node3
SELECT count(*) AS dropped_shards_left FROM unnest(:'dropped_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
\c :coordinator
SET search_path TO dist;
-- DROP TABLE in a transaction that rolls back keeps table and shards
BEGIN;
DROP TABLE wide;
ROLLBACK;
SELECT count(*), sum(id) FROM wide;

--
-- DROP SCHEMA ... CASCADE with distributed and reference tables in it
--
CREATE SCHEMA dist_drop;
CREATE TABLE dist_drop.a (id int PRIMARY KEY);
CREATE TABLE dist_drop.b (id int PRIMARY KEY);
CREATE TABLE dist_drop.r (id int PRIMARY KEY);
INSERT INTO dist_drop.a VALUES (1), (2);
SELECT shardexec.create_distributed_table('dist_drop.a', 'id', 3);
SELECT shardexec.create_distributed_table('dist_drop.b', 'id', 3, colocate_with => 'dist_drop.a');
SELECT shardexec.create_reference_table('dist_drop.r');
SELECT array_agg(shard_table) AS schema_shards FROM shardexec.shards
 WHERE table_name::text LIKE 'dist_drop.%' \gset
SELECT count(*) AS tables_before FROM shardexec.dist_table \gset
DROP SCHEMA dist_drop CASCADE;
SELECT :tables_before - count(*) AS tables_removed FROM shardexec.dist_table;
SELECT count(*) AS orphan_shards FROM shardexec.shard s
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.table_id);
\c node1
SELECT count(*) AS schema_shards_left FROM unnest(:'schema_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
DROP SCHEMA dist_drop;
\c node2
SELECT count(*) AS schema_shards_left FROM unnest(:'schema_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
DROP SCHEMA dist_drop;
\c node3
SELECT count(*) AS schema_shards_left FROM unnest(:'schema_shards'::text[]) t WHERE to_regclass(t) IS NOT NULL;
DROP SCHEMA dist_drop;
\c :coordinator

--
-- clean up: the schema here, then on the nodes (empty by then)
--
SET client_min_messages TO warning;
DROP SCHEMA dist CASCADE;
RESET client_min_messages;
-- no metadata of a table that no longer exists, no empty colocation group
SELECT count(*) AS orphan_tables FROM shardexec.dist_table d
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = d.table_id);
SELECT count(*) AS orphan_shards FROM shardexec.shard s
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.table_id);
SELECT count(*) AS empty_groups FROM shardexec.colocation c
 WHERE c.distribution_type IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM shardexec.dist_table d WHERE d.colocation_id = c.colocation_id);
\c node1
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'dist';
DROP SCHEMA dist;
DROP SCHEMA "Dist ""S""; x";
\c node2
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'dist';
DROP SCHEMA dist;
DROP SCHEMA "Dist ""S""; x";
\c node3
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'dist';
DROP SCHEMA dist;
DROP SCHEMA "Dist ""S""; x";
\c :coordinator
