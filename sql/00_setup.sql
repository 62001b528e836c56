--
-- 00_setup: the cluster every other test relies on.
--
-- The temporary instance pg_regress starts is the coordinator and, over
-- 127.0.0.1, its own nodes: node1, node2 and node3 are databases of the same
-- instance.  The other test files use these three nodes and the extension;
-- they must leave them in place.
--
CREATE EXTENSION shardexec;

CREATE DATABASE node1;
CREATE DATABASE node2;
CREATE DATABASE node3;

-- ports are not stable: keep them out of the output
SELECT current_setting('port') AS port \gset

SELECT shardexec.add_node('node1', '127.0.0.1', :port, 'node1') AS node1_id \gset
SELECT shardexec.add_node('node2', '127.0.0.1', :port, 'node2') AS node2_id \gset
SELECT shardexec.add_node('node3', '127.0.0.1', :port, 'node3') AS node3_id \gset

-- node ids are given in order
SELECT :node1_id < :node2_id AND :node2_id < :node3_id AS ids_in_order;

SELECT node_name, host, port = :port AS same_port, dbname, replicas
  FROM shardexec.nodes ORDER BY node_id;

-- every node is a foreign server of the shardexec wrapper
SELECT s.srvname, w.fdwname
  FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
 ORDER BY s.srvname;

-- nothing is distributed yet
SELECT count(*) FROM shardexec.tables;
SELECT count(*) FROM shardexec.shards;
