--
-- crashes: statements that once crashed a backend or failed with an
-- internal error, found by fuzzing (test/sqlsmith/run.sh) or by the fault
-- tests, each run on distributed tables and on local copies of the same
-- rows, which must answer the same.
--
CREATE SCHEMA crashes;
SET search_path TO crashes;

CREATE TABLE items (id bigint PRIMARY KEY, grp int, v text);
CREATE TABLE tags (tag text PRIMARY KEY, weight int);
INSERT INTO items SELECT g, g % 5, 'v' || g FROM generate_series(1, 40) g;
INSERT INTO tags VALUES ('a', 1), ('b', 2), ('c', 3);
CREATE TABLE local_items AS SELECT * FROM items;
CREATE TABLE local_tags AS SELECT * FROM tags;
SELECT shardexec.create_distributed_table('items', 'id', 4);
SELECT shardexec.create_reference_table('tags');

-- the rows of a query on the distributed tables that it does not give on
-- the local copies, and the other way round: none expected
CREATE FUNCTION differences(q text) RETURNS TABLE (side text, r text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT ''distributed only'', x::text FROM ((%s) EXCEPT ALL (%s)) x
         UNION ALL
         SELECT ''local only'', x::text FROM ((%s) EXCEPT ALL (%s)) x',
        q, replace(replace(q, 'items', 'local_items'), 'tags', 'local_tags'),
        replace(replace(q, 'items', 'local_items'), 'tags', 'local_tags'), q);
END
$$;

--
-- A CASE whose expression holds a subquery, on a distributed table:
-- "ERROR:  unrecognized node type: 135" (sqlsmith).  The values that the
-- coordinator computes before it sends a query (parameters, stable
-- functions) were folded by a mutator that handed a CASE's WHEN clauses
-- (CaseWhen, which is no expression of its own) to a walker.
--
SELECT CASE WHEN (SELECT count(*) FROM tags) > 1 THEN id END AS c FROM items WHERE id = 3;
SELECT CASE id WHEN (SELECT 3) THEN 'three' ELSE 'other' END AS c FROM items WHERE id IN (3, 4) ORDER BY id;
SELECT * FROM differences($$SELECT id, CASE WHEN id > (SELECT count(*) FROM tags) THEN v END FROM items$$);
SELECT * FROM differences($$SELECT grp, sum(CASE WHEN id IN (SELECT weight FROM tags) THEN 1 ELSE 0 END) FROM items GROUP BY grp$$);
SELECT * FROM differences($$SELECT id, CASE WHEN EXISTS (SELECT 1 FROM tags WHERE weight = items.grp) THEN 'tagged' WHEN grp = 0 THEN 'zero' END FROM items$$);
SELECT * FROM differences($$SELECT id FROM items WHERE CASE WHEN (SELECT max(weight) FROM tags) > grp THEN true ELSE false END$$);
SELECT * FROM differences($$SELECT id, CASE grp WHEN (SELECT min(weight) FROM tags) THEN CASE WHEN (SELECT 1) = 1 THEN now() IS NOT NULL END END FROM items$$);
PREPARE case_sublink(int) AS
SELECT CASE WHEN (SELECT count(*) FROM tags) > $1 THEN v END FROM items WHERE id = $1;
EXECUTE case_sublink(2);
EXECUTE case_sublink(7);
DEALLOCATE case_sublink;
BEGIN;
UPDATE items SET v = CASE WHEN (SELECT count(*) FROM tags) = 3 THEN 'three tags' ELSE v END WHERE id = 5;
UPDATE local_items SET v = CASE WHEN (SELECT count(*) FROM local_tags) = 3 THEN 'three tags' ELSE v END WHERE id = 5;
SELECT * FROM differences($$SELECT * FROM items$$);
ROLLBACK;

DROP SCHEMA crashes CASCADE;
