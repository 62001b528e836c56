--
-- security: who may change the cluster, how a role that is not a
-- superuser reaches the nodes, that passwords never show, and that names
-- and values in the SQL sent to the nodes are always quoted.
--
-- The nodes are databases of this instance, reached over 127.0.0.1 with
-- trust authentication.  To show a connection that really uses a password,
-- this file adds, for the length of the test, a pg_hba.conf line that asks
-- the role sec_owner for one (scram-sha-256), and makes sec_owner the owner
-- of the node databases so that it may create its shards in their public
-- schema; both are undone at the end.  Connection errors go through try(),
-- which masks the instance's port.
--
CREATE SCHEMA security;
SET search_path TO security;
SELECT current_setting('port') AS port \gset

-- runs a command and returns its error (or 'ok'), with the port, shard
-- ids and, where connections to several nodes are opened at once and the
-- first to fail is named, the node's number masked
CREATE FUNCTION try(cmd text, OUT error text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE cmd;
    error := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS error = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    error := regexp_replace(regexp_replace(error, '_[0-9]{6,}', '_<id>', 'g'),
                            'node "node[0-9]"', 'node "node<n>"', 'g');
    detail := replace(split_part(detail, E'\n', 1),
                      'port ' || current_setting('port'), 'port <port>');
END
$$;
GRANT USAGE ON SCHEMA security TO PUBLIC;
GRANT EXECUTE ON FUNCTION try(text) TO PUBLIC;

-- EXPLAIN (or EXPLAIN ANALYZE) with shard ids masked
CREATE FUNCTION explain(q text, with_analyze boolean DEFAULT false) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF'
                        || CASE WHEN with_analyze THEN ', ANALYZE, TIMING OFF, SUMMARY OFF' ELSE '' END
                        || ') ' || q LOOP
        RETURN NEXT regexp_replace(line, '_[0-9]{6,}', '_<id>', 'g');
    END LOOP;
END
$$;

GRANT EXECUTE ON FUNCTION explain(text, boolean) TO PUBLIC;

CREATE ROLE sec_plain LOGIN;
CREATE ROLE sec_owner LOGIN PASSWORD 'sec-Secret-Pw1';

--
-- 1. Changing the cluster is for superusers
--
\set VERBOSITY terse
SET ROLE sec_plain;
SELECT shardexec.add_node('sec_node', '127.0.0.1', :port, 'node1');
SELECT shardexec.remove_node('node1');
SELECT shardexec.add_replica('node1', '127.0.0.1', :port);
SELECT shardexec.register_plugin('sec_plugin', 'shardexec.shardexec_fdw_handler');
SELECT shardexec.unregister_plugin('observe');
SELECT shardexec.recover_prepared_transactions();
-- nor the catalog, the nodes' foreign servers, their user mappings or the
-- settings reserved to superusers
INSERT INTO shardexec.node VALUES (99, 'sec_node');
DELETE FROM shardexec.placement;
UPDATE shardexec.transaction_record SET node_id = 0;
CREATE SERVER sec_server FOREIGN DATA WRAPPER shardexec;
ALTER SERVER node1 OPTIONS (SET port '1');
DROP SERVER node1 CASCADE;
CREATE USER MAPPING FOR sec_plain SERVER node1 OPTIONS (user 'postgres', password 'x');
SET shardexec.log_remote_sql = on;
SET shardexec.test_2pc_fault = error_after_prepare;
SET shardexec.max_shared_pool_size = 1;
-- what it may do: read the metadata
SELECT count(*) > 0 AS sees_nodes FROM shardexec.nodes;
RESET ROLE;
\set VERBOSITY default

--
-- 2. A role that is not a superuser reaches the nodes only through a user
-- mapping with a password, and only if the node asks for it
--
CREATE TABLE plain_items (id bigint PRIMARY KEY, v text);
SELECT shardexec.create_distributed_table('plain_items', 'id', 4);
INSERT INTO plain_items SELECT g, 'v' || g FROM generate_series(1, 20) g;
GRANT SELECT ON plain_items TO sec_plain;
-- a superuser needs no mapping
SELECT count(*) FROM plain_items;

SET ROLE sec_plain;
-- no mapping
SELECT * FROM try('SELECT count(*) FROM security.plain_items');
RESET ROLE;
-- a mapping without a password
CREATE USER MAPPING FOR sec_plain SERVER node1 OPTIONS (user 'sec_plain');
CREATE USER MAPPING FOR sec_plain SERVER node2 OPTIONS (user 'sec_plain');
CREATE USER MAPPING FOR sec_plain SERVER node3 OPTIONS (user 'sec_plain');
SET ROLE sec_plain;
SELECT * FROM try('SELECT count(*) FROM security.plain_items');
RESET ROLE;
-- a password, but the node lets sec_plain in without asking for it
ALTER USER MAPPING FOR sec_plain SERVER node1 OPTIONS (ADD password 'sec-Plain-Pw2');
ALTER USER MAPPING FOR sec_plain SERVER node2 OPTIONS (ADD password 'sec-Plain-Pw2');
ALTER USER MAPPING FOR sec_plain SERVER node3 OPTIONS (ADD password 'sec-Plain-Pw2');
SET ROLE sec_plain;
SELECT * FROM try('SELECT count(*) FROM security.plain_items');
SELECT * FROM try('SELECT v FROM security.plain_items WHERE id = 1');
RESET ROLE;

-- the files of the coordinator are not for other roles' connections:
-- sslcert and sslkey in a user mapping are for superusers to set, as in
-- postgres_fdw (here sec_plain may create its own mappings)
GRANT USAGE ON FOREIGN SERVER node1 TO sec_plain;
SET ROLE sec_plain;
DROP USER MAPPING FOR sec_plain SERVER node1;
CREATE USER MAPPING FOR sec_plain SERVER node1
    OPTIONS (user 'sec_plain', password 'x', sslkey '/etc/ssl/private/ssl-cert-snakeoil.key');
CREATE USER MAPPING FOR sec_plain SERVER node1 OPTIONS (user 'sec_plain', password 'x');
ALTER USER MAPPING FOR sec_plain SERVER node1 OPTIONS (ADD sslcert '/etc/ssl/certs/ssl-cert-snakeoil.pem');
RESET ROLE;
REVOKE USAGE ON FOREIGN SERVER node1 FROM sec_plain;

-- Now a node that asks sec_owner for its password: the first line of
-- pg_hba.conf, for this test only.  sec_owner owns the node databases for
-- a while, so that its shards can go in their public schema.
CREATE TABLE hba_saved AS SELECT pg_read_file(current_setting('hba_file')) AS content;
DO $$
BEGIN
    EXECUTE format($c$COPY (SELECT line FROM (
            SELECT 0 AS n, 'host all sec_owner 127.0.0.1/32 scram-sha-256' AS line
            UNION ALL
            SELECT n, replace(line, E'\t', ' ')
              FROM hba_saved, regexp_split_to_table(rtrim(content, E'\n'), E'\n')
                   WITH ORDINALITY AS l(line, n)) lines ORDER BY n) TO %L$c$,
        current_setting('hba_file'));
END
$$;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
ALTER DATABASE node1 OWNER TO sec_owner;
ALTER DATABASE node2 OWNER TO sec_owner;
ALTER DATABASE node3 OWNER TO sec_owner;
GRANT CREATE ON SCHEMA public TO sec_owner;

-- a wrong password: the node refuses, the error names the node and does
-- not show the password
CREATE USER MAPPING FOR sec_owner SERVER node1 OPTIONS (user 'sec_owner', password 'wrong-Pw-3');
CREATE USER MAPPING FOR sec_owner SERVER node2 OPTIONS (user 'sec_owner', password 'wrong-Pw-3');
CREATE USER MAPPING FOR sec_owner SERVER node3 OPTIONS (user 'sec_owner', password 'wrong-Pw-3');
SET ROLE sec_owner;
CREATE TABLE public.sec_owned (id bigint PRIMARY KEY, v text);
INSERT INTO public.sec_owned SELECT g, 'o' || g FROM generate_series(1, 10) g;
SELECT * FROM try($$SELECT shardexec.create_distributed_table('public.sec_owned', 'id', 4)$$);
RESET ROLE;
-- the right password: everything works
ALTER USER MAPPING FOR sec_owner SERVER node1 OPTIONS (SET password 'sec-Secret-Pw1');
ALTER USER MAPPING FOR sec_owner SERVER node2 OPTIONS (SET password 'sec-Secret-Pw1');
ALTER USER MAPPING FOR sec_owner SERVER node3 OPTIONS (SET password 'sec-Secret-Pw1');
SET ROLE sec_owner;
SELECT shardexec.create_distributed_table('public.sec_owned', 'id', 4);
SELECT count(*), min(v), max(v) FROM public.sec_owned;
SELECT v FROM public.sec_owned WHERE id = 7;
INSERT INTO public.sec_owned VALUES (11, 'o11');
UPDATE public.sec_owned SET v = v || '!' WHERE id > 8;
SELECT id, v FROM public.sec_owned WHERE id > 8 ORDER BY id;

-- passwords are not in the pool view (the key masks them), nor in the
-- nodes view, nor in EXPLAIN
SELECT count(*) > 0 AS has_connections,
       bool_and(key LIKE '%password=********%') AS masked,
       bool_and(position('sec-Secret-Pw1' IN key) = 0) AS no_password
  FROM shardexec.connections;
SELECT bool_and(position('sec-Secret-Pw1' IN t::text) = 0) AS no_password_in_nodes
  FROM shardexec.nodes t;
SELECT bool_and(position('sec-Secret-Pw1' IN e) = 0 AND position('password' IN e) = 0)
       AS no_password_in_explain
  FROM explain('SELECT * FROM public.sec_owned WHERE id = 7') e;
SELECT bool_and(position('sec-Secret-Pw1' IN e) = 0 AND position('password' IN e) = 0)
       AS no_password_in_explain_analyze
  FROM explain('SELECT count(*) FROM public.sec_owned', with_analyze => true) e;
-- the user mapping's options are for its owner and superusers to see, as
-- for any foreign server (pg_user_mappings)
SELECT srvname, umoptions IS NULL AS hidden
  FROM pg_user_mappings WHERE usename = 'sec_plain' ORDER BY 1;
RESET ROLE;

-- a connection that fails after the password was changed on the node: the
-- error, the view and the log do not show the password
ALTER ROLE sec_owner PASSWORD 'sec-Changed-Pw4';
SET ROLE sec_owner;
SELECT shardexec.close_idle_connections() >= 0 AS closed;
SELECT * FROM try('SELECT count(*) FROM public.sec_owned');
SELECT count(*) AS connections_left FROM shardexec.connections;
RESET ROLE;
SELECT CASE WHEN pg_stat_file(current_setting('data_directory') || '/../../log/postmaster.log', true) IS NULL
            THEN 'no log to check'
            WHEN position('sec-Secret-Pw1' IN pg_read_file(current_setting('data_directory') || '/../../log/postmaster.log')) > 0
              OR position('sec-Plain-Pw2' IN pg_read_file(current_setting('data_directory') || '/../../log/postmaster.log')) > 0
              OR position('wrong-Pw-3' IN pg_read_file(current_setting('data_directory') || '/../../log/postmaster.log')) > 0
            THEN 'a password is in the log'
            ELSE 'no password in the log' END AS log;
ALTER ROLE sec_owner PASSWORD 'sec-Secret-Pw1';

-- undo: the table and its shards, the databases' owners, pg_hba.conf
SET ROLE sec_owner;
DROP TABLE public.sec_owned;
RESET ROLE;
ALTER DATABASE node1 OWNER TO CURRENT_USER;
ALTER DATABASE node2 OWNER TO CURRENT_USER;
ALTER DATABASE node3 OWNER TO CURRENT_USER;
REVOKE CREATE ON SCHEMA public FROM sec_owner;
DO $$
BEGIN
    EXECUTE format($c$COPY (SELECT line FROM (
            SELECT n, replace(line, E'\t', ' ') AS line
              FROM hba_saved, regexp_split_to_table(rtrim(content, E'\n'), E'\n')
                   WITH ORDINALITY AS l(line, n)) lines ORDER BY n) TO %L$c$,
        current_setting('hba_file'));
END
$$;
SELECT pg_reload_conf();
SELECT position('sec_owner' IN pg_read_file(current_setting('hba_file'))) = 0 AS hba_restored;
DROP TABLE hba_saved;

--
-- 3. Identifiers and literals: quotes, spaces, semicolons, upper case,
-- backslashes; nothing is injected into the nodes
--
-- a canary on every node: a reference table that an injected DROP would
-- remove
CREATE TABLE canary (x int);
INSERT INTO canary VALUES (1);
SELECT shardexec.create_reference_table('canary');

CREATE SCHEMA "Sec ""Odd""; Schema";
CREATE TABLE "Sec ""Odd""; Schema"."Odd ""Table""; DROP TABLE security.canary; --" (
    "Id ""Key""; --" bigint PRIMARY KEY,
    "Value; DROP TABLE security.canary" text DEFAULT 'it''s; DROP TABLE security.canary; --',
    "UPPER Case" int,
    "back\slash" text
);
CREATE TABLE "Sec ""Odd""; Schema"."Other ""Side""" (
    "Id ""Key""; --" bigint,
    "Amount $1" numeric,
    PRIMARY KEY ("Id ""Key""; --", "Amount $1")
);
CREATE TABLE "Sec ""Odd""; Schema"."Ref; Table" ("Code ""c""" text PRIMARY KEY, "Label" text);
SET search_path TO "Sec ""Odd""; Schema", security;

INSERT INTO "Odd ""Table""; DROP TABLE security.canary; --"
SELECT g, 'v''' || g || '; DROP TABLE security.canary; --', g % 3, E'a\\b' || g
  FROM generate_series(1, 20) g;
SELECT shardexec.create_distributed_table('"Odd ""Table""; DROP TABLE security.canary; --"', 'Id "Key"; --', 4);
SELECT shardexec.create_distributed_table('"Other ""Side"""', 'Id "Key"; --', 4,
                                          colocate_with => '"Odd ""Table""; DROP TABLE security.canary; --"');
SELECT shardexec.create_reference_table('"Ref; Table"');
SELECT table_name, kind, distribution_column, shard_count FROM shardexec.tables
 WHERE table_name::text LIKE '%Odd%' OR table_name::text LIKE '%Other%' OR table_name::text LIKE '%Ref;%'
 ORDER BY 1::text;
SELECT regexp_replace(shard_table, '_[0-9]{6,}', '_<id>') AS shard_table
  FROM shardexec.shards WHERE table_name = '"Odd ""Table""; DROP TABLE security.canary; --"'::regclass
 ORDER BY shard_index LIMIT 1;

-- writes: INSERT with literals of every kind, ON CONFLICT, COPY
INSERT INTO "Odd ""Table""; DROP TABLE security.canary; --" ("Id ""Key""; --", "UPPER Case", "back\slash")
VALUES (21, 1, E'x\\y''z; DROP TABLE security.canary; --'), (22, 2, $q$'); DROP TABLE security.canary; --$q$);
INSERT INTO "Odd ""Table""; DROP TABLE security.canary; --" AS t ("Id ""Key""; --", "Value; DROP TABLE security.canary")
VALUES (22, 'conflict'' ; --')
ON CONFLICT ("Id ""Key""; --") DO UPDATE SET "Value; DROP TABLE security.canary" = t."Value; DROP TABLE security.canary" || excluded."Value; DROP TABLE security.canary"
RETURNING "Id ""Key""; --", "Value; DROP TABLE security.canary";
COPY "Odd ""Table""; DROP TABLE security.canary; --" ("Id ""Key""; --", "Value; DROP TABLE security.canary") FROM stdin;
23	copied ' " ; DROP TABLE security.canary; --
24	\\ and \t tab
\.
INSERT INTO "Other ""Side""" SELECT g, g * 1.5 FROM generate_series(1, 24) g;
INSERT INTO "Ref; Table" VALUES ('a''b', 'quote'), ('c;d', 'semicolon'), ('E"F', 'double quote');

-- reads: router, multi-shard, aggregates, a colocated join, the reference
-- table, literals and parameters that look like SQL
SELECT "Id ""Key""; --", "Value; DROP TABLE security.canary", "UPPER Case", "back\slash"
  FROM "Odd ""Table""; DROP TABLE security.canary; --" WHERE "Id ""Key""; --" = 21;
SELECT "Id ""Key""; --", "Value; DROP TABLE security.canary"
  FROM "Odd ""Table""; DROP TABLE security.canary; --" WHERE "Id ""Key""; --" IN (22, 23, 24) ORDER BY 1;
SELECT count(*), sum("UPPER Case"), count("back\slash")
  FROM "Odd ""Table""; DROP TABLE security.canary; --"
 WHERE "Value; DROP TABLE security.canary" <> $$'; DROP TABLE security.canary; --$$;
SELECT o."UPPER Case", sum(s."Amount $1")
  FROM "Odd ""Table""; DROP TABLE security.canary; --" o
  JOIN "Other ""Side""" s USING ("Id ""Key""; --")
 GROUP BY 1 ORDER BY 1;
SELECT "Code ""c""", "Label" FROM "Ref; Table" WHERE "Code ""c""" <> 'x''; DROP TABLE security.canary; --' ORDER BY 1;
PREPARE odd(text) AS
SELECT count(*) FROM "Odd ""Table""; DROP TABLE security.canary; --" WHERE "Value; DROP TABLE security.canary" LIKE $1;
EXECUTE odd('%; DROP TABLE security.canary; --');
EXECUTE odd($$%'%$$);
DEALLOCATE odd;
SELECT * FROM explain($$SELECT "Value; DROP TABLE security.canary" FROM "Odd ""Table""; DROP TABLE security.canary; --" WHERE "Id ""Key""; --" = 21 AND "back\slash" <> E'\\''; --'$$);

-- UPDATE and DELETE
UPDATE "Odd ""Table""; DROP TABLE security.canary; --"
   SET "Value; DROP TABLE security.canary" = 'up''dated; --', "UPPER Case" = "UPPER Case" + 10
 WHERE "Id ""Key""; --" = 21
RETURNING "Id ""Key""; --", "Value; DROP TABLE security.canary", "UPPER Case";
UPDATE "Odd ""Table""; DROP TABLE security.canary; --" SET "UPPER Case" = 0 WHERE "UPPER Case" = 2;
DELETE FROM "Odd ""Table""; DROP TABLE security.canary; --" WHERE "back\slash" = E'a\\b20';
UPDATE "Ref; Table" SET "Label" = "Label" || ''';--' WHERE "Code ""c""" = 'c;d';
SELECT count(*), sum("UPPER Case") FROM "Odd ""Table""; DROP TABLE security.canary; --";
SELECT "Code ""c""", "Label" FROM "Ref; Table" ORDER BY 1;

-- DDL: columns, indexes, constraints and renames with odd names
ALTER TABLE "Odd ""Table""; DROP TABLE security.canary; --" ADD COLUMN "New ""Col""; DROP TABLE security.canary" text DEFAULT 'd''x';
CREATE INDEX "Idx ""Odd""; --" ON "Odd ""Table""; DROP TABLE security.canary; --" ("UPPER Case", "back\slash");
ALTER TABLE "Odd ""Table""; DROP TABLE security.canary; --" ADD CONSTRAINT "Check ""It""; --" CHECK ("UPPER Case" >= 0);
ALTER TABLE "Odd ""Table""; DROP TABLE security.canary; --" RENAME COLUMN "UPPER Case" TO "Renamed ""Case""; --";
ALTER INDEX "Idx ""Odd""; --" RENAME TO "Idx ""Renamed""";
INSERT INTO "Odd ""Table""; DROP TABLE security.canary; --" ("Id ""Key""; --", "Renamed ""Case""; --") VALUES (30, 5);
SELECT * FROM try($$INSERT INTO "Odd ""Table""; DROP TABLE security.canary; --" ("Id ""Key""; --", "Renamed ""Case""; --") VALUES (31, -1)$$);
SELECT "Id ""Key""; --", "Renamed ""Case""; --", "New ""Col""; DROP TABLE security.canary"
  FROM "Odd ""Table""; DROP TABLE security.canary; --" WHERE "Id ""Key""; --" = 30;
ALTER TABLE "Odd ""Table""; DROP TABLE security.canary; --" RENAME TO "Renamed ""Table""; --";
SELECT count(*) FROM "Renamed ""Table""; --";
TRUNCATE "Other ""Side""";
SELECT count(*) FROM "Other ""Side""";

-- undistribute brings the rows back
SELECT shardexec.undistribute_table('"Renamed ""Table""; --"');
SELECT count(*), sum("Renamed ""Case""; --") FROM "Renamed ""Table""; --";

-- the canary is still on every node, and the nodes hold nothing else of
-- ours than what the metadata says
SET search_path TO security;
SELECT count(*) AS canary_rows FROM canary;
SELECT count(*) AS canary_placements FROM shardexec.shards WHERE table_name = 'canary'::regclass;

--
-- 4. Malformed options and settings give clear errors
--
\set VERBOSITY terse
CREATE SERVER sec_bad FOREIGN DATA WRAPPER shardexec OPTIONS (nosuchoption 'x');
CREATE SERVER sec_bad FOREIGN DATA WRAPPER shardexec OPTIONS (port '0');
CREATE SERVER sec_bad FOREIGN DATA WRAPPER shardexec OPTIONS (port '5432; DROP TABLE x');
CREATE SERVER sec_bad FOREIGN DATA WRAPPER shardexec OPTIONS (user 'x');
CREATE SERVER sec_bad FOREIGN DATA WRAPPER shardexec OPTIONS (client_encoding 'latin1');
CREATE USER MAPPING FOR PUBLIC SERVER node2 OPTIONS (host 'elsewhere');
ALTER USER MAPPING FOR sec_plain SERVER node2 OPTIONS (ADD host 'elsewhere');
ALTER USER MAPPING FOR sec_plain SERVER node2 OPTIONS (ADD dbname 'x');
SELECT shardexec.add_node('', '127.0.0.1', :port, 'node1');
SELECT shardexec.add_node(repeat('n', 64), '127.0.0.1', :port, 'node1');
SELECT * FROM try(format($$SELECT shardexec.add_node('sec"; node', '127.0.0.1', %s, 'no such db')$$, :port));
SELECT shardexec.add_node('sec_node', '127.0.0.1', 0, 'node1');
SELECT shardexec.add_node('sec_node', '', :port, 'node1');
SET shardexec.max_connections_per_query = 0;
SET shardexec.max_connections_per_query = 'many';
SET shardexec.connect_timeout = '-1s';
SET shardexec.connect_timeout = '2 fortnights';
SET shardexec.use_2pc = 'sometimes';
SET shardexec.no_such_setting = 1;
SELECT shardexec.register_plugin('sec_plugin', 'shardexec.shard_table_name');
SELECT shardexec.register_plugin('sec_plugin', 'no_such_function');
SELECT shardexec.register_plugin('sec plugin', 'shardexec.shardexec_fdw_handler');
SELECT shardexec.unregister_plugin('no_such_plugin');
\set VERBOSITY default
-- nothing was left behind by the failed add_node calls
SELECT count(*) AS nodes FROM shardexec.nodes;
SELECT count(*) AS servers FROM pg_foreign_server WHERE srvname LIKE 'sec%';

DROP SCHEMA "Sec ""Odd""; Schema" CASCADE;
DROP TABLE canary;
DROP USER MAPPING FOR sec_plain SERVER node1;
DROP USER MAPPING FOR sec_plain SERVER node2;
DROP USER MAPPING FOR sec_plain SERVER node3;
DROP USER MAPPING FOR sec_owner SERVER node1;
DROP USER MAPPING FOR sec_owner SERVER node2;
DROP USER MAPPING FOR sec_owner SERVER node3;
DROP SCHEMA security CASCADE;
DROP ROLE sec_plain;
DROP ROLE sec_owner;
