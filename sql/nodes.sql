--
-- nodes: add_node, add_replica and remove_node, their errors, and who may
-- call them.
--
-- Every failed add_node must leave nothing behind: no row in
-- shardexec.nodes and no foreign server.  Ports of the instance are kept out
-- of the output (they change from run to run): connection errors go through
-- nodes.try(), which masks the port in the error detail.
--
-- Not tested here: a standby passed to add_node is refused ("node ... is a
-- standby"); that needs a second, replicating instance.
--
CREATE SCHEMA nodes;
SET search_path TO nodes;
SELECT current_setting('port') AS port \gset
\set coordinator :DBNAME

-- runs a command and returns its error (or 'ok'), with the instance's port
-- masked in the first line of the detail
CREATE FUNCTION try(cmd text, OUT error text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE cmd;
    error := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS error = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    detail := replace(split_part(detail, E'\n', 1),
                      'port ' || current_setting('port'), 'port <port>');
END
$$;

-- what is recorded: the nodes and the shardexec foreign servers
CREATE VIEW recorded AS
SELECT (SELECT string_agg(node_name, ', ' ORDER BY node_id) FROM shardexec.nodes) AS nodes,
       (SELECT string_agg(s.srvname, ', ' ORDER BY s.srvname)
          FROM pg_foreign_server s
          JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
         WHERE w.fdwname = 'shardexec') AS servers,
       (SELECT count(*) FROM shardexec.replica) AS replicas;

SELECT * FROM recorded;

--
-- add_node errors
--

-- unreachable: nothing listens on port 1
SELECT * FROM try($$SELECT shardexec.add_node('unreachable', '127.0.0.1', 1, 'node1')$$);
SELECT * FROM recorded;

-- a database that does not exist
SELECT * FROM try(format($$SELECT shardexec.add_node('nodb', '127.0.0.1', %s, 'no_such_database')$$, :port));
SELECT * FROM recorded;

-- a name already taken by a node
SELECT shardexec.add_node('node1', '127.0.0.1', :port, 'node2');
SELECT * FROM recorded;

-- a name already taken by a foreign server of another wrapper, or by a
-- shardexec server that is not a node
CREATE FOREIGN DATA WRAPPER nodes_dummy_fdw;
CREATE SERVER taken FOREIGN DATA WRAPPER nodes_dummy_fdw;
CREATE SERVER handmade FOREIGN DATA WRAPPER shardexec OPTIONS (dbname 'node1');
SELECT shardexec.add_node('taken', '127.0.0.1', :port, 'node1');
SELECT shardexec.add_node('handmade', '127.0.0.1', :port, 'node1');
SELECT srvname FROM pg_foreign_server ORDER BY srvname;
DROP SERVER taken;
DROP SERVER handmade;
DROP FOREIGN DATA WRAPPER nodes_dummy_fdw;
SELECT * FROM recorded;

-- bad ports
SELECT shardexec.add_node('badport', '127.0.0.1', 0, 'node1');
SELECT shardexec.add_node('badport', '127.0.0.1', -1, 'node1');
SELECT shardexec.add_node('badport', '127.0.0.1', 65536, 'node1');
SELECT shardexec.add_node('badport', '127.0.0.1', 70000, 'node1');
SELECT * FROM recorded;

-- bad names, hosts and database names
SELECT shardexec.add_node('', '127.0.0.1', :port, 'node1');
SELECT shardexec.add_node(repeat('n', 64), '127.0.0.1', :port, 'node1');
SELECT shardexec.add_node('nohost', '', :port, 'node1');
SELECT shardexec.add_node('nodbname', '127.0.0.1', :port, '');
SELECT * FROM recorded;

-- NULL arguments (a NULL dbname is allowed: it means the current database)
SELECT shardexec.add_node(NULL, '127.0.0.1', :port, 'node1');
SELECT shardexec.add_node('nullhost', NULL, :port, 'node1');
SELECT shardexec.add_node('nullport', '127.0.0.1', NULL, 'node1');
SELECT * FROM recorded;

--
-- add_node with the default dbname: the coordinator's current database
--
SELECT shardexec.add_node('spare', '127.0.0.1', :port) > 0 AS added;
SELECT node_name, host, port = :port AS same_port, dbname = current_database() AS dbname_is_current, replicas
  FROM shardexec.nodes WHERE node_name = 'spare';
SELECT * FROM recorded;

--
-- add_replica
--
SELECT shardexec.add_replica('spare', '127.0.0.2', 5432);
SELECT shardexec.add_replica('spare', '127.0.0.3');
SELECT node_name, replicas FROM shardexec.nodes ORDER BY node_id;
SELECT r.host, r.port FROM shardexec.replica r JOIN shardexec.node n USING (node_id)
 WHERE n.node_name = 'spare' ORDER BY r.host;

-- errors: duplicate, unknown node, bad port, empty host
SELECT shardexec.add_replica('spare', '127.0.0.2', 5432);
SELECT shardexec.add_replica('no_such_node', '127.0.0.2', 5432);
SELECT shardexec.add_replica('spare', '127.0.0.4', 0);
SELECT shardexec.add_replica('spare', '127.0.0.4', 70000);
SELECT shardexec.add_replica('spare', '', 5432);
-- add_replica is strict: NULL arguments do nothing
SELECT shardexec.add_replica(NULL, '127.0.0.4', 5432) IS NULL AS did_nothing;
SELECT shardexec.add_replica('spare', NULL, 5432) IS NULL AS did_nothing;
SELECT node_name, replicas FROM shardexec.nodes ORDER BY node_id;

--
-- remove_node
--

-- refused while shards are placed on the node; the error names the tables
CREATE TABLE t1 (id int PRIMARY KEY);
CREATE TABLE "Odd ""Name""" (id int PRIMARY KEY);
SELECT shardexec.create_distributed_table('t1', 'id', 3);
SELECT shardexec.create_distributed_table('"Odd ""Name"""', 'id', 3);
SELECT node_name, count(*) FROM shardexec.shards
 WHERE table_name IN ('t1'::regclass, '"Odd ""Name"""'::regclass)
 GROUP BY node_name ORDER BY node_name;
SELECT shardexec.remove_node('node2');
SELECT * FROM recorded;
DROP TABLE t1, "Odd ""Name""";

-- unknown node; remove_node is strict: NULL does nothing
SELECT shardexec.remove_node('no_such_node');
SELECT shardexec.remove_node(NULL) IS NULL AS did_nothing;

-- a node without shards goes, with its replicas and its foreign server
SELECT shardexec.remove_node('spare');
SELECT * FROM recorded;
SELECT count(*) FROM pg_foreign_server WHERE srvname = 'spare';
SELECT shardexec.remove_node('spare');

--
-- privileges
--
CREATE ROLE nodes_admin;
CREATE ROLE nodes_nobody;
GRANT USAGE ON SCHEMA nodes TO nodes_admin, nodes_nobody;
GRANT SELECT ON recorded TO nodes_admin, nodes_nobody;

-- not executable by PUBLIC
SET ROLE nodes_nobody;
SELECT shardexec.add_node('by_nobody', '127.0.0.1', :port, 'node1');
SELECT shardexec.add_replica('node1', '127.0.0.2', 5432);
SELECT shardexec.remove_node('node3');
-- but anyone may look
SELECT count(*) FROM shardexec.nodes;
RESET ROLE;

-- EXECUTE is all an administrative role needs: the foreign server is
-- created (and dropped) as the extension's owner, which owns every node's
-- server, and the reachability check connects as that owner too, since the
-- role could not have a user mapping for a server that does not exist yet
GRANT EXECUTE ON FUNCTION shardexec.add_node(text, text, int, text),
                          shardexec.add_replica(text, text, int),
                          shardexec.remove_node(text)
   TO nodes_admin;
SET ROLE nodes_admin;
SELECT shardexec.add_node('by_admin', '127.0.0.1', :port, 'node1') > 0 AS added;
SELECT shardexec.add_replica('by_admin', '127.0.0.2', 5432);
SELECT * FROM recorded;
-- errors are still errors
SELECT * FROM try($$SELECT shardexec.add_node('unreachable', '127.0.0.1', 1, 'node1')$$);
RESET ROLE;
SELECT s.srvowner = e.extowner AS owned_by_extension_owner
  FROM pg_foreign_server s, pg_extension e
 WHERE s.srvname = 'by_admin' AND e.extname = 'shardexec';
SET ROLE nodes_admin;
SELECT shardexec.remove_node('by_admin');
SELECT * FROM recorded;
RESET ROLE;

REVOKE EXECUTE ON FUNCTION shardexec.add_node(text, text, int, text),
                           shardexec.add_replica(text, text, int),
                           shardexec.remove_node(text)
    FROM nodes_admin;
SET ROLE nodes_admin;
SELECT shardexec.add_node('by_admin', '127.0.0.1', :port, 'node1');
RESET ROLE;

--
-- clean up: the schema here and on the nodes (it must be empty there)
--
DROP SCHEMA nodes CASCADE;
DROP ROLE nodes_admin;
DROP ROLE nodes_nobody;
\c node1
SELECT count(*) AS shard_tables FROM pg_tables WHERE schemaname = 'nodes';
DROP SCHEMA nodes;
\c node2
SELECT count(*) AS shard_tables FROM pg_tables WHERE schemaname = 'nodes';
DROP SCHEMA nodes;
\c node3
SELECT count(*) AS shard_tables FROM pg_tables WHERE schemaname = 'nodes';
DROP SCHEMA nodes;
\c :coordinator
SELECT node_name FROM shardexec.nodes ORDER BY node_id;
