-- scripts/demo.sql: the shardexec walk-through that scripts/demo.sh runs on
-- the coordinator of its local cluster.
--
-- It registers the four nodes (once), builds a small shop schema `demo`
-- (dropped and recreated on every run, so the script is idempotent),
-- distributes it, and shows the metadata and the three kinds of queries:
--   demo.customers  hash-distributed on customer_id, 32 shards; loaded
--                   BEFORE distribution, so create_distributed_table moves
--                   its existing rows to the shards
--   demo.orders     distributed on customer_id, colocated with customers
--                   (shard i of both on the same node); loaded after
--   demo.cities     reference table: a full copy on every node
--
-- psql variables (set by demo.sh): node1_port .. node4_port, the nodes'
-- ports on 127.0.0.1.  Run by hand:
--   psql -X -v ON_ERROR_STOP=1 -v node1_port=... (x4) -h 127.0.0.1 \
--        -p <coordinator port> -U postgres postgres -f scripts/demo.sql

\set ON_ERROR_STOP on
\if :{?node4_port}
\else
\echo 'scripts/demo.sql needs -v node1_port=... through node4_port=...; run: bash scripts/demo.sh'
\quit
\endif
\set QUIET on
\pset pager off
\set QUIET off

\echo
\echo '=== 1. The extension and its nodes ================================='
\echo 'CREATE EXTENSION shardexec makes this server the coordinator. Each node'
\echo 'is an ordinary PostgreSQL server, registered once with add_node().'
CREATE EXTENSION IF NOT EXISTS shardexec;

SELECT n.node_name,
       shardexec.add_node(n.node_name, '127.0.0.1', n.port, 'postgres') AS node_id
  FROM (VALUES ('node1', :node1_port),
               ('node2', :node2_port),
               ('node3', :node3_port),
               ('node4', :node4_port)) AS n(node_name, port)
 WHERE NOT EXISTS (SELECT 1 FROM shardexec.nodes s WHERE s.node_name = n.node_name)
 ORDER BY n.node_name;

SELECT node_id, node_name, host, port, dbname FROM shardexec.nodes ORDER BY node_id;

\echo
\echo '=== 2. A sample schema, still local =================================='
\echo 'Dropping and recreating schema demo (the drop also removes its shards).'
DROP SCHEMA IF EXISTS demo CASCADE;
CREATE SCHEMA demo;

CREATE TABLE demo.cities (
    city    text PRIMARY KEY,
    country text NOT NULL
);

CREATE TABLE demo.customers (
    customer_id bigint PRIMARY KEY,
    name        text,
    city        text
);

CREATE TABLE demo.orders (
    order_id    bigint,
    customer_id bigint,
    amount      numeric(12,2),
    ordered_at  timestamptz DEFAULT now(),
    PRIMARY KEY (customer_id, order_id)
);

INSERT INTO demo.cities (city, country) VALUES
    ('Amsterdam', 'Netherlands'), ('Berlin', 'Germany'), ('Lisbon', 'Portugal'),
    ('Madrid', 'Spain'), ('Oslo', 'Norway'), ('Paris', 'France'),
    ('Prague', 'Czechia'), ('Rome', 'Italy'), ('Vienna', 'Austria'),
    ('Warsaw', 'Poland');

\echo '10,000 customers, loaded while demo.customers is an ordinary local table:'
INSERT INTO demo.customers (customer_id, name, city)
SELECT g, format('customer %s', g), c.cities[1 + g % array_length(c.cities, 1)]
  FROM generate_series(1, 10000) AS g,
       (SELECT array_agg(city ORDER BY city) AS cities FROM demo.cities) AS c;

SELECT count(*) AS local_customers FROM demo.customers;

\echo
\echo '=== 3. Distribute ===================================================='
\echo 'customers: 32 hash shards on customer_id; its 10,000 rows move to the nodes.'
SELECT shardexec.create_distributed_table('demo.customers', 'customer_id', 32);
\echo 'orders: same shard count and column type, colocated with customers.'
SELECT shardexec.create_distributed_table('demo.orders', 'customer_id', 32,
                                          colocate_with => 'demo.customers');
\echo 'cities: a reference table, copied whole to every node.'
SELECT shardexec.create_reference_table('demo.cities');

\echo 'The same name still answers, now from the shards:'
SELECT count(*) AS distributed_customers FROM demo.customers;

\echo '100,000 orders, inserted through the coordinator into the shards:'
INSERT INTO demo.orders (order_id, customer_id, amount, ordered_at)
SELECT g,
       1 + g % 10000,
       ((g * 7919) % 50000) / 100.0,
       timestamptz '2024-01-01 00:00+00' + g * interval '5 minutes'
  FROM generate_series(1, 100000) AS g;

\echo
\echo '=== 4. Metadata ======================================================'
\echo 'shardexec.tables: the distributed and reference tables.'
SELECT * FROM shardexec.tables ORDER BY table_name::text;

\echo 'Shards per node (a reference table counts once on every node):'
SELECT node_name, count(*) AS shards
  FROM shardexec.shards
 GROUP BY node_name
 ORDER BY node_name;

\echo 'A few shards of demo.customers: each owns a range of the 32-bit hash space.'
SELECT shard_id, shard_index, hash_min, hash_max, node_name, shard_table
  FROM shardexec.shards
 WHERE table_name::regclass = 'demo.customers'::regclass
 ORDER BY shard_index
 LIMIT 5;

\set QUIET on
\timing on
\set QUIET off
\echo
\echo '=== 5. Router query =================================================='
\echo 'customer_id = 42 names exactly one shard: the whole query is sent to the'
\echo 'one node that holds it, and its result comes back unchanged.'
SELECT * FROM demo.customers WHERE customer_id = 42;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM demo.customers WHERE customer_id = 42;

\echo
\echo '=== 6. Multi-shard queries ==========================================='
\echo 'No shard key in the WHERE clause: every shard computes a partial count and'
\echo 'sum in parallel, and the coordinator combines them.'
SELECT count(*) AS orders, sum(amount) AS total_amount FROM demo.orders;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), sum(amount) FROM demo.orders;

\echo 'A join of colocated orders and customers (on the distribution column) with'
\echo 'the reference table cities runs inside each node; the coordinator merges'
\echo 'the grouped partial results.'
SELECT ci.country, c.city, count(*) AS orders, sum(o.amount) AS amount
  FROM demo.orders o
  JOIN demo.customers c ON c.customer_id = o.customer_id
  JOIN demo.cities ci ON ci.city = c.city
 GROUP BY ci.country, c.city
 ORDER BY c.city;
\set QUIET on
\timing off
\set QUIET off
