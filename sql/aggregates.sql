--
-- aggregates: multi-shard aggregates are computed per shard and combined
-- on the coordinator, and give exactly what one server gives: the same
-- query runs on a distributed table and on a local copy, and the EXPLAIN
-- of each shows what the shards compute.
--
CREATE SCHEMA agg_dist;
CREATE SCHEMA agg_local;
CREATE TABLE agg_dist.m (k bigint PRIMARY KEY, g int, i int, n numeric(10,3), s text, b bool, a int[]);
CREATE TABLE agg_local.m (LIKE agg_dist.m);
INSERT INTO agg_dist.m
SELECT x, x % 7, (x * 37) % 1000 - 500, ((x * 7919) % 100000) / 1000.0,
       'v' || (x % 13), x % 3 = 0, ARRAY[x % 5]
  FROM generate_series(1, 3000) x;
INSERT INTO agg_dist.m VALUES (3001, 1, NULL, NULL, NULL, NULL, NULL);
INSERT INTO agg_local.m SELECT * FROM agg_dist.m;
SELECT shardexec.create_distributed_table('agg_dist.m', 'k', 8);

-- runs q on both schemas, says whether the results are the same
CREATE FUNCTION pg_temp.same(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
    l text;
BEGIN
    PERFORM set_config('search_path', 'agg_dist', true);
    EXECUTE format('SELECT string_agg(r::text, E''\n'' ORDER BY r::text) FROM (%s) r', q) INTO d;
    PERFORM set_config('search_path', 'agg_local', true);
    EXECUTE format('SELECT string_agg(r::text, E''\n'' ORDER BY r::text) FROM (%s) r', q) INTO l;
    RETURN CASE WHEN d IS NOT DISTINCT FROM l THEN 'same' ELSE 'DIFFERENT: ' || d || ' <> ' || l END;
END $$;

-- the shards' part, with shard ids masked
CREATE FUNCTION pg_temp.remote(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    PERFORM set_config('search_path', 'agg_dist', true);
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
        IF line ~ 'Remote SQL' THEN
            RETURN NEXT regexp_replace(line, '_[0-9]{6,}', '_xxx', 'g');
            RETURN;
        END IF;
    END LOOP;
END $$;

SELECT pg_temp.same('SELECT count(*), count(i), sum(i), sum(n), avg(i), avg(n), min(s), max(n), bool_and(b), bool_or(b), bit_and(i), bit_or(i) FROM m');
SELECT pg_temp.remote('SELECT count(*), sum(i), avg(n) FROM m');
SELECT pg_temp.same('SELECT g, count(*), sum(n), avg(i) FROM m GROUP BY g HAVING count(*) > 10');
SELECT pg_temp.same('SELECT var_samp(i), var_pop(i), variance(n), stddev(i), stddev_samp(n), stddev_pop(n) FROM m');
SELECT pg_temp.same('SELECT g, var_samp(n), stddev(i) FROM m GROUP BY g');
SELECT pg_temp.same('SELECT var_samp(i), stddev(n) FROM m WHERE k = 5 OR k = 6');
SELECT pg_temp.same('SELECT var_samp(i), stddev_pop(n) FROM m WHERE k = 5');
SELECT pg_temp.same('SELECT var_samp(i), stddev(n) FROM m WHERE k < 0');
SELECT pg_temp.remote('SELECT stddev(n) FROM m');
SELECT pg_temp.same('SELECT length(string_agg(s, '','')), array_length(array_agg(i), 1) FROM m');
SELECT pg_temp.same('SELECT g, (SELECT array_agg(x ORDER BY x) FROM unnest(array_agg(i)) x) FROM m GROUP BY g');
SELECT pg_temp.same('SELECT g, (SELECT string_agg(x, ''-'' ORDER BY x) FROM regexp_split_to_table(string_agg(s, '',''), '','') x) FROM m GROUP BY g');
SELECT pg_temp.remote('SELECT string_agg(s, '',''), array_agg(a) FROM m');
SELECT pg_temp.same('SELECT count(DISTINCT s), count(DISTINCT g), min(i) FROM m');
SELECT pg_temp.remote('SELECT count(DISTINCT s) FROM m');
SELECT pg_temp.same('SELECT string_agg(s, '','' ORDER BY k) FROM m WHERE g = 3');
SELECT pg_temp.same('SELECT g, percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM m GROUP BY g');

-- ORDER BY + LIMIT: a top-N per shard, merged in order by the executor
-- (no Sort on the coordinator), the LIMIT applied at the end
CREATE FUNCTION pg_temp.plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    PERFORM set_config('search_path', 'agg_dist', true);
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line !~ 'Remote SQL|Node:' THEN
            RETURN NEXT line;
        END IF;
    END LOOP;
END $$;
SELECT pg_temp.plan('SELECT k, n FROM m ORDER BY n DESC NULLS LAST, k LIMIT 5 OFFSET 2');
SELECT pg_temp.same('SELECT k, n FROM m ORDER BY n DESC NULLS LAST, k LIMIT 5 OFFSET 2');
SELECT pg_temp.remote('SELECT k, n FROM m ORDER BY n DESC NULLS LAST, k LIMIT 5 OFFSET 2');
SELECT pg_temp.same('SELECT s, k FROM m WHERE g = 2 ORDER BY s COLLATE "C", k DESC LIMIT 7');

-- "k IS NULL" matches no row: one shard group answers; under an outer join
-- the NULLs of the nullable side count, and every shard group runs
SELECT pg_temp.plan('SELECT count(*) FROM m WHERE k IS NULL');
SELECT pg_temp.same('SELECT count(*), max(i) FROM m WHERE k IS NULL');
SELECT pg_temp.same('SELECT a.k FROM m a LEFT JOIN m b ON b.k = a.k AND b.i > 1000 WHERE b.k IS NULL AND a.k % 500 = 0');

DROP SCHEMA agg_dist CASCADE;
DROP SCHEMA agg_local CASCADE;
