--
-- differential: every query here runs twice, once over distributed tables
-- (schema diff_dist) and once over plain local tables holding the same
-- rows (schema diff_local), and the two results must be equal: as
-- multisets, or row for row where the query's ORDER BY fixes the order.
-- The output shows one "label | ok" line per query, so a failure names
-- the query that broke and shows the difference.
--
-- The query set runs with pushdown on (router plans where the query is
-- pinned to one shard group, pull plans otherwise) and again with
-- shardexec.enable_pushdown = off (everything pulled), then prepared
-- statements run under plan_cache_mode force_generic_plan and
-- force_custom_plan, and EXPLAIN pins the pushdown of a few of them.
--
-- A query whose answer differs shows "DIFFERENT: ..." with the rows only
-- one side has, or "ERROR in diff_dist: ..."; never accept that into the
-- expected output: it is a bug in shardexec.
--
-- Schemas:
--   diff_dist   customers and orders (colocated, 6 shards, by customer_id),
--               products (5 shards, by product_id, not colocated),
--               cities and categories (reference tables),
--               local_rates (a local table)
--               (types: an enum and a domain, in each schema)
--   diff_local  the same tables, all local, with the same rows
--   diff_util   the checker and the list of queries
--
CREATE SCHEMA diff_dist;
CREATE SCHEMA diff_local;
CREATE SCHEMA diff_util;
\set coordinator :DBNAME

-- types that are not built in must exist on the nodes too
\c node1
CREATE SCHEMA diff_dist;
CREATE TYPE diff_dist.kind AS ENUM ('tool', 'toy', 'food', 'other');
CREATE DOMAIN diff_dist.quantity AS int CHECK (VALUE >= 0);
\c node2
CREATE SCHEMA diff_dist;
CREATE TYPE diff_dist.kind AS ENUM ('tool', 'toy', 'food', 'other');
CREATE DOMAIN diff_dist.quantity AS int CHECK (VALUE >= 0);
\c node3
CREATE SCHEMA diff_dist;
CREATE TYPE diff_dist.kind AS ENUM ('tool', 'toy', 'food', 'other');
CREATE DOMAIN diff_dist.quantity AS int CHECK (VALUE >= 0);
\c :coordinator
SET search_path TO diff_util;

--
-- the tables, the same in both schemas
--
CREATE FUNCTION create_tables(schema_name text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM set_config('search_path', schema_name, true);
    CREATE TYPE kind AS ENUM ('tool', 'toy', 'food', 'other');
    CREATE DOMAIN quantity AS int CHECK (VALUE >= 0);
    CREATE TABLE customers (
        customer_id bigint PRIMARY KEY,
        name text,
        city text,
        created timestamptz,
        score numeric,
        tags text[],
        data jsonb,
        flag bool
    );
    CREATE TABLE orders (
        customer_id bigint NOT NULL,
        order_id bigint NOT NULL,
        amount numeric(12,2),
        status text,
        ordered_at timestamptz,
        note text,
        product_id int,
        PRIMARY KEY (customer_id, order_id)
    );
    CREATE TABLE products (
        product_id int PRIMARY KEY,
        name text COLLATE "C",
        category_id int,
        price numeric(10,3),
        weight float8,
        added date,
        code bytea,
        uid uuid,
        span interval,
        kind kind,
        qty quantity,
        meta json
    );
    CREATE TABLE cities (
        city text PRIMARY KEY,
        country text NOT NULL,
        population int,
        near text,
        "Region Name" text
    );
    CREATE TABLE categories (
        category_id int PRIMARY KEY,
        parent_id int,
        title text
    );
    CREATE TABLE local_rates (
        status text,
        factor numeric
    );
END
$fn$;
SELECT create_tables('diff_dist');
SELECT create_tables('diff_local');

--
-- deterministic rows: NULLs, duplicates, negative numbers, unicode and
-- empty text, edge timestamps (infinities, DST changes, microseconds)
--
SET search_path TO diff_local;

INSERT INTO customers
SELECT CASE WHEN g % 11 = 0 THEN -g ELSE g END,
       CASE g % 13
           WHEN 0 THEN NULL
           WHEN 1 THEN ''
           WHEN 2 THEN 'Zoë ' || g % 50
           WHEN 3 THEN 'Ärger-' || g % 7
           WHEN 4 THEN '日本語' || g % 5
           WHEN 5 THEN 'O''Brien'
           WHEN 6 THEN E'back\\slash "q"'
           WHEN 7 THEN 'name ' || g % 97
           WHEN 8 THEN 'Name ' || g % 31
           WHEN 9 THEN 'ñame_' || g % 17
           ELSE 'cust' || g % 101
       END,
       CASE WHEN g % 9 = 0 THEN NULL
            ELSE (ARRAY['Berlin', 'Paris', 'Tokyo', 'São Paulo', 'Zürich', 'nowhere', '',
                        'Kraków'])[g % 9]
       END,
       CASE
           WHEN g % 37 = 0 THEN NULL
           WHEN g % 500 = 1 THEN 'infinity'
           WHEN g % 500 = 2 THEN '-infinity'
           WHEN g % 100 = 3 THEN '1999-12-31 23:59:59.999999+00'
           WHEN g % 100 = 4 THEN '2021-03-28 01:30:00+00'
           WHEN g % 100 = 5 THEN '2021-11-07 06:30:00+00'
           WHEN g % 100 = 6 THEN '2000-02-29 12:00:00+00'
           ELSE timestamptz '2000-01-01 00:00:00+00'
                + (g * 7919 % 100000) * interval '317 minutes'
                + (g % 7) * interval '0.000123 seconds'
       END,
       CASE WHEN g % 17 = 0 THEN NULL
            ELSE round(((g * 7907) % 2000001 - 1000000)::numeric / 997, g % 5)
       END,
       CASE g % 10
           WHEN 0 THEN NULL
           WHEN 1 THEN '{}'
           WHEN 2 THEN ARRAY['a', NULL]
           ELSE ARRAY['t' || g % 4, 't' || g % 6]
       END,
       CASE
           WHEN g % 23 = 0 THEN NULL
           WHEN g % 23 = 1 THEN 'null'::jsonb
           WHEN g % 23 = 2 THEN '[]'::jsonb
           ELSE jsonb_build_object('k', g % 5,
                                   'nested', jsonb_build_object('v', g % 3,
                                                                'arr', jsonb_build_array(g % 2, 'x')),
                                   's', CASE WHEN g % 3 = 0 THEN 'ü' ELSE 'a' || g % 4 END)
       END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE g % 3 = 0 END
  FROM generate_series(1, 2000) g;
-- the ends of the distribution column's range, and zero
INSERT INTO customers VALUES
    (9223372036854775807, 'max', 'Berlin', '2038-01-19 03:14:08+00', 1e20, '{max}', '{"k": 99}', true),
    (-9223372036854775808, 'min', 'Paris', '0001-01-01 00:00:00+00 BC', -1e-20, '{min}', '{"k": -99}', false),
    (0, 'zero', NULL, '1970-01-01 00:00:00+00', 0, '{}', '{}', NULL);

INSERT INTO orders
SELECT CASE WHEN c % 11 = 0 THEN -c ELSE c END,
       o,
       CASE WHEN o % 41 = 0 THEN NULL ELSE ((o * 7919) % 200000 - 20000) / 100.0 END,
       CASE WHEN o % 29 = 0 THEN NULL
            ELSE (ARRAY['new', 'paid', 'shipped', 'cancelled', 'rückerstattet', ''])[o % 6 + 1]
       END,
       timestamptz '2020-01-01 00:00:00+00' + o * interval '97 minutes 13 seconds'
           + (o % 7) * interval '0.000123 seconds',
       CASE o % 4 WHEN 0 THEN NULL WHEN 1 THEN '' ELSE 'note ' || o % 10 END,
       CASE WHEN o % 53 = 0 THEN NULL ELSE o % 130 - 5 END
  FROM generate_series(1, 6000) o, LATERAL (SELECT o * 37 % 2100 + 1 AS c) c
 -- customers 5, 22, 39, ... have no orders
 WHERE c % 17 <> 5;
-- several orders of the extreme customers
INSERT INTO orders VALUES
    (9223372036854775807, 100001, 9999999999.99, 'paid', '2038-01-19 03:14:07+00', 'max', 1),
    (9223372036854775807, 100002, -9999999999.99, 'new', 'infinity', NULL, 2),
    (-9223372036854775808, 100003, 0.01, 'shipped', '-infinity', 'min', 3),
    (0, 100004, 0, '', '2000-01-01 00:00:00+00', '', NULL);

INSERT INTO products
SELECT p,
       CASE p % 7 WHEN 0 THEN NULL WHEN 1 THEN 'Widget ' || p WHEN 2 THEN 'widget ' || p
                  WHEN 3 THEN 'Ätzmittel' WHEN 4 THEN '' ELSE 'gadget-' || p % 9 END,
       CASE WHEN p % 11 = 0 THEN NULL ELSE p % 8 + 1 END,
       CASE WHEN p = 0 THEN 'NaN' WHEN p % 13 = 0 THEN NULL ELSE round((p * 131 % 1000)::numeric / 7, 3) - 40 END,
       CASE WHEN p = -5 THEN 'Infinity' WHEN p = -4 THEN 'NaN' WHEN p = -1 THEN '-0'
            WHEN p % 17 = 0 THEN NULL ELSE p * 0.1::float8 END,
       date '2019-12-30' + p * 3,
       CASE WHEN p % 5 = 0 THEN NULL ELSE decode(lpad(to_hex(p * 4099), 6, '0'), 'hex') END,
       CASE WHEN p % 6 = 0 THEN NULL ELSE md5(p::text)::uuid END,
       CASE WHEN p % 9 = 0 THEN NULL ELSE make_interval(months => p % 14, days => p % 40 - 20, secs => p * 3.5) END,
       CASE WHEN p % 10 = 0 THEN NULL ELSE (enum_range(NULL::kind))[abs(p) % 4 + 1] END,
       CASE WHEN p % 12 = 0 THEN NULL ELSE abs(p) * 3 % 50 END,
       CASE p % 5 WHEN 0 THEN NULL WHEN 1 THEN '[1, 2, "x"]'
                  ELSE json_build_object('a', p % 3, 'b', 'ü' || p, 'c', json_build_array(p, NULL)) END
  FROM generate_series(-5, 120) p;

INSERT INTO cities VALUES
    ('Berlin', 'DE', 3645000, 'Kraków', 'Brandenburg'),
    ('Paris', 'FR', 2161000, 'Lyon', 'Île-de-France'),
    ('Lyon', 'FR', 516000, 'Zürich', 'Auvergne-Rhône-Alpes'),
    ('Zürich', 'CH', 421000, 'Berlin', NULL),
    ('Kraków', 'PL', 779000, NULL, 'Lesser Poland'),
    ('Tokyo', 'JP', 13960000, 'Osaka', 'Kantō'),
    ('Osaka', 'JP', 2691000, NULL, 'Kansai'),
    ('São Paulo', 'BR', NULL, 'São Paulo', ''),
    ('Atlantis', '', 0, 'Atlantis', E'it''s "under" \\ water');

INSERT INTO categories VALUES
    (1, NULL, 'all'), (2, 1, 'tools'), (3, 1, 'toys'), (4, 2, 'hammers'),
    (5, 2, 'saws'), (6, 3, 'dolls'), (7, 4, 'mallets'), (8, 7, 'rubber mallets'),
    (9, NULL, 'other');

INSERT INTO local_rates VALUES
    ('new', 1.0), ('paid', 1.19), ('shipped', 1.07), ('cancelled', 0),
    ('rückerstattet', -1), (NULL, 0.5), ('paid', 2.5);

--
-- the same rows in diff_dist: customers and products are distributed
-- with their rows, orders is distributed empty and filled through the
-- coordinator
--
SET search_path TO diff_dist;
INSERT INTO customers SELECT * FROM diff_local.customers;
INSERT INTO products
SELECT product_id, name, category_id, price, weight, added, code, uid, span, kind::text::kind, qty, meta
  FROM diff_local.products;
INSERT INTO cities SELECT * FROM diff_local.cities;
INSERT INTO categories SELECT * FROM diff_local.categories;
INSERT INTO local_rates SELECT * FROM diff_local.local_rates;
SELECT shardexec.create_distributed_table('customers', 'customer_id', 6);
SELECT shardexec.create_distributed_table('orders', 'customer_id', 6,
                                          colocate_with => 'customers');
SELECT shardexec.create_distributed_table('products', 'product_id', 5);
SELECT shardexec.create_reference_table('cities');
SELECT shardexec.create_reference_table('categories');
INSERT INTO orders SELECT * FROM diff_local.orders;

SELECT table_name, kind, distribution_column, shard_count
  FROM shardexec.tables
 WHERE table_name IN ('customers', 'orders', 'products', 'cities', 'categories')
 ORDER BY 1::text;
-- customers and orders are colocated, products is not
SELECT count(DISTINCT colocation_id) FILTER (WHERE table_name IN ('customers', 'orders')) AS groups_c_o,
       count(DISTINCT colocation_id) FILTER (WHERE table_name IN ('customers', 'products')) AS groups_c_p
  FROM shardexec.tables;
-- the shards and the nodes they are on
SELECT count(*) AS shards, count(DISTINCT node_name) AS nodes
  FROM shardexec.shards WHERE table_name IN ('customers', 'orders', 'products');

-- views, the same in both schemas
CREATE FUNCTION diff_util.create_views(schema_name text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM set_config('search_path', schema_name, true);
    CREATE VIEW customer_orders AS
        SELECT c.customer_id, c.name, o.order_id, o.amount, o.status
          FROM customers c JOIN orders o ON o.customer_id = c.customer_id;
    CREATE VIEW order_totals AS
        SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer_id;
    CREATE VIEW customer_countries AS
        SELECT c.customer_id, c.city, ci.country
          FROM customers c LEFT JOIN cities ci ON ci.city = c.city;
    CREATE VIEW all_ids AS
        SELECT 'customer' AS kind, customer_id AS id FROM customers
        UNION ALL
        SELECT 'product', product_id FROM products;
END
$fn$;
SELECT diff_util.create_views('diff_dist');
SELECT diff_util.create_views('diff_local');

--
-- the checker
--
SET search_path TO diff_util;

-- run_query returns the rows of q, run with search_path = schema_name, as
-- text, in the order the query returned them
CREATE FUNCTION run_query(q text, schema_name text) RETURNS text[]
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    result text[] := '{}';
BEGIN
    PERFORM set_config('search_path', schema_name, false);
    FOR r IN EXECUTE q LOOP
        result := result || r::text;
    END LOOP;
    RETURN result;
END
$fn$;

-- error_text masks shard ids (six digits or more after an underscore)
CREATE FUNCTION error_text(state text, msg text) RETURNS text
LANGUAGE sql AS $fn$
    SELECT state || ' ' || regexp_replace(msg, '_[0-9]{6,}', '_xxx', 'g')
$fn$;

-- first_rows shows at most three rows of a difference
CREATE FUNCTION first_rows(rows text[]) RETURNS text
LANGUAGE sql AS $fn$
    SELECT coalesce(string_agg(left(x, 150), ' | ' ORDER BY n), '')
      FROM unnest(rows[1:3]) WITH ORDINALITY AS u(x, n)
$fn$;

--
-- apply_settings sets GUCs (a jsonb object of names and values) and
-- returns their values before; restore_settings sets them back
--
CREATE FUNCTION apply_settings(settings jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    saved jsonb := jsonb_build_object('search_path', current_setting('search_path'));
    setting record;
BEGIN
    FOR setting IN SELECT key, value FROM jsonb_each_text(coalesce(settings, '{}')) LOOP
        saved := saved || jsonb_build_object(setting.key, current_setting(setting.key));
        PERFORM set_config(setting.key, setting.value, false);
    END LOOP;
    RETURN saved;
END
$fn$;

CREATE FUNCTION restore_settings(saved jsonb) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    setting record;
BEGIN
    FOR setting IN SELECT key, value FROM jsonb_each_text(saved) LOOP
        PERFORM set_config(setting.key, setting.value, false);
    END LOOP;
END
$fn$;

--
-- check_pair runs q_dist with search_path = diff_dist and q_local with
-- search_path = diff_local and returns 'ok' when both give the same rows:
-- as multisets, or in the same order when ordered (the query's ORDER BY
-- must then fix the order), or 'same error: ...' when both fail the same
-- way.  The settings hold for both runs.  Anything else is described in
-- the one line returned.  The caller's search_path
-- and settings are restored.
--
CREATE FUNCTION check_pair(q_dist text, q_local text, ordered bool, settings jsonb)
RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    saved jsonb;
    dist text[];
    loc text[];
    only_dist text[];
    only_loc text[];
    result text;
    state text;
    msg text;
    dist_error text;
    local_error text;
BEGIN
    saved := diff_util.apply_settings(settings);

    BEGIN
        dist := diff_util.run_query(q_dist, 'diff_dist');
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        dist_error := diff_util.error_text(state, msg);
    END;
    BEGIN
        loc := diff_util.run_query(q_local, 'diff_local');
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        local_error := diff_util.error_text(state, msg);
    END;
    -- the same error is the same answer
    IF dist_error = local_error THEN
        result := 'same error: ' || dist_error;
    ELSIF dist_error IS NOT NULL THEN
        result := 'ERROR in diff_dist: ' || dist_error;
    ELSIF local_error IS NOT NULL THEN
        result := 'ERROR in diff_local: ' || local_error;
    END IF;

    IF result IS NULL THEN
        IF NOT ordered THEN
            dist := ARRAY(SELECT x FROM unnest(dist) x ORDER BY x COLLATE "C");
            loc := ARRAY(SELECT x FROM unnest(loc) x ORDER BY x COLLATE "C");
        END IF;
        IF dist = loc THEN
            result := 'ok';
        ELSE
            only_dist := ARRAY(SELECT x FROM unnest(dist) x EXCEPT ALL SELECT x FROM unnest(loc) x);
            only_loc := ARRAY(SELECT x FROM unnest(loc) x EXCEPT ALL SELECT x FROM unnest(dist) x);
            result := format('DIFFERENT: %s rows in diff_dist, %s in diff_local',
                             cardinality(dist), cardinality(loc));
            IF only_dist = '{}' AND only_loc = '{}' THEN
                result := result || '; same rows, in another order';
            ELSE
                result := result || format('; only in diff_dist: %s; only in diff_local: %s',
                                           diff_util.first_rows(only_dist),
                                           diff_util.first_rows(only_loc));
            END IF;
        END IF;
    END IF;

    PERFORM diff_util.restore_settings(saved);
    RETURN result;
END
$fn$;

-- check_query: the same query text over both schemas
CREATE FUNCTION check_query(q text, ordered bool DEFAULT false, settings jsonb DEFAULT NULL)
RETURNS text
LANGUAGE sql AS $fn$
    SELECT diff_util.check_pair(q, q, ordered, settings)
$fn$;

-- local_row_count: how many rows q returns over diff_local, -1 for an error
CREATE FUNCTION local_row_count(q text, settings jsonb) RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    saved jsonb := diff_util.apply_settings(settings);
    n int;
BEGIN
    BEGIN
        n := cardinality(diff_util.run_query(q, 'diff_local'));
    EXCEPTION WHEN OTHERS THEN
        n := -1;
    END;
    PERFORM diff_util.restore_settings(saved);
    RETURN n;
END
$fn$;

-- the queries: label, whether the order of the rows counts, settings, and
-- whether it needs the router (row locks: the pull plan refuses them)
CREATE TABLE queries (
    id serial PRIMARY KEY,
    label text UNIQUE NOT NULL,
    ordered bool NOT NULL,
    q text NOT NULL,
    settings jsonb,
    router_only bool NOT NULL DEFAULT false
);

--
-- the queries
--
-- "ordered" is true only where the ORDER BY is a total order of the rows
-- returned; everything else is compared as a multiset.
--

-- the rows themselves
INSERT INTO queries (label, ordered, q) VALUES
('all_customers', false, $$SELECT * FROM customers$$),
('all_orders', false, $$SELECT * FROM orders$$),
('all_products', false, $$SELECT * FROM products$$),
('all_cities', false, $$SELECT * FROM cities$$),
('all_categories', false, $$SELECT * FROM categories$$),
('all_local_rates', false, $$SELECT * FROM local_rates$$),
('count_all', false, $$SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders),
       (SELECT count(*) FROM products), (SELECT count(*) FROM cities)$$);

-- distribution-key lookups: =, IN, = ANY, AND/OR, IS NULL
INSERT INTO queries (label, ordered, q) VALUES
('key_eq', false, $$SELECT * FROM customers WHERE customer_id = 42$$),
('key_eq_negative', false, $$SELECT * FROM customers WHERE customer_id = -22$$),
('key_eq_max', false, $$SELECT * FROM customers WHERE customer_id = 9223372036854775807$$),
('key_eq_min', false, $$SELECT * FROM customers WHERE customer_id = -9223372036854775808$$),
('key_eq_zero', false, $$SELECT * FROM customers WHERE customer_id = 0$$),
('empty_key_eq_missing', false, $$SELECT * FROM customers WHERE customer_id = 123456789$$),
('key_eq_reversed', false, $$SELECT * FROM customers WHERE 42 = customer_id$$),
('key_eq_int4', false, $$SELECT * FROM customers WHERE customer_id = 42::int4$$),
('key_eq_int2', false, $$SELECT * FROM customers WHERE customer_id = 43::int2$$),
('key_eq_numeric', false, $$SELECT * FROM customers WHERE customer_id = 42.0$$),
('key_eq_string', false, $$SELECT * FROM customers WHERE customer_id = '45'$$),
('key_eq_expression', false, $$SELECT * FROM customers WHERE customer_id = 40 + 5$$),
('empty_key_eq_null', false, $$SELECT * FROM customers WHERE customer_id = NULL$$),
('empty_key_is_null', false, $$SELECT * FROM customers WHERE customer_id IS NULL$$),
('key_is_not_null', false, $$SELECT count(*) FROM customers WHERE customer_id IS NOT NULL$$),
('key_in', false, $$SELECT * FROM customers WHERE customer_id IN (1, 2, 3, -33, 123456789)$$),
('key_in_one', false, $$SELECT * FROM customers WHERE customer_id IN (46)$$),
('key_not_in', false, $$SELECT count(*), sum(score) FROM customers WHERE customer_id NOT IN (1, 2, 3)$$),
('key_any_array', false, $$SELECT * FROM customers WHERE customer_id = ANY ('{5,6,7,-55}'::bigint[])$$),
('empty_key_any', false, $$SELECT * FROM customers WHERE customer_id = ANY ('{}'::bigint[])$$),
('key_any_null_element', false, $$SELECT * FROM customers WHERE customer_id = ANY (ARRAY[8, NULL]::bigint[])$$),
('key_and_other', false, $$SELECT * FROM customers WHERE customer_id = 48 AND name IS NOT NULL$$),
('key_and_same', false, $$SELECT * FROM customers WHERE customer_id = 49 AND customer_id = 49$$),
('empty_key_and_conflict', false, $$SELECT * FROM customers WHERE customer_id = 49 AND customer_id = 50$$),
('key_or', false, $$SELECT * FROM customers WHERE customer_id = 51 OR customer_id = 52$$),
('key_or_other', false, $$SELECT customer_id, name FROM customers WHERE customer_id = 53 OR name = 'O''Brien'$$),
('key_or_and', false, $$SELECT * FROM customers WHERE (customer_id = 54 OR score > 0) AND customer_id = 54$$),
('key_and_or', false, $$SELECT * FROM customers WHERE (customer_id = 56 AND NOT flag) OR (customer_id = 57 AND flag)$$),
('key_between', false, $$SELECT * FROM customers WHERE customer_id BETWEEN -30 AND 30$$),
('key_not_equal', false, $$SELECT count(*), min(customer_id), max(customer_id) FROM customers WHERE customer_id <> 42$$),
('key_eq_subselect', false, $$SELECT * FROM customers WHERE customer_id = (SELECT 58)$$),
('key_eq_columns', false, $$SELECT customer_id, upper(name), score * 2, tags[1], data -> 'nested', flag IS TRUE
  FROM customers WHERE customer_id = 59$$),
('key_eq_orders', false, $$SELECT * FROM orders WHERE customer_id = 38$$),
('key_eq_orders_pk', false, $$SELECT * FROM orders WHERE customer_id = 38 AND order_id = 2101$$),
('key_eq_orders_null_note', false, $$SELECT * FROM orders WHERE customer_id = 53 AND note IS NULL$$),
('key_eq_subquery_from', false, $$SELECT * FROM (SELECT customer_id, name, score FROM customers) s WHERE s.customer_id = 61$$),
('key_eq_subquery_inside', false, $$SELECT * FROM (SELECT * FROM customers WHERE customer_id = 62) s$$),
('key_eq_cte', false, $$WITH c AS (SELECT * FROM customers WHERE customer_id = 63) SELECT * FROM c$$),
('key_eq_products', false, $$SELECT * FROM products WHERE product_id = 17$$),
('key_eq_products_negative', false, $$SELECT * FROM products WHERE product_id = -3$$),
('key_eq_products_int8', false, $$SELECT * FROM products WHERE product_id = 18::bigint$$),
('key_eq_count', false, $$SELECT count(*), sum(amount), avg(amount) FROM orders WHERE customer_id = 38$$),
('key_eq_empty_aggregate', false, $$SELECT count(*), sum(amount), max(status) FROM orders WHERE customer_id = 123456789$$),
('key_eq_order_limit', true, $$SELECT order_id, amount FROM orders WHERE customer_id = 38
  ORDER BY amount DESC NULLS FIRST, order_id LIMIT 2$$),
('key_eq_order_offset', true, $$SELECT order_id, amount FROM orders WHERE customer_id = 38
  ORDER BY order_id DESC OFFSET 1$$),
('key_eq_distinct', false, $$SELECT DISTINCT status FROM orders WHERE customer_id = 38$$),
('key_eq_group', false, $$SELECT status, count(*), sum(amount) FROM orders WHERE customer_id = 76 GROUP BY status$$),
('key_eq_having', false, $$SELECT status, count(*) FROM orders WHERE customer_id = 76 GROUP BY status HAVING count(*) > 0$$),
('key_eq_window', true, $$SELECT order_id, amount, row_number() OVER (ORDER BY order_id),
       sum(amount) OVER (ORDER BY order_id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
  FROM orders WHERE customer_id = 76 ORDER BY order_id$$),
('key_eq_max_orders', false, $$SELECT * FROM orders WHERE customer_id = 9223372036854775807$$),
('key_eq_min_orders', false, $$SELECT * FROM orders WHERE customer_id = -9223372036854775808$$);

-- shard pruning edge cases: ALL is not ANY, NULLs, OR with other columns
INSERT INTO queries (label, ordered, q) VALUES
('prune_eq_all_empty', false, $$SELECT count(*) FROM customers WHERE customer_id = ALL ('{}'::bigint[])$$),
('prune_eq_all_same', false, $$SELECT * FROM customers WHERE customer_id = ALL ('{46,46}'::bigint[])$$),
('empty_prune_eq_all_two', false, $$SELECT * FROM customers WHERE customer_id = ALL ('{46,47}'::bigint[])$$),
('prune_ne_all', false, $$SELECT count(*), sum(customer_id) FROM customers WHERE customer_id <> ALL ('{1,2,3}'::bigint[])$$),
('prune_any_int4_array', false, $$SELECT customer_id, name FROM customers WHERE customer_id = ANY (ARRAY[1, 2, 3, -33]::int[])$$),
('prune_any_int2_list', false, $$SELECT customer_id FROM customers WHERE customer_id IN (1::int2, 2::int2, 300::int2)$$),
('prune_any_numeric', false, $$SELECT customer_id FROM customers WHERE customer_id = ANY ('{1.0,2.5,3}'::numeric[])$$),
('empty_prune_any_null_array', false, $$SELECT * FROM customers WHERE customer_id = ANY (NULL::bigint[])$$),
('prune_in_with_null', false, $$SELECT customer_id FROM customers WHERE customer_id IN (1, NULL, 76)$$),
('prune_not_in_with_null', false, $$SELECT count(*) FROM customers WHERE customer_id NOT IN (1, NULL)$$),
('prune_in_duplicates', false, $$SELECT customer_id FROM customers WHERE customer_id IN (76, 76, 38, 38)$$),
('prune_or_null', false, $$SELECT customer_id FROM customers WHERE customer_id = 1 OR NULL$$),
('prune_or_is_null', false, $$SELECT customer_id FROM customers WHERE customer_id IS NULL OR customer_id = 38$$),
('prune_or_other_column', false, $$SELECT customer_id FROM customers WHERE customer_id = 38 OR city = 'Kraków'$$),
('prune_or_nested', false, $$SELECT customer_id FROM customers WHERE (customer_id = 1 OR customer_id = 3) AND (customer_id = 3 OR customer_id = 4)$$),
('empty_prune_and_or_conflict', false, $$SELECT customer_id FROM customers WHERE customer_id = 1 AND (customer_id = 2 OR customer_id = 3)$$),
('prune_or_and_mixed', false, $$SELECT customer_id, flag FROM customers WHERE (customer_id = 6 AND flag) OR (customer_id = 7 AND flag IS NULL) OR customer_id = -77$$),
('prune_not_ne', false, $$SELECT customer_id FROM customers WHERE NOT (customer_id <> 38)$$),
('prune_not_eq', false, $$SELECT count(*) FROM customers WHERE NOT (customer_id = 38)$$),
('prune_not_or', false, $$SELECT count(*) FROM customers WHERE NOT (customer_id = 38 OR customer_id = 76)$$),
('prune_is_true', false, $$SELECT customer_id FROM customers WHERE (customer_id = 38) IS TRUE$$),
('prune_is_not_false', false, $$SELECT count(*) FROM customers WHERE (customer_id = 38) IS NOT FALSE$$),
('prune_case', false, $$SELECT customer_id FROM customers WHERE CASE WHEN customer_id = 38 THEN true ELSE false END$$),
('prune_row_in', false, $$SELECT customer_id, order_id FROM orders WHERE (customer_id, order_id) IN ((38, 1), (76, 1875), (5, 5))$$),
('prune_row_eq', false, $$SELECT order_id FROM orders WHERE (customer_id, order_id) = (38, 2101)$$),
('prune_in_subquery_values', false, $$SELECT customer_id FROM customers WHERE customer_id IN (SELECT 38 UNION ALL SELECT 76)$$),
('prune_join_or', false, $$SELECT c.customer_id, o.order_id FROM customers c JOIN orders o ON o.customer_id = c.customer_id
 WHERE c.customer_id = 38 OR o.customer_id = 76$$),
('prune_join_in', false, $$SELECT c.customer_id, o.order_id FROM customers c JOIN orders o USING (customer_id)
 WHERE customer_id IN (38, 76, 5)$$),
('prune_join_in_both_sides', false, $$SELECT c.customer_id, o.order_id FROM customers c, orders o
 WHERE c.customer_id IN (38, 76) AND o.customer_id IN (38, 76)$$),
('prune_left_join_in', false, $$SELECT c.customer_id, o.order_id FROM customers c LEFT JOIN orders o
  ON o.customer_id = c.customer_id AND o.customer_id IN (38, 53) WHERE c.customer_id IN (38, 76)$$),
('prune_in_aggregate', false, $$SELECT customer_id, count(*), sum(amount) FROM orders WHERE customer_id IN (38, 76, 53, -22) GROUP BY customer_id$$),
('prune_in_order_limit', true, $$SELECT customer_id, order_id FROM orders WHERE customer_id IN (38, 76, 53, 37) ORDER BY order_id DESC LIMIT 3$$),
('prune_any_array_constructor', false, $$SELECT customer_id FROM customers WHERE customer_id = ANY (ARRAY[38, 76 + 1, NULL])$$),
('prune_between_same', false, $$SELECT customer_id FROM customers WHERE customer_id BETWEEN 38 AND 38$$),
('prune_in_products', false, $$SELECT product_id FROM products WHERE product_id IN (1, 2, 3, 200) OR product_id = -5$$),
('prune_in_view', false, $$SELECT * FROM customer_orders WHERE customer_id IN (38, 76)$$),
('prune_or_view', false, $$SELECT * FROM customer_countries WHERE customer_id = 65 OR customer_id = 1$$),
('prune_in_reference_join', false, $$SELECT c.customer_id, ci.country FROM customers c JOIN cities ci USING (city) WHERE c.customer_id IN (65, 1, 2)$$),
('prune_in_lateral', false, $$SELECT c.customer_id, x.n FROM customers c,
  LATERAL (SELECT count(*) AS n FROM orders o WHERE o.customer_id = c.customer_id) x WHERE c.customer_id IN (38, 76, 5)$$);

-- joins of the colocated tables on the distribution key
INSERT INTO queries (label, ordered, q) VALUES
('join_key_pinned', false, $$SELECT c.name, o.* FROM customers c JOIN orders o ON c.customer_id = o.customer_id
 WHERE c.customer_id = 38$$),
('join_key_pinned_other_side', false, $$SELECT c.name, o.* FROM customers c JOIN orders o ON c.customer_id = o.customer_id
 WHERE o.customer_id = 38$$),
('join_using_pinned', false, $$SELECT * FROM customers JOIN orders USING (customer_id) WHERE customer_id = 76$$),
('join_comma_pinned', false, $$SELECT c.customer_id, c.city, o.order_id, o.amount FROM customers c, orders o
 WHERE c.customer_id = o.customer_id AND c.customer_id = 76 AND o.amount > 0$$),
('join_left_pinned', false, $$SELECT c.customer_id, o.order_id FROM customers c LEFT JOIN orders o ON c.customer_id = o.customer_id
 WHERE c.customer_id IN (1) $$),
('join_left_no_match', false, $$SELECT c.customer_id, o.order_id FROM customers c LEFT JOIN orders o ON c.customer_id = o.customer_id
 WHERE c.customer_id = 5$$),
('join_left_pin_in_on', false, $$SELECT count(*), count(o.order_id) FROM customers c
  LEFT JOIN orders o ON c.customer_id = o.customer_id AND o.customer_id = 38$$),
('join_right_pinned', false, $$SELECT c.name, o.order_id FROM customers c RIGHT JOIN orders o ON c.customer_id = o.customer_id
 WHERE o.customer_id = 2063$$),
('join_full_pinned', false, $$SELECT c.customer_id, o.order_id FROM customers c FULL JOIN orders o ON c.customer_id = o.customer_id
 WHERE c.customer_id = 38 OR o.customer_id = 2063$$),
('join_self_pinned', false, $$SELECT a.customer_id, b.name FROM customers a JOIN customers b ON a.customer_id = b.customer_id
 WHERE a.customer_id = 64$$),
('join_reference_pinned', false, $$SELECT c.customer_id, c.city, ci.country, ci.population
  FROM customers c JOIN cities ci ON c.city = ci.city WHERE c.customer_id = 65$$),
('join_reference_left_pinned', false, $$SELECT c.customer_id, ci.country FROM customers c
  LEFT JOIN cities ci ON ci.city = c.city WHERE c.customer_id = 70$$),
('join_three_pinned', false, $$SELECT c.name, o.order_id, ci.country FROM customers c
  JOIN orders o ON o.customer_id = c.customer_id
  LEFT JOIN cities ci ON ci.city = c.city
 WHERE c.customer_id = 76$$),
('join_pinned_aggregate', false, $$SELECT c.customer_id, c.name, count(o.order_id), sum(o.amount), max(o.ordered_at)
  FROM customers c JOIN orders o ON o.customer_id = c.customer_id
 WHERE c.customer_id = 76 GROUP BY c.customer_id, c.name$$),
('join_two_constants', false, $$SELECT c.name, o.order_id FROM customers c, orders o WHERE c.customer_id = 1 AND o.customer_id = 2$$),
('join_key_all', false, $$SELECT c.customer_id, c.name, o.order_id, o.amount
  FROM customers c JOIN orders o ON c.customer_id = o.customer_id$$),
('join_key_all_aggregate', false, $$SELECT c.city, count(*), sum(o.amount), avg(o.amount)
  FROM customers c JOIN orders o ON c.customer_id = o.customer_id GROUP BY c.city$$),
('join_left_all', false, $$SELECT c.customer_id, count(o.order_id) FROM customers c
  LEFT JOIN orders o ON c.customer_id = o.customer_id GROUP BY c.customer_id$$),
('join_anti_orphans', false, $$SELECT o.customer_id, o.order_id FROM orders o
  LEFT JOIN customers c ON c.customer_id = o.customer_id WHERE c.customer_id IS NULL$$),
('join_full_all', false, $$SELECT count(*), count(c.customer_id), count(o.order_id) FROM customers c
  FULL JOIN orders o ON c.customer_id = o.customer_id$$),
('join_non_key', false, $$SELECT c.customer_id, o.order_id FROM customers c JOIN orders o ON c.customer_id = o.order_id
 WHERE c.customer_id < 100$$),
('join_reference_all', false, $$SELECT ci.country, count(*), count(DISTINCT c.customer_id)
  FROM customers c JOIN cities ci ON c.city = ci.city GROUP BY ci.country$$),
('join_reference_only', false, $$SELECT a.city, b.city AS near_city, b.country FROM cities a JOIN cities b ON b.city = a.near$$),
('join_two_reference_tables', false, $$SELECT ci.city, ca.title FROM cities ci CROSS JOIN categories ca
 WHERE ca.parent_id IS NULL$$);

-- joins that cannot run on one node: not colocated, local tables
INSERT INTO queries (label, ordered, q) VALUES
('join_products', false, $$SELECT o.order_id, o.customer_id, p.name, p.price FROM orders o
  JOIN products p ON p.product_id = o.product_id WHERE o.customer_id < 200$$),
('join_products_aggregate', false, $$SELECT p.category_id, count(*), sum(o.amount), sum(p.price)
  FROM orders o JOIN products p ON p.product_id = o.product_id GROUP BY p.category_id$$),
('join_products_left', false, $$SELECT count(*), count(p.product_id) FROM orders o
  LEFT JOIN products p ON p.product_id = o.product_id$$),
('join_products_pinned_both', false, $$SELECT o.order_id, p.name FROM orders o JOIN products p ON p.product_id = o.product_id
 WHERE o.customer_id = 38 AND p.product_id = 16$$),
('join_products_pinned_order', false, $$SELECT o.order_id, p.name, p.price FROM orders o
  JOIN products p ON p.product_id = o.product_id WHERE o.customer_id = 76$$),
('join_products_key_to_key', false, $$SELECT c.customer_id, p.product_id, p.name FROM customers c
  JOIN products p ON p.product_id = c.customer_id$$),
('join_local', false, $$SELECT o.status, r.factor, count(*), sum(o.amount * r.factor) FROM orders o
  JOIN local_rates r ON r.status = o.status GROUP BY o.status, r.factor$$),
('join_local_pinned', false, $$SELECT o.order_id, o.amount * r.factor FROM orders o
  JOIN local_rates r ON r.status IS NOT DISTINCT FROM o.status WHERE o.customer_id = 38$$),
('join_local_left', false, $$SELECT o.order_id, r.factor FROM orders o LEFT JOIN local_rates r USING (status)
 WHERE o.customer_id BETWEEN 1 AND 60$$),
('join_local_reference', false, $$SELECT r.status, ci.city FROM local_rates r, cities ci WHERE ci.population > 1000000$$),
('join_four_tables', false, $$SELECT ci.country, p.category_id, count(*), sum(o.amount)
  FROM customers c JOIN orders o ON o.customer_id = c.customer_id
  JOIN products p ON p.product_id = o.product_id
  JOIN cities ci ON ci.city = c.city
 GROUP BY ci.country, p.category_id$$),
('join_cross_small', false, $$SELECT c.customer_id, p.product_id FROM customers c CROSS JOIN products p
 WHERE c.customer_id BETWEEN 1 AND 5 AND p.product_id < 4$$);

-- subqueries: IN, EXISTS, NOT EXISTS, scalar, correlated
INSERT INTO queries (label, ordered, q) VALUES
('in_subquery', false, $$SELECT * FROM customers WHERE customer_id IN (SELECT customer_id FROM orders WHERE amount > 1900)$$),
('not_in_subquery', false, $$SELECT count(*) FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM orders)$$),
('not_in_subquery_nulls', false, $$SELECT count(*) FROM products WHERE product_id NOT IN (SELECT product_id FROM orders)$$),
('in_subquery_products', false, $$SELECT * FROM products WHERE product_id IN (SELECT product_id FROM orders WHERE customer_id = 38)$$),
('exists_correlated', false, $$SELECT count(*) FROM customers c
 WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.status = 'paid')$$),
('not_exists_correlated', false, $$SELECT customer_id, name FROM customers c
 WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id)$$),
('exists_pinned', false, $$SELECT * FROM customers c WHERE c.customer_id = 38
   AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.amount > 0)$$),
('not_exists_pinned', false, $$SELECT * FROM customers c WHERE c.customer_id = 5
   AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id)$$),
('scalar_correlated', false, $$SELECT c.customer_id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.customer_id),
       (SELECT max(amount) FROM orders o WHERE o.customer_id = c.customer_id)
  FROM customers c WHERE c.customer_id BETWEEN -200 AND 200$$),
('scalar_pinned_twice', false, $$SELECT (SELECT max(amount) FROM orders WHERE customer_id = 38),
       (SELECT name FROM customers WHERE customer_id = 38)$$),
('scalar_pinned_correlated', false, $$SELECT c.name, (SELECT sum(amount) FROM orders o WHERE o.customer_id = c.customer_id)
  FROM customers c WHERE c.customer_id = 76$$),
('scalar_uncorrelated', false, $$SELECT customer_id, score - (SELECT avg(score) FROM customers) FROM customers WHERE customer_id < 20$$),
('any_subquery', false, $$SELECT count(*) FROM orders WHERE amount > ANY (SELECT price FROM products WHERE category_id = 3)$$),
('all_subquery', false, $$SELECT count(*) FROM orders WHERE amount > ALL (SELECT price FROM products WHERE price IS NOT NULL)$$),
('in_reference_subquery', false, $$SELECT count(*) FROM customers WHERE city IN (SELECT city FROM cities WHERE country = 'FR')$$),
('in_reference_pinned', false, $$SELECT * FROM customers WHERE customer_id = 65 AND city IN (SELECT city FROM cities)$$),
('correlated_products', false, $$SELECT p.product_id, (SELECT count(*) FROM orders o WHERE o.product_id = p.product_id) FROM products p$$),
('correlated_having', false, $$SELECT status, count(*) FROM orders o GROUP BY status
 HAVING count(*) > (SELECT count(*) / 10 FROM orders)$$),
('subquery_in_from_aggregate', false, $$SELECT s.customer_id, s.total FROM
  (SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id) s WHERE s.total > 3000$$),
('subquery_in_from_pinned_outer', false, $$SELECT * FROM
  (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) s WHERE s.customer_id = 76$$),
('subquery_in_from_limit', false, $$SELECT * FROM (SELECT * FROM orders ORDER BY order_id LIMIT 5) s WHERE s.customer_id > 0$$),
('subquery_array', false, $$SELECT c.customer_id, ARRAY(SELECT o.order_id FROM orders o WHERE o.customer_id = c.customer_id ORDER BY 1)
  FROM customers c WHERE c.customer_id = 76$$);

-- CTEs, including recursive ones over reference tables
INSERT INTO queries (label, ordered, q) VALUES
('cte_aggregate_join', false, $$WITH big AS (SELECT customer_id, sum(amount) AS s FROM orders GROUP BY customer_id)
SELECT c.name, big.s FROM customers c JOIN big USING (customer_id) WHERE big.s > 3000$$),
('cte_materialized_pinned', false, $$WITH o AS MATERIALIZED (SELECT * FROM orders WHERE customer_id = 76)
SELECT count(*), sum(amount) FROM o$$),
('cte_not_materialized', false, $$WITH o AS NOT MATERIALIZED (SELECT * FROM orders)
SELECT * FROM o WHERE customer_id = 76$$),
('cte_twice', false, $$WITH c AS (SELECT customer_id, city FROM customers WHERE customer_id = 38)
SELECT a.customer_id, b.city FROM c a, c b$$),
('cte_two', false, $$WITH c AS (SELECT * FROM customers WHERE flag), o AS (SELECT * FROM orders WHERE amount < 0)
SELECT c.city, count(*) FROM c JOIN o USING (customer_id) GROUP BY c.city$$),
('cte_recursive_reference', false, $$WITH RECURSIVE tree AS (
    SELECT category_id, parent_id, title, 1 AS depth, title AS path FROM categories WHERE parent_id IS NULL
    UNION ALL
    SELECT c.category_id, c.parent_id, c.title, t.depth + 1, t.path || '/' || c.title
      FROM categories c JOIN tree t ON c.parent_id = t.category_id)
SELECT * FROM tree$$),
('cte_recursive_cities', false, $$WITH RECURSIVE chain(city, near, depth) AS (
    SELECT city, near, 0 FROM cities WHERE city = 'Paris'
    UNION
    SELECT c.city, c.near, chain.depth + 1 FROM cities c JOIN chain ON c.city = chain.near WHERE chain.depth < 10)
SELECT * FROM chain$$),
('cte_recursive_join_products', false, $$WITH RECURSIVE tree AS (
    SELECT category_id FROM categories WHERE category_id = 2
    UNION ALL
    SELECT c.category_id FROM categories c JOIN tree t ON c.parent_id = t.category_id)
SELECT p.product_id, p.name FROM products p JOIN tree USING (category_id)$$),
('cte_recursive_keys', false, $$WITH RECURSIVE n(i) AS (SELECT 1::bigint UNION ALL SELECT i + 1 FROM n WHERE i < 12)
SELECT c.customer_id, c.name FROM customers c JOIN n ON n.i = c.customer_id$$),
('cte_recursive_pinned', false, $$WITH RECURSIVE tree AS (
    SELECT category_id FROM categories WHERE category_id = 1
    UNION ALL
    SELECT c.category_id FROM categories c JOIN tree t ON c.parent_id = t.category_id)
SELECT o.order_id, t.category_id FROM orders o, tree t WHERE o.customer_id = 38 AND o.product_id % 10 = t.category_id$$),
('cte_search', true, $$WITH RECURSIVE tree AS (
    SELECT category_id, parent_id FROM categories WHERE parent_id IS NULL
    UNION ALL
    SELECT c.category_id, c.parent_id FROM categories c JOIN tree t ON c.parent_id = t.category_id)
  SEARCH DEPTH FIRST BY category_id SET ord
SELECT category_id, parent_id FROM tree ORDER BY ord$$);

-- window functions
INSERT INTO queries (label, ordered, q) VALUES
('window_row_number', false, $$SELECT customer_id, order_id, row_number() OVER (PARTITION BY customer_id ORDER BY order_id)
  FROM orders WHERE customer_id < 50$$),
('window_rank_limit', true, $$SELECT customer_id, order_id, amount,
       rank() OVER (ORDER BY amount DESC NULLS LAST)
  FROM orders ORDER BY amount DESC NULLS LAST, customer_id, order_id LIMIT 20$$),
('window_sum_partition', false, $$SELECT status, order_id, sum(amount) OVER (PARTITION BY status) FROM orders WHERE order_id < 300$$),
('window_lag_lead_pinned', true, $$SELECT order_id, lag(amount) OVER w, lead(amount, 2, 0.0) OVER w, first_value(order_id) OVER w
  FROM orders WHERE customer_id = 76 WINDOW w AS (ORDER BY order_id) ORDER BY order_id$$),
('window_frame_range_pinned', true, $$SELECT order_id, ordered_at,
       count(*) OVER (ORDER BY ordered_at RANGE BETWEEN interval '30 days' PRECEDING AND CURRENT ROW)
  FROM orders WHERE customer_id = 76 ORDER BY order_id$$),
('window_frame_groups_pinned', true, $$SELECT order_id, sum(order_id) OVER (ORDER BY status GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE GROUP)
  FROM orders WHERE customer_id = 76 ORDER BY order_id$$),
('window_last_value', false, $$SELECT customer_id, order_id,
       last_value(order_id) OVER (PARTITION BY customer_id ORDER BY order_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
  FROM orders WHERE customer_id BETWEEN 100 AND 400$$),
('window_ntile', false, $$SELECT product_id, ntile(4) OVER (ORDER BY product_id), percent_rank() OVER (ORDER BY product_id),
       cume_dist() OVER (ORDER BY product_id) FROM products$$),
('window_filter', false, $$SELECT DISTINCT customer_id, count(*) FILTER (WHERE amount > 0) OVER (PARTITION BY customer_id)
  FROM orders$$),
('window_over_aggregate', false, $$SELECT status, sum(amount), rank() OVER (ORDER BY sum(amount) DESC NULLS LAST)
  FROM orders GROUP BY status$$),
('window_dense_rank_join', false, $$SELECT c.city, c.customer_id, dense_rank() OVER (PARTITION BY c.city ORDER BY c.customer_id)
  FROM customers c JOIN orders o USING (customer_id) WHERE o.amount > 1500$$),
('window_in_subquery', false, $$SELECT * FROM (SELECT customer_id, order_id,
        row_number() OVER (PARTITION BY customer_id ORDER BY amount DESC NULLS LAST, order_id) AS rn FROM orders) s
 WHERE rn = 1 AND customer_id BETWEEN 0 AND 300$$),
('window_pinned_partition', false, $$SELECT customer_id, status, count(*) OVER (PARTITION BY status), avg(amount) OVER (PARTITION BY status)
  FROM orders WHERE customer_id = 38$$);

-- aggregates
INSERT INTO queries (label, ordered, q) VALUES
('agg_count', false, $$SELECT count(*), count(note), count(status), count(DISTINCT status), count(DISTINCT customer_id) FROM orders$$),
('agg_sum_avg', false, $$SELECT sum(amount), avg(amount), sum(order_id), avg(order_id), sum(customer_id::numeric) FROM orders$$),
('agg_min_max', false, $$SELECT min(amount), max(amount), min(ordered_at), max(ordered_at), min(status), max(status),
       min(note), max(note) FROM orders$$),
('agg_min_max_types', false, $$SELECT min(created), max(created), min(score), max(score), min(tags), max(tags),
       min(data::text), max(data::text), min(name COLLATE "C"), max(name COLLATE "C") FROM customers$$),
('agg_bool', false, $$SELECT bool_and(flag), bool_or(flag), every(flag), bool_and(score > -1000), bool_or(score > 1000) FROM customers$$),
('agg_bool_group', false, $$SELECT city, bool_and(flag), bool_or(flag) FROM customers GROUP BY city$$),
('agg_bit', false, $$SELECT bit_and(customer_id), bit_or(customer_id), bit_and(order_id::int), bit_or(order_id::int),
       bit_xor(order_id) FROM orders$$),
('agg_bit_group', false, $$SELECT category_id, bit_and(product_id), bit_or(product_id), bit_xor(length(code)) FROM products GROUP BY category_id$$),
('agg_stddev', false, $$SELECT stddev(amount), stddev_pop(amount), stddev_samp(amount), variance(amount), var_pop(amount),
       var_samp(amount) FROM orders$$),
('agg_stddev_group', false, $$SELECT status, stddev(amount), variance(amount), var_pop(order_id) FROM orders GROUP BY status$$),
('agg_stddev_float', false, $$SELECT round(stddev(weight)::numeric, 8), round(variance(weight)::numeric, 6),
       round(sum(weight)::numeric, 8), round(avg(weight)::numeric, 8) FROM products WHERE product_id > 0$$),
('agg_float_special', false, $$SELECT stddev(weight), sum(weight), avg(weight), max(weight), min(weight) FROM products WHERE product_id <= 0$$),
('agg_array_agg', false, $$SELECT customer_id, array_agg(order_id ORDER BY order_id), array_agg(amount ORDER BY order_id)
  FROM orders WHERE customer_id BETWEEN 1 AND 100 GROUP BY customer_id$$),
('agg_array_agg_distinct', false, $$SELECT array_agg(DISTINCT status ORDER BY status), array_agg(DISTINCT city ORDER BY city)
  FROM orders JOIN customers USING (customer_id)$$),
('agg_array_agg_pinned', false, $$SELECT array_agg(order_id ORDER BY order_id DESC), array_agg(note ORDER BY order_id NULLS FIRST)
  FROM orders WHERE customer_id = 76$$),
('agg_string_agg', false, $$SELECT city, string_agg(name, ', ' ORDER BY customer_id), string_agg(DISTINCT name, '|' ORDER BY name)
  FROM customers GROUP BY city$$),
('agg_string_agg_pinned', false, $$SELECT string_agg(coalesce(note, '<null>'), ';' ORDER BY order_id) FROM orders WHERE customer_id = 38$$),
('agg_json', false, $$SELECT status, jsonb_agg(order_id ORDER BY order_id), json_object_agg(order_id, amount ORDER BY order_id)
  FROM orders WHERE customer_id BETWEEN 1 AND 80 GROUP BY status$$),
('agg_jsonb_object_pinned', false, $$SELECT jsonb_object_agg(order_id, status), jsonb_agg(ordered_at ORDER BY order_id) FROM orders WHERE customer_id = 76$$),
('agg_group_key', false, $$SELECT customer_id, count(*), sum(amount), min(ordered_at) FROM orders GROUP BY customer_id$$),
('agg_group_key_having', false, $$SELECT customer_id, count(*), avg(amount) FROM orders GROUP BY customer_id HAVING count(*) >= 3$$),
('agg_group_other', false, $$SELECT status, count(*), sum(amount), avg(amount) FROM orders GROUP BY status$$),
('agg_group_two', false, $$SELECT status, note, count(*), max(amount) FROM orders GROUP BY status, note$$),
('agg_group_expression', false, $$SELECT order_id % 7 AS bucket, count(*), sum(amount) FROM orders GROUP BY order_id % 7$$),
('agg_group_having_sum', false, $$SELECT status, sum(amount) FROM orders GROUP BY status HAVING sum(amount) > 100000 OR status IS NULL$$),
('agg_group_having_no_agg', false, $$SELECT city, count(*) FROM customers GROUP BY city HAVING city <> ''$$),
('agg_group_position', false, $$SELECT city, flag, count(*) FROM customers GROUP BY 1, 2$$),
('agg_group_rollup', false, $$SELECT status, note, count(*), sum(amount) FROM orders GROUP BY ROLLUP (status, note)$$),
('agg_group_cube', false, $$SELECT city, flag, count(*) FROM customers GROUP BY CUBE (city, flag)$$),
('agg_grouping_sets', false, $$SELECT status, customer_id > 0, count(*), GROUPING(status) FROM orders
 GROUP BY GROUPING SETS ((status), (customer_id > 0), ())$$),
('agg_grouping_sets_pinned', false, $$SELECT status, count(*) FROM orders WHERE customer_id = 76 GROUP BY GROUPING SETS ((status), ())$$),
('agg_percentile', false, $$SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY amount), percentile_cont(0.25) WITHIN GROUP (ORDER BY order_id),
       mode() WITHIN GROUP (ORDER BY status) FROM orders$$),
('agg_percentile_pinned', false, $$SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY amount), mode() WITHIN GROUP (ORDER BY status)
  FROM orders WHERE customer_id = 76$$),
('agg_filter', false, $$SELECT status, count(*) FILTER (WHERE amount > 0), sum(amount) FILTER (WHERE note IS NULL),
       avg(amount) FILTER (WHERE customer_id < 0) FROM orders GROUP BY status$$),
('agg_filter_pinned', false, $$SELECT count(*) FILTER (WHERE amount > 0), sum(amount) FILTER (WHERE status = 'paid')
  FROM orders WHERE customer_id = 38$$),
('agg_empty', false, $$SELECT count(*), sum(amount), avg(amount), max(status), bool_and(amount > 0), array_agg(order_id)
  FROM orders WHERE amount > 1e9$$),
('agg_empty_group', false, $$SELECT status, count(*) FROM orders WHERE amount > 1e9 GROUP BY status$$),
('agg_count_distinct_two', false, $$SELECT count(DISTINCT (status, note)), count(DISTINCT note) FILTER (WHERE amount > 0) FROM orders$$),
('agg_distinct_sum', false, $$SELECT sum(DISTINCT amount), avg(DISTINCT customer_id) FROM orders$$),
('agg_on_join_reference', false, $$SELECT ci.country, avg(c.score), count(*) FROM customers c LEFT JOIN cities ci USING (city) GROUP BY ci.country$$),
('agg_regression', false, $$SELECT round(corr(order_id, amount)::numeric, 10), round(regr_slope(amount, order_id)::numeric, 10),
       covar_pop(order_id, customer_id) IS NOT NULL FROM orders$$),
('agg_nested_subquery', false, $$SELECT max(n), min(n), avg(n) FROM (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) s$$),
('empty_agg_key', false, $$SELECT customer_id, count(*) FROM orders WHERE customer_id = 5 GROUP BY customer_id$$);

-- DISTINCT, DISTINCT ON, ORDER BY, LIMIT, OFFSET
INSERT INTO queries (label, ordered, q) VALUES
('distinct_status', false, $$SELECT DISTINCT status FROM orders$$),
('distinct_two', false, $$SELECT DISTINCT city, flag FROM customers$$),
('distinct_key', false, $$SELECT DISTINCT customer_id FROM orders$$),
('distinct_expression', false, $$SELECT DISTINCT date_trunc('year', ordered_at) FROM orders$$),
('distinct_on', true, $$SELECT DISTINCT ON (customer_id) customer_id, order_id, amount FROM orders
 ORDER BY customer_id, order_id DESC$$),
('distinct_on_other', true, $$SELECT DISTINCT ON (status) status, order_id, amount FROM orders
 ORDER BY status NULLS FIRST, amount DESC NULLS LAST, order_id$$),
('distinct_on_pinned', true, $$SELECT DISTINCT ON (status) status, order_id FROM orders WHERE customer_id = 76
 ORDER BY status, order_id$$),
('order_limit', true, $$SELECT customer_id, order_id, amount FROM orders ORDER BY amount DESC NULLS LAST, customer_id, order_id LIMIT 10$$),
('order_limit_offset', true, $$SELECT customer_id, order_id FROM orders ORDER BY order_id LIMIT 10 OFFSET 100$$),
('order_offset_only', true, $$SELECT order_id FROM orders ORDER BY order_id OFFSET 5640$$),
('empty_order_limit_zero', true, $$SELECT * FROM orders ORDER BY order_id LIMIT 0$$),
('order_limit_null', false, $$SELECT count(*) FROM (SELECT * FROM orders ORDER BY order_id LIMIT NULL) s$$),
('order_limit_all_pinned', true, $$SELECT order_id FROM orders WHERE customer_id = 76 ORDER BY order_id LIMIT ALL$$),
('order_with_ties', false, $$SELECT status, order_id FROM orders ORDER BY status NULLS FIRST FETCH FIRST 3 ROWS WITH TIES$$),
('order_with_ties_pinned', false, $$SELECT status, order_id FROM orders WHERE customer_id = 76 ORDER BY status FETCH FIRST 1 ROWS WITH TIES$$),
('order_collate_c', true, $$SELECT name, customer_id FROM customers ORDER BY name COLLATE "C" NULLS FIRST, customer_id LIMIT 40$$),
('order_default_collation', true, $$SELECT name, customer_id FROM customers WHERE name IS NOT NULL
 ORDER BY name DESC, customer_id DESC LIMIT 40$$),
('order_nulls_first', true, $$SELECT customer_id, score FROM customers ORDER BY score NULLS FIRST, customer_id LIMIT 50$$),
('order_not_selected', true, $$SELECT name FROM customers WHERE customer_id > 1990 ORDER BY customer_id$$),
('order_position', true, $$SELECT order_id, customer_id FROM orders WHERE customer_id < 0 ORDER BY 2, 1 DESC$$),
('order_expression', true, $$SELECT order_id, amount FROM orders WHERE customer_id BETWEEN 1 AND 200
 ORDER BY abs(amount) DESC NULLS LAST, order_id LIMIT 25$$),
('order_aggregate', true, $$SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id
 ORDER BY sum(amount) DESC NULLS LAST, customer_id LIMIT 15$$),
('order_pinned_nulls', true, $$SELECT order_id, note FROM orders WHERE customer_id = 38 ORDER BY note DESC NULLS LAST, order_id$$),
('order_join_limit', true, $$SELECT c.name, o.order_id FROM customers c JOIN orders o USING (customer_id)
 ORDER BY o.order_id DESC LIMIT 7$$),
('order_products_uuid', true, $$SELECT uid, product_id FROM products ORDER BY uid NULLS LAST, product_id$$);

-- set operations
INSERT INTO queries (label, ordered, q) VALUES
('union', false, $$SELECT customer_id FROM customers UNION SELECT customer_id FROM orders$$),
('union_all', false, $$SELECT customer_id, 'c' FROM customers WHERE customer_id < 50 UNION ALL SELECT customer_id, 'o' FROM orders WHERE customer_id < 50$$),
('intersect', false, $$SELECT customer_id FROM customers INTERSECT SELECT customer_id FROM orders$$),
('intersect_all', false, $$SELECT status FROM orders WHERE customer_id < 100 INTERSECT ALL SELECT status FROM orders WHERE customer_id > 1000$$),
('except', false, $$SELECT customer_id FROM orders EXCEPT SELECT customer_id FROM customers$$),
('except_all', false, $$SELECT status FROM orders EXCEPT ALL SELECT status FROM orders WHERE amount > 0$$),
('union_pinned', false, $$SELECT order_id FROM orders WHERE customer_id = 38 UNION SELECT customer_id FROM customers WHERE customer_id = 38$$),
('union_all_pinned_order', true, $$SELECT order_id AS id FROM orders WHERE customer_id = 76
 UNION ALL SELECT customer_id FROM customers WHERE customer_id = 76 ORDER BY 1 DESC$$),
('union_different_tables', false, $$SELECT product_id::bigint AS id, name FROM products UNION SELECT customer_id, name FROM customers WHERE customer_id < 200$$),
('union_reference', false, $$SELECT city FROM cities UNION SELECT city FROM customers$$),
('union_reference_only', false, $$SELECT city AS x FROM cities UNION ALL SELECT title FROM categories$$),
('union_local', false, $$SELECT status FROM local_rates UNION SELECT status FROM orders$$),
('union_order_limit', true, $$(SELECT order_id FROM orders WHERE customer_id < 0) UNION (SELECT product_id FROM products)
 ORDER BY 1 LIMIT 30$$),
('setop_nested', false, $$(SELECT customer_id FROM customers EXCEPT SELECT customer_id FROM orders)
 UNION ALL (SELECT customer_id FROM orders INTERSECT SELECT product_id FROM products)$$),
('setop_in_subquery', false, $$SELECT count(*) FROM customers WHERE customer_id IN
  (SELECT customer_id FROM orders WHERE status = 'paid' UNION SELECT product_id FROM products)$$);

-- views over distributed tables
INSERT INTO queries (label, ordered, q) VALUES
('view_join', false, $$SELECT * FROM customer_orders$$),
('view_join_pinned', false, $$SELECT * FROM customer_orders WHERE customer_id = 76$$),
('view_aggregate', false, $$SELECT * FROM order_totals$$),
('view_aggregate_pinned', false, $$SELECT * FROM order_totals WHERE customer_id = 76$$),
('view_aggregate_join', false, $$SELECT c.name, t.total FROM customers c JOIN order_totals t USING (customer_id) WHERE t.n >= 3$$),
('view_reference', false, $$SELECT country, count(*) FROM customer_countries GROUP BY country$$),
('view_reference_pinned', false, $$SELECT * FROM customer_countries WHERE customer_id = 65$$),
('view_union', false, $$SELECT kind, count(*) FROM all_ids GROUP BY kind$$);

-- LATERAL
INSERT INTO queries (label, ordered, q) VALUES
('lateral_top2', false, $$SELECT c.customer_id, x.order_id, x.amount FROM customers c,
  LATERAL (SELECT order_id, amount FROM orders o WHERE o.customer_id = c.customer_id
            ORDER BY amount DESC NULLS LAST, order_id LIMIT 2) x
 WHERE c.customer_id < 60$$),
('lateral_pinned', false, $$SELECT c.customer_id, x.* FROM customers c,
  LATERAL (SELECT count(*) AS n, sum(amount) AS s FROM orders o WHERE o.customer_id = c.customer_id) x
 WHERE c.customer_id = 76$$),
('lateral_left', false, $$SELECT c.customer_id, x.order_id FROM customers c
  LEFT JOIN LATERAL (SELECT order_id FROM orders o WHERE o.customer_id = c.customer_id AND o.amount > 1000) x ON true
 WHERE c.customer_id BETWEEN 1 AND 120$$),
('lateral_unnest', false, $$SELECT c.customer_id, t FROM customers c, LATERAL unnest(c.tags) AS t WHERE c.customer_id < 100$$),
('lateral_unnest_pinned', false, $$SELECT c.customer_id, t, n FROM customers c, LATERAL unnest(c.tags) WITH ORDINALITY AS u(t, n)
 WHERE c.customer_id = 13$$),
('lateral_jsonb_each', false, $$SELECT c.customer_id, e.key, e.value FROM customers c, LATERAL jsonb_each(c.data) e
 WHERE jsonb_typeof(c.data) = 'object' AND c.customer_id < 40$$),
('lateral_generate_series', false, $$SELECT c.customer_id, g FROM customers c, LATERAL generate_series(1, (c.customer_id % 4)::int) g
 WHERE c.customer_id BETWEEN 1 AND 30$$),
('lateral_products', false, $$SELECT p.product_id, x.n FROM products p,
  LATERAL (SELECT count(*) AS n FROM orders o WHERE o.product_id = p.product_id AND o.customer_id > 1000) x$$),
('function_in_from', false, $$SELECT g, c.name FROM generate_series(1, 20) g LEFT JOIN customers c ON c.customer_id = g$$),
('values_join', false, $$SELECT v.id, v.label, c.name FROM (VALUES (1::bigint, 'one'), (2, 'two'), (-22, 'neg')) v(id, label)
  JOIN customers c ON c.customer_id = v.id$$),
('values_pinned', false, $$SELECT v.x, c.name FROM customers c, (VALUES (1), (2)) v(x) WHERE c.customer_id = 42$$);

-- FILTER, CASE, COALESCE, NULLIF, GREATEST, casts
INSERT INTO queries (label, ordered, q) VALUES
('case_searched', false, $$SELECT order_id, CASE WHEN amount > 100 THEN 'big' WHEN amount < 0 THEN 'negative' ELSE 'small' END
  FROM orders WHERE customer_id < 100$$),
('case_simple_pinned', false, $$SELECT order_id, CASE status WHEN 'paid' THEN 1 WHEN 'new' THEN 2 WHEN '' THEN 3 ELSE 0 END
  FROM orders WHERE customer_id = 38$$),
('case_simple', false, $$SELECT CASE status WHEN 'paid' THEN 'P' WHEN 'shipped' THEN 'S' END, count(*) FROM orders GROUP BY 1$$),
('case_in_aggregate', false, $$SELECT customer_id, sum(CASE WHEN status = 'paid' THEN amount ELSE 0 END) FROM orders
 WHERE customer_id BETWEEN 1 AND 300 GROUP BY customer_id$$),
('coalesce_nullif', false, $$SELECT order_id, coalesce(note, status, 'none'), nullif(status, ''), nullif(note, '') IS NULL
  FROM orders WHERE customer_id BETWEEN -100 AND 100$$),
('coalesce_pinned', false, $$SELECT coalesce(name, '?'), coalesce(city, 'none'), nullif(city, ''), greatest(score, 0), least(score, 0)
  FROM customers WHERE customer_id = 26$$),
('greatest_least', false, $$SELECT greatest(amount, 0), least(amount, -1), greatest(note, status) FROM orders WHERE customer_id < 200$$),
('casts', false, $$SELECT amount::int, amount::text, customer_id::text, order_id::numeric(20,2), flag::int,
       ordered_at::date, '42'::bigint + order_id, (amount * 100)::bigint, CAST(order_id AS text) || '#'
  FROM orders JOIN customers USING (customer_id) WHERE customer_id BETWEEN 100 AND 150$$),
('casts_pinned', false, $$SELECT score::int, score::float8, score::text, tags::text, data::text, flag::text,
       created::date, customer_id::int, name::varchar(3), name::bytea
  FROM customers WHERE customer_id = 27$$),
('casts_products', false, $$SELECT product_id, price::text, weight::numeric(10,2), added::text, code::text, uid::text,
       span::text, span::time IS NOT NULL FROM products WHERE product_id > 0$$),
('cast_errors_avoided', false, $$SELECT count(*) FROM customers WHERE name ~ '^[0-9]+$' AND name::int > 0$$);

-- date and time: under the session's time zone and date style
INSERT INTO queries (label, ordered, q, settings) VALUES
('time_trunc_new_york', false, $$SELECT order_id, date_trunc('day', ordered_at), ordered_at::date, extract(hour FROM ordered_at)
  FROM orders WHERE customer_id < 100$$, '{"TimeZone": "America/New_York"}'),
('time_trunc_pinned_new_york', false, $$SELECT order_id, date_trunc('day', ordered_at), ordered_at::date, extract(hour FROM ordered_at)
  FROM orders WHERE customer_id = 76$$, '{"TimeZone": "America/New_York"}'),
('time_text_pinned_kolkata', false, $$SELECT order_id, ordered_at::text, to_char(ordered_at, 'YYYY-MM-DD HH24:MI:SS.US TZ OF')
  FROM orders WHERE customer_id = 76$$, '{"TimeZone": "Asia/Kolkata"}'),
('time_text_kolkata', false, $$SELECT order_id, ordered_at::text, to_char(ordered_at, 'YYYY-MM-DD HH24:MI:SS.US TZ OF')
  FROM orders WHERE customer_id BETWEEN 1 AND 100$$, '{"TimeZone": "Asia/Kolkata"}'),
('time_literal_pinned_chatham', false, $$SELECT order_id FROM orders WHERE customer_id = 76 AND ordered_at > '2020-07-01 10:00'$$,
 '{"TimeZone": "Pacific/Chatham"}'),
('time_literal_chatham', false, $$SELECT count(*) FROM orders WHERE ordered_at > '2020-07-01 10:00' AND ordered_at < '2020-09-01'$$,
 '{"TimeZone": "Pacific/Chatham"}'),
('time_datestyle_sql_dmy', false, $$SELECT order_id, ordered_at, ordered_at::text, ordered_at::date::text FROM orders
 WHERE customer_id BETWEEN 1 AND 50$$, '{"DateStyle": "SQL, DMY", "TimeZone": "Europe/Berlin"}'),
('time_datestyle_sql_dmy_pinned', false, $$SELECT order_id, ordered_at, ordered_at::text, ordered_at::date::text FROM orders
 WHERE customer_id = 76 AND ordered_at < '31/12/2020'$$, '{"DateStyle": "SQL, DMY", "TimeZone": "Europe/Berlin"}'),
('time_datestyle_german_pinned', false, $$SELECT customer_id, created, created::text FROM customers
 WHERE customer_id IN (1) AND created > '01.01.1900'$$, '{"DateStyle": "German, DMY", "TimeZone": "Europe/Moscow"}'),
('time_edge_values', false, $$SELECT customer_id, created, created::text, extract(epoch FROM created), date_part('year', created),
       isfinite(created) FROM customers WHERE customer_id BETWEEN 1 AND 110$$, '{"TimeZone": "Australia/Lord_Howe"}'),
('time_edge_pinned', false, $$SELECT customer_id, created::text, date_trunc('hour', created), created + interval '1 day'
  FROM customers WHERE customer_id = 4$$, '{"TimeZone": "Europe/London"}'),
('time_dst_arithmetic', false, $$SELECT customer_id, created + interval '1 day', created + interval '24 hours', created::timestamp
  FROM customers WHERE customer_id BETWEEN 100 AND 110$$, '{"TimeZone": "Europe/Paris"}'),
('time_dst_arithmetic_pinned', false, $$SELECT created + interval '1 day', created - interval '1 month', created::timestamp,
       created AT TIME ZONE 'UTC', created AT TIME ZONE 'Asia/Tokyo' FROM customers WHERE customer_id = 105$$,
 '{"TimeZone": "America/Los_Angeles"}'),
('time_group_month', false, $$SELECT date_trunc('month', ordered_at) AS m, count(*), sum(amount) FROM orders GROUP BY 1$$,
 '{"TimeZone": "Asia/Tokyo"}'),
('time_group_pinned', false, $$SELECT extract(dow FROM ordered_at), count(*) FROM orders WHERE customer_id = 76 GROUP BY 1$$,
 '{"TimeZone": "Asia/Tokyo"}'),
('time_now_pinned', false, $$SELECT order_id, ordered_at < now(), ordered_at < current_timestamp, current_date > '2000-01-01'
  FROM orders WHERE customer_id = 76$$, '{"TimeZone": "Asia/Tokyo"}'),
('time_interval_style', false, $$SELECT product_id, span, span::text, justify_interval(span), span * 2 FROM products$$,
 '{"IntervalStyle": "sql_standard"}'),
('time_interval_style_pinned', false, $$SELECT product_id, span, span::text, age(added::timestamp, date '2019-01-01')
  FROM products WHERE product_id = 13$$, '{"IntervalStyle": "iso_8601"}'),
('time_date_arithmetic_pinned', false, $$SELECT added, added + 30, added - date '2020-01-01', to_char(added, 'Day DD Mon YYYY'),
       make_date(2020, 2, 29) FROM products WHERE product_id = 14$$, '{"DateStyle": "Postgres, DMY"}'),
('time_age_pinned', false, $$SELECT age(ordered_at, timestamptz '2020-01-01 00:00:00+00'), ordered_at - timestamptz '2020-01-01 00:00:00+00'
  FROM orders WHERE customer_id = 38$$, '{"TimeZone": "America/Sao_Paulo"}'),
('time_extract_products', false, $$SELECT extract(isodow FROM added), extract(week FROM added), count(*) FROM products GROUP BY 1, 2$$, NULL),
('float_digits_pinned', false, $$SELECT product_id, weight, weight::text, weight * 3 FROM products WHERE product_id = 3$$,
 '{"extra_float_digits": "0"}'),
('float_digits', false, $$SELECT product_id, weight, weight::text, weight / 7 FROM products$$, '{"extra_float_digits": "-2"}');

-- numeric precision
INSERT INTO queries (label, ordered, q) VALUES
('numeric_division', false, $$SELECT order_id, amount / 3, amount / 7.0, round(amount / 3, 20), amount % 7 FROM orders WHERE customer_id < 100$$),
('numeric_pinned', false, $$SELECT score, score / 3, score * 1e10, round(score, 1), trunc(score, 2), score::numeric(30,15), scale(score)
  FROM customers WHERE customer_id = 3$$),
('numeric_extremes_pinned', false, $$SELECT score, score * score, score / 1e-10 FROM customers WHERE customer_id = 9223372036854775807$$),
('numeric_aggregate_precision', false, $$SELECT sum(score), avg(score), sum(score * score), avg(score / 3) FROM customers$$),
('numeric_avg_group', false, $$SELECT flag, avg(score), round(avg(score), 30), sum(score) / count(score) FROM customers GROUP BY flag$$),
('numeric_literals_pinned', false, $$SELECT amount + 0.001, amount * 1.000000000000000000001, amount - 1e-30 FROM orders WHERE customer_id = 38$$),
('numeric_power_pinned', false, $$SELECT price, price ^ 2, sqrt(abs(price)), ln(abs(price) + 1), exp(least(price, 10)) FROM products WHERE product_id = 20$$),
('numeric_money_like', false, $$SELECT to_char(amount, 'FM999G999G990D00'), amount::numeric(5,0) FROM orders WHERE abs(amount) < 1000 AND customer_id < 50$$);

-- jsonb
INSERT INTO queries (label, ordered, q) VALUES
('jsonb_operators', false, $$SELECT customer_id, data -> 'k', data ->> 's', data -> 'nested' ->> 'v', data #> '{nested,arr}', data #>> '{nested,arr,1}'
  FROM customers WHERE customer_id < 60$$),
('jsonb_contains', false, $$SELECT count(*) FROM customers WHERE data @> '{"k": 1}'$$),
('jsonb_exists', false, $$SELECT count(*), count(*) FILTER (WHERE data ? 's'), count(*) FILTER (WHERE data ?| ARRAY['x', 'k']) FROM customers$$),
('jsonb_pinned', false, $$SELECT data, data -> 'nested', data ? 'k', data @> '{"s": "ü"}', jsonb_typeof(data), data || '{"z": 1}', data - 'k'
  FROM customers WHERE customer_id = 3$$),
('jsonb_group', false, $$SELECT data ->> 'k', data -> 'nested' ->> 'v', count(*) FROM customers GROUP BY 1, 2$$),
('jsonb_path', false, $$SELECT customer_id, jsonb_path_query_array(data, '$.nested.arr[*]') FROM customers WHERE customer_id BETWEEN 10 AND 30$$),
('jsonb_path_pinned', false, $$SELECT jsonb_path_exists(data, '$.k ? (@ > 1)'), data @? '$.nested.v', jsonb_pretty(data) FROM customers WHERE customer_id = 4$$),
('jsonb_elements', false, $$SELECT e, count(*) FROM customers, jsonb_array_elements(data -> 'nested' -> 'arr') e GROUP BY e$$),
('jsonb_null', false, $$SELECT customer_id, data IS NULL, data = 'null', data -> 'k' IS NULL FROM customers WHERE customer_id BETWEEN 20 AND 50$$),
('jsonb_equality_join', false, $$SELECT a.customer_id, b.customer_id FROM customers a JOIN customers b ON a.data = b.data
 WHERE a.customer_id < b.customer_id AND a.customer_id < 30 AND b.customer_id < 60$$);

-- arrays
INSERT INTO queries (label, ordered, q) VALUES
('array_overlap', false, $$SELECT customer_id, tags FROM customers WHERE tags && '{t1}'$$),
('array_contains', false, $$SELECT count(*) FROM customers WHERE tags @> '{t1,t3}' OR tags <@ '{a}'$$),
('array_any', false, $$SELECT customer_id FROM customers WHERE 't2' = ANY (tags)$$),
('array_functions', false, $$SELECT customer_id, array_length(tags, 1), cardinality(tags), tags[1], tags[1:1], array_position(tags, 't1'),
       tags || 'x'::text, array_to_string(tags, ',', '*') FROM customers WHERE customer_id < 50$$),
('array_pinned', false, $$SELECT tags, tags[2], tags || ARRAY['z'], array_remove(tags, NULL), 't1' = ANY (tags), tags = '{}'
  FROM customers WHERE customer_id = 12$$),
('array_group', false, $$SELECT tags, count(*) FROM customers GROUP BY tags$$),
('array_unnest_group', false, $$SELECT t, count(*) FROM customers, unnest(tags) t GROUP BY t$$),
('array_literal_pinned', false, $$SELECT customer_id FROM customers WHERE customer_id = 13 AND tags <> ARRAY['a', NULL]::text[]$$),
('array_constructor', false, $$SELECT customer_id, ARRAY[customer_id, 1, -1], ARRAY[name, city] FROM customers WHERE customer_id < 30$$);

-- text: collations, patterns, unicode, empty strings
INSERT INTO queries (label, ordered, q) VALUES
('text_collate_c_compare', false, $$SELECT name FROM customers WHERE name < 'N' COLLATE "C" AND customer_id < 200$$),
('text_collate_c_pinned', false, $$SELECT name < 'a' COLLATE "C", name COLLATE "C" > 'Z', upper(name), lower(name) FROM customers WHERE customer_id = 4$$),
('text_products_collate_c', true, $$SELECT product_id, name FROM products WHERE name IS NOT NULL ORDER BY name, product_id$$),
('text_products_collate_c_pinned', false, $$SELECT name, name < 'b', name > 'W' FROM products WHERE product_id = 1$$),
('text_like', false, $$SELECT customer_id, name FROM customers WHERE name LIKE 'Zo%' OR name ILIKE 'ÄRGER%' OR name LIKE '%\\%'$$),
('text_like_pinned', false, $$SELECT name LIKE 'Zo%', name ILIKE 'zoë%', name SIMILAR TO 'Z%' FROM customers WHERE customer_id = 2$$),
('text_regexp', false, $$SELECT customer_id, regexp_replace(name, '[0-9]+', '#', 'g'), substring(name FROM 2 FOR 3) FROM customers
 WHERE name ~* '^(zoë|name)' $$),
('text_unicode', false, $$SELECT name, length(name), octet_length(name), upper(name), md5(name) FROM customers WHERE name LIKE '日本語%'$$),
('text_empty', false, $$SELECT customer_id, name = '', city = '', coalesce(name, '-') FROM customers WHERE name = '' OR city = ''$$),
('text_quotes_pinned', false, $$SELECT name, quote_literal(name), quote_ident(name), name || E'\n' || 'x' FROM customers WHERE customer_id = 6$$),
('text_concat_format', false, $$SELECT format('%s/%s/%L', customer_id, name, city), concat_ws('|', name, city, score) FROM customers WHERE customer_id < 40$$),
('text_group_collate_c', false, $$SELECT name COLLATE "C", count(*) FROM customers GROUP BY 1$$),
('text_distinct_lower', false, $$SELECT DISTINCT lower(name) FROM customers$$),
('text_literal_collate_pinned', false, $$SELECT customer_id FROM customers WHERE customer_id = 4 AND name >= '日' COLLATE "C"$$);

-- NULLs and empty results
INSERT INTO queries (label, ordered, q) VALUES
('null_distinct_from', false, $$SELECT count(*) FILTER (WHERE note IS DISTINCT FROM status), count(*) FILTER (WHERE note IS NOT DISTINCT FROM NULL)
  FROM orders$$),
('null_comparisons', false, $$SELECT customer_id, flag = NULL, flag IS UNKNOWN, flag IS NOT TRUE, NOT flag FROM customers WHERE customer_id < 30$$),
('null_pinned', false, $$SELECT note IS NULL, note = NULL, coalesce(note, 'x'), note IS DISTINCT FROM '' FROM orders WHERE customer_id = 38$$),
('null_in_list', false, $$SELECT count(*) FROM orders WHERE status IN ('paid', NULL)$$),
('null_not_in_list', false, $$SELECT count(*) FROM orders WHERE status NOT IN ('paid', NULL)$$),
('null_aggregate_inputs', false, $$SELECT count(NULL::int), sum(NULL::numeric), max(NULL::text) FROM orders$$),
('null_group', false, $$SELECT note, count(*) FROM orders WHERE note IS NULL OR note = '' GROUP BY note$$),
('null_order', true, $$SELECT customer_id, flag FROM customers WHERE customer_id BETWEEN 1 AND 40 ORDER BY flag NULLS FIRST, customer_id$$),
('empty_where_false', false, $$SELECT * FROM orders WHERE false$$),
('empty_join', false, $$SELECT * FROM customers c JOIN orders o ON o.customer_id = c.customer_id WHERE c.customer_id = 5$$),
('empty_aggregate_pinned', false, $$SELECT count(*), sum(amount), array_agg(order_id) FROM orders WHERE customer_id = 123456789$$),
('empty_group_pinned', false, $$SELECT status, count(*) FROM orders WHERE customer_id = 123456789 GROUP BY status$$),
('empty_reference', false, $$SELECT * FROM cities WHERE population < 0$$),
('empty_exists', false, $$SELECT EXISTS (SELECT 1 FROM orders WHERE customer_id = 123456789), EXISTS (SELECT 1 FROM orders)$$);

-- the remaining shapes: expressions the pull plan keeps and the router ships
INSERT INTO queries (label, ordered, q) VALUES
('bytea_uuid_pinned', false, $$SELECT code, encode(code, 'hex'), length(code), uid, uid::text FROM products WHERE product_id = 21$$),
('bytea_group', false, $$SELECT get_byte(code, 0), count(*) FROM products WHERE code IS NOT NULL GROUP BY 1$$),
('row_compare', false, $$SELECT customer_id, order_id FROM orders WHERE (customer_id, order_id) > (2000, 1000)$$),
('row_compare_pinned', false, $$SELECT order_id FROM orders WHERE customer_id = 38 AND (customer_id, order_id) < (38, 100000)$$),
('row_value_output', false, $$SELECT ROW(customer_id, name), (customer_id, flag) FROM customers WHERE customer_id < 20$$),
('whole_row', false, $$SELECT c FROM customers c WHERE customer_id < 20$$),
('whole_row_pinned', false, $$SELECT c, c.* FROM cities c WHERE c.city = 'Paris'$$),
('system_column', false, $$SELECT count(tableoid) FROM customers$$),
('volatile_pinned', false, $$SELECT customer_id, random() < 2 FROM customers WHERE customer_id = 38$$),
('srf_in_target', false, $$SELECT customer_id, generate_series(1, 2) FROM customers WHERE customer_id < 10$$),
('srf_in_target_pinned', false, $$SELECT unnest(tags), jsonb_object_keys(data) FROM customers WHERE customer_id = 3$$),
('is_json_types', false, $$SELECT pg_typeof(score), pg_typeof(created), pg_typeof(tags) FROM customers WHERE customer_id = 3$$),
('in_list_text', false, $$SELECT count(*) FROM customers WHERE city IN ('Berlin', 'Zürich', '')$$),
('reference_lookup', false, $$SELECT * FROM cities WHERE city = 'São Paulo'$$),
('reference_aggregate', false, $$SELECT country, sum(population), count(*) FROM cities GROUP BY country$$),
('reference_order_limit', true, $$SELECT city, population FROM cities ORDER BY population DESC NULLS LAST, city LIMIT 3$$),
('reference_distinct_on', true, $$SELECT DISTINCT ON (country) country, city FROM cities ORDER BY country, population DESC NULLS LAST, city$$),
('reference_window', false, $$SELECT city, rank() OVER (PARTITION BY country ORDER BY population) FROM cities$$),
('reference_exists_distributed', false, $$SELECT city FROM cities ci WHERE EXISTS (SELECT 1 FROM customers c WHERE c.city = ci.city)$$),
('reference_pinned_subquery', false, $$SELECT city, (SELECT count(*) FROM customers c WHERE c.customer_id = 65 AND c.city = ci.city) FROM cities ci$$),
('distinct_count_join_products', false, $$SELECT count(DISTINCT p.category_id), count(DISTINCT o.status) FROM orders o JOIN products p USING (product_id)$$),
('having_without_group', false, $$SELECT count(*) FROM orders HAVING count(*) > 1$$),
('having_without_group_pinned', false, $$SELECT sum(amount) FROM orders WHERE customer_id = 38 HAVING count(*) > 1$$),
('limit_in_subquery_pinned', false, $$SELECT * FROM (SELECT order_id FROM orders WHERE customer_id = 76 ORDER BY order_id LIMIT 2) s$$),
('offset_expression', true, $$SELECT order_id FROM orders WHERE customer_id = 76 ORDER BY order_id LIMIT 1 + 1 OFFSET 1$$),
('group_by_key_join', false, $$SELECT c.customer_id, c.name, count(*) FROM customers c JOIN orders o USING (customer_id)
 GROUP BY c.customer_id HAVING count(*) > 2$$),
('distinct_aggregate_pinned', false, $$SELECT count(DISTINCT status), count(DISTINCT note), sum(DISTINCT amount) FROM orders WHERE customer_id = 38$$),
('key_eq_join_cities_country', false, $$SELECT ci.country, count(*) FROM customers c JOIN cities ci USING (city) WHERE c.customer_id = 65 GROUP BY ci.country$$);

-- shapes of the multi-shard pushdown: partial aggregates and their
-- combination, top-N per shard, rows every shard group has
INSERT INTO queries (label, ordered, q) VALUES
('ms_order_by_aggregate_not_selected', true, $$SELECT status FROM orders GROUP BY status
 ORDER BY sum(amount) DESC NULLS LAST, status NULLS FIRST$$),
('ms_having_not_selected', false, $$SELECT status, count(*) FROM orders GROUP BY status
 HAVING max(amount) > 1990 AND min(amount) < -190$$),
('ms_aggregate_expressions', false, $$SELECT status, sum(amount) / count(*), max(amount) - min(amount), count(*) * 2 + 1,
       avg(amount)::int, coalesce(max(note), '-') FROM orders GROUP BY status$$),
('ms_avg_types', false, $$SELECT avg(order_id), avg(product_id), avg(amount), avg(customer_id), avg(product_id::int2) FROM orders$$),
('ms_avg_interval', false, $$SELECT avg(span), sum(span), min(span), max(span), count(span) FROM products$$),
('ms_avg_interval_group', false, $$SELECT category_id, avg(span), sum(span) FROM products GROUP BY category_id$$),
('ms_sum_int', false, $$SELECT sum(product_id), sum(product_id::int2), sum(order_id::int), sum(customer_id) FROM orders$$),
('ms_sum_numeric_scale', false, $$SELECT sum(score), sum(score::numeric(40,10)), max(score), avg(score::numeric(40,10)) FROM customers$$),
('ms_count_star', false, $$SELECT count(*) FROM orders$$),
('ms_count_some_shards', false, $$SELECT count(*), sum(amount), max(order_id) FROM orders WHERE customer_id IN (1, 3, 38)$$),
('ms_group_key_order_limit', true, $$SELECT customer_id, count(*), sum(amount) FROM orders GROUP BY customer_id
 ORDER BY count(*) DESC, customer_id LIMIT 10$$),
('ms_group_key_offset_limit', true, $$SELECT customer_id, max(amount) FROM orders GROUP BY customer_id
 ORDER BY customer_id DESC OFFSET 5 LIMIT 5$$),
('ms_group_key_and_other', false, $$SELECT customer_id, status, count(*) FROM orders WHERE customer_id < 300 GROUP BY customer_id, status$$),
('ms_group_expression_not_selected', false, $$SELECT count(*), sum(amount) FROM orders GROUP BY order_id % 3$$),
('ms_group_constant', false, $$SELECT 1 AS one, count(*) FROM orders GROUP BY 1$$),
('ms_distinct_order_limit', true, $$SELECT DISTINCT status FROM orders ORDER BY status NULLS FIRST LIMIT 3 OFFSET 1$$),
('ms_distinct_on_limit', true, $$SELECT DISTINCT ON (customer_id) customer_id, order_id FROM orders
 ORDER BY customer_id DESC, order_id LIMIT 4 OFFSET 2$$),
('ms_window_by_key_limit', true, $$SELECT customer_id, order_id, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC NULLS LAST, order_id)
  FROM orders ORDER BY customer_id, order_id LIMIT 12$$),
('ms_window_over_group_key', false, $$SELECT customer_id, sum(amount), rank() OVER (ORDER BY sum(amount) DESC NULLS LAST, customer_id)
  FROM orders GROUP BY customer_id$$),
('ms_case_over_aggregate', false, $$SELECT status, CASE WHEN count(*) > 950 THEN 'many' ELSE 'few' END FROM orders GROUP BY status$$),
('ms_min_max_collations', false, $$SELECT min(name), max(name), min(name COLLATE "C"), max(name COLLATE "C") FROM customers$$),
('ms_group_collate_c', false, $$SELECT city COLLATE "C", min(name COLLATE "C"), max(name) FROM customers GROUP BY 1$$),
('ms_bool_bit_group', false, $$SELECT flag, every(score > 0), bool_or(score > 900), bit_and(customer_id), bit_xor(customer_id) FROM customers GROUP BY flag$$),
('ms_having_count_key', false, $$SELECT customer_id FROM orders GROUP BY customer_id HAVING count(*) > 2$$),
('ms_having_subquery', false, $$SELECT status, sum(amount) FROM orders GROUP BY status HAVING sum(amount) > (SELECT avg(amount) * 900 FROM orders)$$),
('ms_limit_join', true, $$SELECT o.order_id, c.name FROM orders o JOIN customers c USING (customer_id)
 ORDER BY o.amount DESC NULLS LAST, o.order_id LIMIT 5$$),
('ms_distinct_float', false, $$SELECT DISTINCT weight FROM products$$),
('ms_order_float', true, $$SELECT product_id, weight FROM products ORDER BY weight DESC NULLS FIRST, product_id LIMIT 10$$),
('ms_reference_preserved_left', false, $$SELECT ci.city, c.customer_id FROM cities ci
  LEFT JOIN customers c ON c.city = ci.city AND c.customer_id < 20$$),
('ms_reference_preserved_count', false, $$SELECT ci.city, count(c.customer_id) FROM cities ci LEFT JOIN customers c USING (city) GROUP BY ci.city$$),
('ms_reference_preserved_anti', false, $$SELECT ci.city FROM cities ci LEFT JOIN customers c USING (city) WHERE c.customer_id IS NULL$$),
('ms_values_preserved_right', false, $$SELECT v.x, c.name FROM customers c RIGHT JOIN (VALUES (1::bigint), (2), (3), (-22)) v(x) ON c.customer_id = v.x$$),
('ms_reference_full_join', false, $$SELECT ci.city, c.customer_id FROM cities ci
  FULL JOIN (SELECT * FROM customers WHERE customer_id < 30) c USING (city)$$),
('ms_function_preserved_aggregate', false, $$SELECT g, count(o.order_id) FROM generate_series(1, 10) g
  LEFT JOIN orders o ON o.customer_id = g GROUP BY g$$),
('ms_reference_nullable', false, $$SELECT c.customer_id, ci.country FROM customers c LEFT JOIN cities ci USING (city) WHERE c.customer_id < 50$$),
('ms_record_output', false, $$SELECT ROW(order_id, status) FROM orders WHERE customer_id < 0$$),
('ms_record_output_pinned', false, $$SELECT (order_id, status) FROM orders WHERE customer_id = 38$$),
('ms_record_array_pinned', false, $$SELECT ARRAY[ROW(order_id, note)] FROM orders WHERE customer_id = 38$$);

-- constants are sent in formats that do not depend on the settings
INSERT INTO queries (label, ordered, q, settings) VALUES
('const_float', false, $$SELECT product_id FROM products WHERE weight = 0.30000000000000004 OR weight > 11.900000000000002$$,
 '{"extra_float_digits": "0"}'),
('const_float_pinned', false, $$SELECT product_id, weight FROM products WHERE product_id = 3 AND weight = 0.30000000000000004$$,
 '{"extra_float_digits": "-3"}'),
('const_interval_pinned', false, $$SELECT product_id FROM products WHERE product_id = 4 AND span > interval '-1 day +2 hours'$$,
 '{"IntervalStyle": "sql_standard"}'),
('const_interval', false, $$SELECT product_id FROM products WHERE span < interval '-1 month +3 days -00:00:01'$$,
 '{"IntervalStyle": "sql_standard"}'),
('const_timestamptz_pinned', false, $$SELECT order_id FROM orders WHERE customer_id = 38 AND ordered_at < '2020-06-30 23:00:00+05:30'$$,
 '{"DateStyle": "SQL, DMY", "TimeZone": "Asia/Kolkata"}'),
('const_timestamptz', false, $$SELECT count(*) FROM orders WHERE ordered_at BETWEEN '01/03/2020' AND '31/03/2020 12:00'$$,
 '{"DateStyle": "SQL, DMY", "TimeZone": "Asia/Kolkata"}'),
('const_date_pinned', false, $$SELECT product_id FROM products WHERE product_id = 5 AND added > '02.01.2020'$$,
 '{"DateStyle": "German, DMY"}'),
('const_timestamp_pinned', false, $$SELECT order_id FROM orders WHERE customer_id = 76 AND ordered_at::timestamp > '05/06/2020 10:00'$$,
 '{"DateStyle": "Postgres, DMY", "TimeZone": "UTC"}');

-- enums, domains, json
INSERT INTO queries (label, ordered, q) VALUES
('enum_domain_json', false, $$SELECT product_id, kind, qty, meta::text FROM products$$),
('enum_order', true, $$SELECT product_id, kind FROM products WHERE kind IS NOT NULL ORDER BY kind DESC, product_id LIMIT 20$$),
('enum_compare', false, $$SELECT product_id FROM products WHERE kind > 'toy' AND kind <> 'other'$$),
('enum_compare_pinned', false, $$SELECT product_id, kind, kind < 'food', kind::text FROM products WHERE product_id = 7 AND kind >= 'tool'$$),
('enum_group', false, $$SELECT kind, count(*), min(qty), max(qty), sum(qty) FROM products GROUP BY kind$$),
('enum_min_max', false, $$SELECT min(kind), max(kind), array_agg(DISTINCT kind ORDER BY kind) FROM products$$),
('enum_join', false, $$SELECT p.kind, count(*) FROM orders o JOIN products p USING (product_id) GROUP BY p.kind$$),
('domain_arithmetic', false, $$SELECT product_id, qty * 2, qty::int + 1, qty::text FROM products WHERE qty > 40$$),
('domain_cast_pinned', false, $$SELECT qty, qty + 1, 5::quantity, (qty + 1)::quantity FROM products WHERE product_id = 8$$),
('domain_avg', false, $$SELECT avg(qty), sum(qty), count(DISTINCT qty) FROM products$$),
('json_operators', false, $$SELECT product_id, meta -> 'a', meta ->> 'b', meta -> 'c' -> 1, json_typeof(meta) FROM products$$),
('json_pinned', false, $$SELECT meta -> 'b', meta #>> '{c,0}', json_array_length(meta -> 'c'), meta::jsonb FROM products WHERE product_id = 12$$),
('json_elements', false, $$SELECT product_id, e::text FROM products, json_array_elements(meta) e WHERE json_typeof(meta) = 'array'$$);

-- errors of the nodes come back as they are; literals and names quoted
INSERT INTO queries (label, ordered, q) VALUES
('error_division_by_zero_pinned', false, $$SELECT 1 / (customer_id - 38) FROM customers WHERE customer_id = 38$$),
('error_division_by_zero', false, $$SELECT count(*) FROM customers WHERE 1 / (customer_id % 1000 - 38) > 0$$),
('error_cast_pinned', false, $$SELECT name::int FROM customers WHERE customer_id = 42$$),
('error_negative_offset', false, $$SELECT order_id FROM orders ORDER BY order_id OFFSET -1$$),
('limit_subquery', true, $$SELECT order_id FROM orders ORDER BY order_id LIMIT (SELECT 3)$$),
('limit_subquery_pinned', true, $$SELECT order_id FROM orders WHERE customer_id = 76 ORDER BY order_id LIMIT (SELECT count(*) FROM cities) - 8$$),
('literal_quote', false, $$SELECT customer_id FROM customers WHERE name = 'O''Brien' AND customer_id < 100$$),
('literal_backslash', false, $$SELECT customer_id, name FROM customers WHERE name = E'back\\slash "q"'$$),
('literal_backslash_pinned', false, $$SELECT customer_id, name = E'back\\slash "q"', name || '\' FROM customers WHERE customer_id = 6$$),
('literal_unicode_pinned', false, $$SELECT customer_id FROM customers WHERE customer_id = 4 AND name = U&'\65E5\672C\8A9E4'$$),
('quoted_column', false, $$SELECT city, "Region Name" FROM cities WHERE "Region Name" IS NOT NULL$$),
('quoted_column_join', false, $$SELECT ci."Region Name", count(*) FROM customers c JOIN cities ci USING (city) GROUP BY 1$$),
('quoted_literal_reference', false, $$SELECT city FROM cities WHERE "Region Name" = E'it''s "under" \\ water'$$),
('special_floats', false, $$SELECT product_id, weight, weight = 'NaN', weight > 1e308, price FROM products WHERE product_id <= 0$$),
('special_floats_order', true, $$SELECT product_id, weight FROM products ORDER BY weight NULLS FIRST, product_id LIMIT 8$$),
('special_numeric_nan', false, $$SELECT count(*) FILTER (WHERE price = 'NaN'), max(price), min(price) FROM products$$),
('special_nan_pinned', false, $$SELECT price, price = 'NaN', weight FROM products WHERE product_id = 0$$),
('folded_settings', false, $$SELECT current_setting('TimeZone'), customer_id FROM customers WHERE customer_id = 38$$),
('folded_now_pinned', false, $$SELECT order_id FROM orders WHERE customer_id = 76 AND ordered_at > now() - interval '100 years'$$),
('folded_current_user', false, $$SELECT current_user = session_user, count(*) FROM orders WHERE customer_id IN (38, 76)$$);

-- row locks on one distribution key: router plans only
INSERT INTO queries (label, ordered, q, router_only) VALUES
('for_update', false, $$SELECT * FROM customers WHERE customer_id = 38 FOR UPDATE$$, true),
('for_share', false, $$SELECT customer_id, name FROM customers WHERE customer_id = 38 FOR SHARE$$, true),
('for_no_key_update_join', false, $$SELECT o.order_id, c.name FROM orders o JOIN customers c USING (customer_id)
 WHERE o.customer_id = 76 FOR NO KEY UPDATE OF o$$, true),
('for_update_skip_locked', false, $$SELECT order_id FROM orders WHERE customer_id = 76 FOR UPDATE SKIP LOCKED$$, true),
('for_key_share_nowait', false, $$SELECT order_id FROM orders WHERE customer_id = 76 AND amount > 0 FOR KEY SHARE NOWAIT$$, true),
('for_update_order_limit', true, $$SELECT order_id FROM orders WHERE customer_id = 76 ORDER BY order_id LIMIT 2 FOR UPDATE$$, true);

-- every query has rows to compare, but those meant to be empty (empty_*)
-- or to fail (error_*)
SELECT label, rows FROM (SELECT id, label, local_row_count(q, settings) AS rows FROM queries) s
 WHERE (rows = 0 AND label NOT LIKE 'empty%') OR (rows < 0) <> (label LIKE 'error%')
 ORDER BY id;
SELECT count(*) AS queries FROM queries;

--
-- pushdown on: router plans for what is pinned to one shard group, the
-- pull plan for the rest
--
SELECT id, label, check_query(q, ordered, settings) AS result FROM queries ORDER BY id;

--
-- pushdown off: everything pulled
--
SET shardexec.enable_pushdown = off;
SELECT id, label, check_query(q, ordered, settings) AS result FROM queries WHERE NOT router_only ORDER BY id;
-- row locks need the router: the pull plan refuses them, with an error
SELECT label, check_query(q, ordered, settings) AS result FROM queries WHERE router_only ORDER BY id;
RESET shardexec.enable_pushdown;

--
-- prepared statements: each is prepared twice, as <name>_d with
-- search_path = diff_dist and as <name>_l with search_path = diff_local
-- (a prepared statement is analyzed again when the search_path changes,
-- which would hide its generic plan), and each execution of one is
-- compared with the same execution of the other
--
CREATE FUNCTION prepare_both(name text, argtypes text, q text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    saved jsonb := diff_util.apply_settings(NULL);
BEGIN
    PERFORM set_config('search_path', 'diff_dist', false);
    EXECUTE format('PREPARE %I(%s) AS %s', name || '_d', argtypes, q);
    PERFORM set_config('search_path', 'diff_local', false);
    EXECUTE format('PREPARE %I(%s) AS %s', name || '_l', argtypes, q);
    PERFORM diff_util.restore_settings(saved);
END
$fn$;

CREATE FUNCTION check_prepared(name text, args text, ordered bool) RETURNS text
LANGUAGE sql AS $fn$
    SELECT diff_util.check_pair(format('EXECUTE %I(%s)', name || '_d', args),
                                format('EXECUTE %I(%s)', name || '_l', args),
                                ordered, NULL)
$fn$;

CREATE TABLE prepared (
    name text PRIMARY KEY,
    argtypes text NOT NULL,
    ordered bool NOT NULL,
    q text NOT NULL,
    router_only bool NOT NULL DEFAULT false
);
CREATE TABLE prepared_args (
    id serial PRIMARY KEY,
    name text NOT NULL REFERENCES prepared,
    args text NOT NULL
);

INSERT INTO prepared (name, argtypes, ordered, q) VALUES
('p_key', 'bigint', false, $$SELECT * FROM customers WHERE customer_id = $1$$),
('p_key_int4', 'int', false, $$SELECT customer_id, name FROM customers WHERE customer_id = $1$$),
('p_key_text', 'text', false, $$SELECT customer_id, name FROM customers WHERE customer_id = $1::bigint$$),
('p_key_orders', 'bigint', true, $$SELECT order_id, amount, status FROM orders WHERE customer_id = $1 ORDER BY order_id$$),
('p_join', 'bigint', false, $$SELECT c.name, o.order_id, o.amount FROM customers c
  JOIN orders o ON o.customer_id = c.customer_id WHERE c.customer_id = $1$$),
('p_join_reference', 'bigint', false, $$SELECT c.customer_id, ci.country FROM customers c
  LEFT JOIN cities ci USING (city) WHERE c.customer_id = $1$$),
('p_aggregate', 'bigint', false, $$SELECT count(*), sum(amount), avg(amount), max(ordered_at) FROM orders WHERE customer_id = $1$$),
('p_exists', 'bigint', false, $$SELECT c.customer_id FROM customers c WHERE c.customer_id = $1
   AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id)$$),
('p_two_params', 'bigint, numeric', false, $$SELECT order_id FROM orders WHERE customer_id = $1 AND amount > $2$$),
('p_any', 'bigint[]', false, $$SELECT customer_id, name FROM customers WHERE customer_id = ANY ($1)$$),
('p_in_params', 'bigint, bigint', false, $$SELECT customer_id FROM customers WHERE customer_id IN ($1, $2)$$),
('p_key_expression', 'bigint', false, $$SELECT customer_id FROM customers WHERE customer_id = $1 + 1$$),
('p_products', 'int', false, $$SELECT * FROM products WHERE product_id = $1$$),
('p_not_colocated', 'bigint, int', false, $$SELECT o.order_id, p.name FROM orders o JOIN products p USING (product_id)
 WHERE o.customer_id = $1 AND p.product_id = $2$$),
('p_reference', 'text', false, $$SELECT * FROM cities WHERE city = $1$$),
('p_group', 'numeric', false, $$SELECT status, count(*), sum(amount), avg(amount) FROM orders WHERE amount > $1 GROUP BY status$$),
('p_group_key', 'text', false, $$SELECT customer_id, count(*) FROM orders WHERE status = $1 GROUP BY customer_id$$),
('p_limit', 'int, int', true, $$SELECT customer_id, order_id FROM orders ORDER BY order_id DESC LIMIT $1 OFFSET $2$$),
('p_time', 'timestamptz, bigint', false, $$SELECT order_id, ordered_at FROM orders WHERE ordered_at > $1 AND customer_id = $2$$),
('p_time_all', 'timestamptz', false, $$SELECT count(*), min(ordered_at) FROM orders WHERE ordered_at > $1$$),
('p_text', 'text', false, $$SELECT count(*), array_agg(customer_id ORDER BY customer_id) FROM customers WHERE city = $1$$),
('p_lateral', 'bigint', false, $$SELECT c.customer_id, x.n FROM customers c,
  LATERAL (SELECT count(*) AS n FROM orders o WHERE o.customer_id = c.customer_id) x WHERE c.customer_id = $1$$),
('p_local', 'bigint', false, $$SELECT o.order_id, r.factor FROM orders o JOIN local_rates r USING (status) WHERE o.customer_id = $1$$),
('p_function', 'bigint', false, $$SELECT * FROM diff_util.orders_of($1)$$);
INSERT INTO prepared (name, argtypes, ordered, q, router_only) VALUES
('p_for_update', 'bigint', false, $$SELECT customer_id, name FROM customers WHERE customer_id = $1 FOR UPDATE$$, true);

-- a PL/pgSQL function's queries have parameters too
CREATE FUNCTION orders_of(k bigint) RETURNS TABLE (order_id bigint, amount numeric)
LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY SELECT o.order_id, o.amount FROM orders o WHERE o.customer_id = k;
END
$fn$;

-- several values of each, on several shards, and NULL
INSERT INTO prepared_args (name, args)
SELECT name, a FROM prepared,
       unnest(ARRAY['42', '-22', '0', '9223372036854775807', '-9223372036854775808', '38', '76',
                    '123456789', 'NULL']) a
 WHERE argtypes = 'bigint';
INSERT INTO prepared_args (name, args) VALUES
('p_key_int4', '42'), ('p_key_int4', '-22'), ('p_key_int4', '76'), ('p_key_int4', '2147483647'), ('p_key_int4', 'NULL'),
('p_key_int4', '1'), ('p_key_int4', '2'),
('p_key_text', $$'42'$$), ('p_key_text', $$'-22'$$), ('p_key_text', $$'76'$$), ('p_key_text', $$'1'$$),
('p_key_text', $$'2'$$), ('p_key_text', 'NULL'),
('p_two_params', '38, 0'), ('p_two_params', '76, -100.5'), ('p_two_params', '38, NULL'), ('p_two_params', '1, 0'),
('p_two_params', '2, 0'), ('p_two_params', '3, 0'),
('p_any', $$'{1,2,3}'$$), ('p_any', $$'{}'$$), ('p_any', $$'{76}'$$), ('p_any', 'NULL'), ('p_any', $$'{38,NULL}'$$),
('p_any', $$'{-22}'$$),
('p_in_params', '1, 2'), ('p_in_params', '38, 38'), ('p_in_params', '-22, NULL'), ('p_in_params', '76, 5'),
('p_in_params', '6, 7'), ('p_in_params', '8, 9'),
('p_products', '1'), ('p_products', '17'), ('p_products', '-3'), ('p_products', '120'), ('p_products', '121'),
('p_products', 'NULL'), ('p_products', '50'),
('p_not_colocated', '38, 17'), ('p_not_colocated', '76, 50'), ('p_not_colocated', '1, 1'), ('p_not_colocated', '2, 2'),
('p_not_colocated', '3, 3'), ('p_not_colocated', '4, 4'),
('p_reference', $$'Paris'$$), ('p_reference', $$'São Paulo'$$), ('p_reference', $$''$$), ('p_reference', 'NULL'),
('p_reference', $$'Berlin'$$), ('p_reference', $$'Lyon'$$),
('p_group', '0'), ('p_group', '-1000'), ('p_group', '1999.99'), ('p_group', 'NULL'), ('p_group', '1e9'), ('p_group', '500'),
('p_group_key', $$'paid'$$), ('p_group_key', $$''$$), ('p_group_key', $$'rückerstattet'$$), ('p_group_key', 'NULL'),
('p_group_key', $$'new'$$), ('p_group_key', $$'x'$$),
('p_limit', '5, 0'), ('p_limit', '5, 10'), ('p_limit', '0, 0'), ('p_limit', 'NULL, 5640'), ('p_limit', '3, NULL'),
('p_limit', '10, 6000'),
('p_time', $$'2020-06-01 00:00:00+02', 38$$), ('p_time', $$'2020-01-01', 76$$), ('p_time', $$'infinity', 76$$),
('p_time', $$'-infinity', 9223372036854775807$$), ('p_time', $$NULL, 38$$), ('p_time', $$'2020-10-01 12:00', 1$$),
('p_time_all', $$'2020-06-01 00:00:00+02'$$), ('p_time_all', $$'-infinity'$$), ('p_time_all', $$'2021-01-01'$$),
('p_time_all', $$'infinity'$$), ('p_time_all', 'NULL'), ('p_time_all', $$'2020-10-01 12:00:00.000123'$$),
('p_text', $$'Berlin'$$), ('p_text', $$'Zürich'$$), ('p_text', $$''$$), ('p_text', 'NULL'), ('p_text', $$'nowhere'$$),
('p_text', $$'Kraków'$$);


--
-- force_generic_plan: one plan per statement, the shard chosen at
-- execution from the parameters
--
SET plan_cache_mode = force_generic_plan;
SELECT count(prepare_both(name, argtypes, q)) AS prepared FROM prepared;
SELECT a.id, a.name, a.args, check_prepared(a.name, a.args, p.ordered) AS result
  FROM prepared_args a JOIN prepared p USING (name) ORDER BY a.id;
-- a generic plan each, no custom plan
SELECT name, generic_plans, custom_plans FROM pg_prepared_statements
 WHERE name LIKE 'p\_%\_d' ORDER BY name;
DEALLOCATE ALL;

--
-- force_custom_plan: a plan per execution, with the values known
--
SET plan_cache_mode = force_custom_plan;
SELECT count(prepare_both(name, argtypes, q)) AS prepared FROM prepared;
SELECT a.id, a.name, a.args, check_prepared(a.name, a.args, p.ordered) AS result
  FROM prepared_args a JOIN prepared p USING (name) ORDER BY a.id;
SELECT name, generic_plans, custom_plans FROM pg_prepared_statements
 WHERE name LIKE 'p\_%\_d' ORDER BY name;
DEALLOCATE ALL;

--
-- the default (auto: custom plans first, then generic), with pushdown
-- off: everything pulled
--
RESET plan_cache_mode;
SET shardexec.enable_pushdown = off;
SELECT count(prepare_both(name, argtypes, q)) AS prepared FROM prepared WHERE NOT router_only;
SELECT a.id, a.name, a.args, check_prepared(a.name, a.args, p.ordered) AS result
  FROM prepared_args a JOIN prepared p USING (name) WHERE NOT p.router_only ORDER BY a.id;
DEALLOCATE ALL;
RESET shardexec.enable_pushdown;

-- the same, directly in the test file, outside PL/pgSQL: the rows of each
-- execution kept in a temporary table, then compared
SET plan_cache_mode = force_generic_plan;
SET search_path TO diff_dist;
PREPARE direct_d(bigint) AS SELECT c.name, count(o.*), sum(o.amount)
  FROM customers c LEFT JOIN orders o USING (customer_id) WHERE c.customer_id = $1 GROUP BY c.name;
CREATE TEMP TABLE direct_d1 AS EXECUTE direct_d(76);
CREATE TEMP TABLE direct_d2 AS EXECUTE direct_d(-22);
CREATE TEMP TABLE direct_d3 AS EXECUTE direct_d(5);
CREATE TEMP TABLE direct_d4 AS EXECUTE direct_d(NULL);
SET search_path TO diff_local;
PREPARE direct_l(bigint) AS SELECT c.name, count(o.*), sum(o.amount)
  FROM customers c LEFT JOIN orders o USING (customer_id) WHERE c.customer_id = $1 GROUP BY c.name;
CREATE TEMP TABLE direct_l1 AS EXECUTE direct_l(76);
CREATE TEMP TABLE direct_l2 AS EXECUTE direct_l(-22);
CREATE TEMP TABLE direct_l3 AS EXECUTE direct_l(5);
CREATE TEMP TABLE direct_l4 AS EXECUTE direct_l(NULL);
SET search_path TO diff_util;
SELECT name, generic_plans, custom_plans FROM pg_prepared_statements ORDER BY name;
SELECT n, (SELECT count(*) FROM unnest(run_query(format('SELECT * FROM pg_temp.direct_l%s', n), 'diff_local'))) AS rows,
       check_pair(format('SELECT * FROM pg_temp.direct_d%s', n), format('SELECT * FROM pg_temp.direct_l%s', n),
                  false, NULL) AS result
  FROM generate_series(1, 4) n;
DEALLOCATE ALL;

-- the nodes compute in the session's time zone as it changes between
-- statements, inside a transaction, and back after a rollback (a node
-- session's SET is undone with its remote transaction)
SET search_path TO diff_util;
SET TimeZone = 'Asia/Tokyo';
SELECT check_query($$SELECT date_trunc('day', ordered_at), count(*) FROM orders GROUP BY 1$$) AS tokyo;
BEGIN;
SELECT check_query($$SELECT ordered_at::date, count(*) FROM orders GROUP BY 1$$) AS tokyo_in_transaction;
SET LOCAL TimeZone = 'America/New_York';
SELECT check_query($$SELECT ordered_at::date, count(*) FROM orders GROUP BY 1$$) AS new_york_in_transaction;
ROLLBACK;
SELECT check_query($$SELECT ordered_at::date, count(*) FROM orders GROUP BY 1$$) AS tokyo_after_rollback;
BEGIN;
SELECT check_query($$SELECT extract(hour FROM ordered_at), count(*) FROM orders GROUP BY 1$$) AS tokyo_before_savepoint;
SAVEPOINT s;
SET LOCAL TimeZone = 'Pacific/Chatham';
SELECT check_query($$SELECT extract(hour FROM ordered_at), count(*) FROM orders GROUP BY 1$$) AS chatham_in_savepoint;
ROLLBACK TO SAVEPOINT s;
SELECT check_query($$SELECT extract(hour FROM ordered_at), count(*) FROM orders GROUP BY 1$$) AS tokyo_after_rollback_to_savepoint;
COMMIT;
RESET TimeZone;
SELECT check_query($$SELECT ordered_at::date, count(*) FROM orders WHERE customer_id = 76 GROUP BY 1$$) AS default_zone;
RESET plan_cache_mode;
SET search_path TO diff_util;

--
-- EXPLAIN pins the pushdown of the same tables: the plan kind, the
-- execution units and the SQL sent.  Shard ids in shard names are masked.
--
CREATE FUNCTION explain(q text, settings jsonb DEFAULT NULL) RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    saved jsonb := diff_util.apply_settings(settings);
    line text;
BEGIN
    PERFORM set_config('search_path', 'diff_dist', false);
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
        RETURN NEXT regexp_replace(line, '_[0-9]{6,}', '_xxx', 'g');
    END LOOP;
    PERFORM diff_util.restore_settings(saved);
END
$fn$;

-- a distribution-key lookup: one unit on one node, the whole query sent
SELECT explain($$SELECT * FROM customers WHERE customer_id = 42$$);
SELECT explain($$SELECT order_id, amount FROM orders WHERE customer_id = 76 AND amount > 0
                 ORDER BY amount DESC, order_id LIMIT 2$$);
-- a join of the colocated tables on the key, with the key pinned: one unit
SELECT explain($$SELECT c.name, count(*), sum(o.amount) FROM customers c
                   JOIN orders o ON o.customer_id = c.customer_id
                  WHERE c.customer_id = 76 GROUP BY c.name$$);
-- the key pinned through a correlated subquery, and a reference table
SELECT explain($$SELECT c.customer_id, ci.country FROM customers c JOIN cities ci USING (city)
                  WHERE c.customer_id = 65
                    AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id)$$);
-- reference tables only: one unit
SELECT explain($$SELECT country, count(*) FROM cities GROUP BY country$$);
-- FOR UPDATE of one key
SELECT explain($$SELECT * FROM customers WHERE customer_id = 38 FOR UPDATE$$);
-- constants are sent in ISO format, whatever the session's DateStyle
SELECT explain($$SELECT order_id FROM orders WHERE customer_id = 38 AND ordered_at < '31/12/2020 10:00'$$,
               '{"DateStyle": "SQL, DMY", "TimeZone": "Asia/Kolkata"}');
-- what depends on TimeZone only is computed on the nodes, which compute
-- in the session's time zone: a router query, and a GROUP BY over every
-- shard (partial aggregates per day)
SELECT explain($$SELECT ordered_at::date FROM orders WHERE customer_id = 76$$);
SELECT explain($$SELECT date_trunc('day', ordered_at), count(*) FROM orders GROUP BY 1$$,
               '{"TimeZone": "Asia/Tokyo"}');
-- what depends on DateStyle (or the locale) is not: a date's text
SELECT explain($$SELECT ordered_at::date::text FROM orders WHERE customer_id = 76$$);
-- count(*) over every shard: one row per shard back to the coordinator
SELECT explain($$SELECT count(*) FROM orders$$);
-- rows of a reference table preserved by an outer join with a
-- distributed table are not repeated per shard: pulled
SELECT explain($$SELECT ci.city, count(c.customer_id) FROM cities ci
                   LEFT JOIN customers c USING (city) GROUP BY ci.city$$);
-- a prepared statement's generic plan chooses the shard at execution
SET plan_cache_mode = force_generic_plan;
SELECT prepare_both('p_explain', 'bigint', $$SELECT * FROM orders WHERE customer_id = $1$$);
SELECT explain($$EXECUTE p_explain_d(76)$$);
SELECT explain($$EXECUTE p_explain_d(38)$$);
-- and prunes with the values of its parameters: = ANY($1), IN ($1, $2)
SELECT prepare_both('p_explain_any', 'bigint[]', $$SELECT count(*) FROM orders WHERE customer_id = ANY ($1)$$);
SELECT explain($$EXECUTE p_explain_any_d('{76, 38}')$$);
SELECT prepare_both('p_explain_in', 'bigint, bigint', $$SELECT customer_id FROM customers WHERE customer_id IN ($1, $2)$$);
SELECT explain($$EXECUTE p_explain_in_d(76, 76)$$);
DEALLOCATE ALL;
RESET plan_cache_mode;
--
-- clean up: the schemas here, then on the nodes (empty by then)
--
RESET search_path;
SET client_min_messages TO warning;
DROP SCHEMA diff_dist CASCADE;
DROP SCHEMA diff_local CASCADE;
DROP SCHEMA diff_util CASCADE;
RESET client_min_messages;
SELECT count(*) AS tables_left FROM shardexec.tables t JOIN pg_class c ON c.oid = t.table_name
 WHERE c.relnamespace::regnamespace::text LIKE 'diff_%';
\c node1
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'diff_dist';
DROP TYPE diff_dist.kind;
DROP DOMAIN diff_dist.quantity;
DROP SCHEMA diff_dist;
\c node2
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'diff_dist';
DROP TYPE diff_dist.kind;
DROP DOMAIN diff_dist.quantity;
DROP SCHEMA diff_dist;
\c node3
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'diff_dist';
DROP TYPE diff_dist.kind;
DROP DOMAIN diff_dist.quantity;
DROP SCHEMA diff_dist;
\c :coordinator
