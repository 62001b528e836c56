--
-- writes: INSERT, UPDATE, DELETE, ON CONFLICT and INSERT ... SELECT on
-- distributed and reference tables, each run on the distributed tables of
-- schema wr_dist and on plain copies in schema wr_local, with the final
-- states compared.  Also: a node added after a reference table exists gets
-- its copy, and a node's foreign server cannot be dropped or renamed.
--
CREATE SCHEMA wr_dist;
CREATE SCHEMA wr_local;

-- the same tables in both schemas
CREATE FUNCTION pg_temp.make_tables(schema text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I.accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL DEFAULT 0, updated timestamptz)', schema);
    EXECUTE format('CREATE TABLE %I.moves (account_id bigint NOT NULL, move_id bigserial, amount numeric(12,2), note text, PRIMARY KEY (account_id, move_id))', schema);
    EXECUTE format('CREATE TABLE %I.branches (id int PRIMARY KEY, name text)', schema);
    EXECUTE format('INSERT INTO %I.accounts SELECT g, ''owner '' || (g %% 17), (g * 7) %% 1000, NULL FROM generate_series(1, 300) g', schema);
    EXECUTE format('INSERT INTO %I.branches SELECT g, ''branch '' || g FROM generate_series(1, 5) g', schema);
END $$;
SELECT pg_temp.make_tables('wr_dist');
SELECT pg_temp.make_tables('wr_local');

SELECT shardexec.create_distributed_table('wr_dist.accounts', 'id', 8);
SELECT shardexec.create_distributed_table('wr_dist.moves', 'account_id', 8, colocate_with => 'wr_dist.accounts');
SELECT shardexec.create_reference_table('wr_dist.branches');

-- run a statement on both schemas; print the distributed one's result
CREATE FUNCTION pg_temp.both(sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n bigint;
BEGIN
    PERFORM set_config('search_path', 'wr_local', true);
    EXECUTE sql;
    PERFORM set_config('search_path', 'wr_dist', true);
    IF sql ~* 'returning|^\s*select' THEN
        FOR r IN EXECUTE sql LOOP
            RETURN NEXT r::text;
        END LOOP;
    ELSE
        EXECUTE sql;
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN NEXT n || ' rows';
    END IF;
    RETURN;
EXCEPTION WHEN feature_not_supported THEN
    RETURN NEXT 'not pushed down: ' || SQLERRM;
END $$;

-- the tables of both schemas hold the same rows
CREATE FUNCTION pg_temp.same(tbl text, cols text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
    l text;
BEGIN
    EXECUTE format('SELECT md5(coalesce(string_agg(x::text, '','' ORDER BY x::text), '''')) FROM (SELECT %s FROM wr_dist.%I) x', cols, tbl) INTO d;
    EXECUTE format('SELECT md5(coalesce(string_agg(x::text, '','' ORDER BY x::text), '''')) FROM (SELECT %s FROM wr_local.%I) x', cols, tbl) INTO l;
    RETURN CASE WHEN d = l THEN tbl || ': same' ELSE tbl || ': DIFFERENT' END;
END $$;

-- UPDATE routed by the distribution key, with RETURNING
SELECT * FROM pg_temp.both($$ UPDATE accounts SET balance = balance + 10 WHERE id = 42 RETURNING id, balance $$);
-- UPDATE on every shard
SELECT * FROM pg_temp.both($$ UPDATE accounts SET balance = balance * 2 WHERE owner = 'owner 3' RETURNING id $$) ORDER BY 1;
-- UPDATE with a join to the reference table
SELECT * FROM pg_temp.both($$ UPDATE accounts a SET owner = b.name FROM branches b WHERE a.id % 5 + 1 = b.id AND a.id < 20 RETURNING a.id, a.owner $$) ORDER BY 1;
-- DELETE routed and on every shard
SELECT * FROM pg_temp.both($$ DELETE FROM accounts WHERE id = 7 RETURNING * $$);
SELECT * FROM pg_temp.both($$ DELETE FROM accounts WHERE balance < 30 RETURNING id $$) ORDER BY 1;
SELECT pg_temp.same('accounts', 'id, owner, balance');

-- INSERT of one row and of many, with defaults evaluated on the coordinator
SELECT * FROM pg_temp.both($$ INSERT INTO accounts (id, owner) VALUES (1001, 'new') RETURNING id, owner, balance $$);
SELECT * FROM pg_temp.both($$ INSERT INTO accounts (id, owner, balance) VALUES (1002, 'a', 1), (1003, 'b', 2), (1004, 'c', 3) RETURNING id $$) ORDER BY 1;
-- ON CONFLICT DO NOTHING and DO UPDATE
SELECT * FROM pg_temp.both($$ INSERT INTO accounts (id, owner) VALUES (1001, 'dup') ON CONFLICT DO NOTHING RETURNING id $$);
SELECT * FROM pg_temp.both($$ INSERT INTO accounts (id, owner, balance) VALUES (1002, 'x', 5), (1005, 'y', 6) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance RETURNING id, owner, balance $$) ORDER BY 1;
SELECT pg_temp.same('accounts', 'id, owner, balance');

-- sequences: values unique across shards, one nextval per row
SELECT * FROM pg_temp.both($$ INSERT INTO moves (account_id, amount) SELECT id, balance FROM accounts WHERE id <= 50 $$);
SELECT * FROM pg_temp.both($$ INSERT INTO moves (account_id, amount, note) VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c') RETURNING account_id, amount, note $$) ORDER BY 1;
SELECT count(*) = count(DISTINCT move_id) AS unique_ids, count(*) FROM wr_dist.moves;

-- INSERT ... SELECT between colocated tables runs shard to shard
SELECT * FROM pg_temp.both($$ INSERT INTO moves (account_id, move_id, amount, note) SELECT id, 0, balance, 'opening' FROM accounts WHERE id BETWEEN 100 AND 120 $$);
SELECT * FROM pg_temp.both($$ SELECT count(*), sum(amount) FROM moves WHERE note = 'opening' $$);
-- ... and from a non-distribution column, through the coordinator
SELECT * FROM pg_temp.both($$ INSERT INTO moves (account_id, move_id, amount, note) SELECT (balance::int % 50) + 1, id, 1, 'routed' FROM accounts WHERE id BETWEEN 200 AND 210 $$);
SELECT pg_temp.same('moves', 'account_id, amount, note') AS moves_without_ids;

-- writes to the reference table reach every copy
SELECT * FROM pg_temp.both($$ UPDATE branches SET name = upper(name) WHERE id <= 2 RETURNING id, name $$) ORDER BY 1;
SELECT * FROM pg_temp.both($$ INSERT INTO branches VALUES (6, 'six') ON CONFLICT (id) DO UPDATE SET name = 'six' RETURNING * $$);
SELECT * FROM pg_temp.both($$ DELETE FROM branches WHERE id = 3 $$);
SELECT pg_temp.same('branches', 'id, name');

-- a transaction reads its own writes, also through later statements
BEGIN;
UPDATE wr_dist.accounts SET balance = 0 WHERE id = 99;
SELECT balance FROM wr_dist.accounts WHERE id = 99;
SELECT count(*) FROM wr_dist.accounts WHERE balance = 0 AND id = 99;
ROLLBACK;
SELECT balance <> 0 AS rolled_back FROM wr_dist.accounts WHERE id = 99;

-- a single-row write the client sends runs in autocommit on its node; one
-- run by a DO block or a function that then fails is undone
UPDATE wr_dist.accounts SET balance = 1 WHERE id = 98;
\set VERBOSITY terse
DO $$ BEGIN UPDATE wr_dist.accounts SET balance = 2 WHERE id = 98; RAISE EXCEPTION 'undo'; END $$;
CREATE FUNCTION pg_temp.fail_after_write() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE wr_dist.accounts SET balance = 3 WHERE id = 98;
    RAISE EXCEPTION 'undo too';
END $$;
SELECT pg_temp.fail_after_write();
UPDATE wr_dist.accounts SET balance = 4 WHERE id = 98 AND 1 / 0 = 1;
\set VERBOSITY default
SELECT balance FROM wr_dist.accounts WHERE id = 98;

-- writes that cannot be pushed down are refused
UPDATE wr_dist.accounts SET id = id + 1 WHERE id = 1;
UPDATE wr_dist.accounts SET balance = (SELECT max(balance) FROM wr_dist.accounts);
UPDATE wr_dist.branches SET name = a.owner FROM wr_dist.accounts a WHERE a.id = branches.id;
UPDATE wr_dist.accounts SET balance = random();

-- a node added later gets a copy of every reference table
CREATE DATABASE node4;
SELECT current_setting('port') AS port \gset
SELECT shardexec.add_node('node4', '127.0.0.1', :port, 'node4') > 0 AS added;
SELECT node_name, count(*) FROM shardexec.shards
 WHERE table_name = 'wr_dist.branches'::regclass GROUP BY 1 ORDER BY 1;
SELECT * FROM pg_temp.both($$ UPDATE branches SET name = name || '!' WHERE id = 1 $$);
SELECT pg_temp.same('branches', 'id, name');
SELECT string_agg(id || ':' || name, ',' ORDER BY id) AS coordinator_branches FROM wr_dist.branches;
\c node4
SELECT (xpath('//s/text()',
              query_to_xml(format('SELECT string_agg(id || '':'' || name, '','' ORDER BY id) AS s FROM wr_dist.%I',
                                  tablename), false, false, '')))[1]::text AS node4_copy
  FROM pg_tables WHERE schemaname = 'wr_dist' AND tablename LIKE 'branches%';
\c regression

-- a node's foreign server is managed through the node functions
DROP SERVER node4;
ALTER SERVER node4 RENAME TO node5;
DROP FOREIGN DATA WRAPPER shardexec;
SELECT shardexec.remove_node('node4');

-- clean up
DROP SCHEMA wr_dist CASCADE;
DROP SCHEMA wr_local CASCADE;
SELECT shardexec.remove_node('node4');
DROP DATABASE node4;
