# test/t/030_plugins.pl: plugins on real instances, with a primary and a
# streaming replica.
#
# A coordinator and one node, node1, whose primary streams to a replica;
# the replica is recorded with shardexec.add_replica.  The replica's
# application_name is "127.0.0.1:<port>", so that it shows in the primary's
# pg_stat_replication as its own address (for the topology plugin).
#
#   (1) Registration: a handler of the wrong kind is refused; a plugin that
#       raises an error names itself and its pipeline.
#   (2) The third-party example plugin (test/plugin_example) through every
#       pipeline on real instances.
#   (3) read_write_splitting with static_hosts: reads go to the replica
#       (pg_is_in_recovery() evaluated on the host that served them is
#       true), writes and reads inside a read-write transaction to the
#       primary; a READ ONLY transaction reads on the replica; round_robin
#       over two addresses of the replica uses both.
#   (4) topology finds the replica from the primary's pg_stat_replication.
#   (5) credentials: node1 asks user "app" for a password, which the
#       coordinator only has in a file; the connection works with the
#       plugin and fails without it.
#   (6) A registry change and a change of shardexec.plugins (ALTER SYSTEM and
#       a reload) are seen by a session that is already running, without
#       reconnecting.
#   (7) failover: the primary is stopped and the replica promoted.  In a
#       session with failover active, a transaction that had used the old
#       primary gets a clear "outcome unknown" error; the next read
#       succeeds within seconds, on the new primary, and the next write
#       goes to the new primary.  A read that was running on the old
#       primary when it stopped is sent again to the new one and returns
#       every row, without an error.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use ShardexecTest qw(start_cluster query_value);

my ($coord, $node1) = start_cluster(
	nodes => 1,
	allows_streaming => 1,
	coordinator_conf => "log_min_messages = log\n",
	# several sessions with a connection per shard each, at the failover
	node_conf => "max_connections = 40\n");

# the replica, from a backup of node1
$node1->backup('base');
my $replica = PostgreSQL::Test::Cluster->new('replica');
$replica->init_from_backup($node1, 'base', has_streaming => 1);
my $rport = $replica->port;
my $replica_name = "127.0.0.1:$rport";
# (the harness sets PGAPPNAME for the servers, so say it in the conninfo)
$replica->append_conf('postgresql.conf',
	"primary_conninfo = '" . $node1->connstr . " application_name=$replica_name'\n");
$replica->start;

my $pport = $node1->port;
$coord->safe_psql('postgres', qq{
	SELECT shardexec.add_replica('node1', '127.0.0.1', $rport);
	CREATE TABLE t (id bigint PRIMARY KEY, v text);
	SELECT shardexec.create_distributed_table('t', 'id', 4);
	INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;
	CREATE EXTENSION shardexec_plugin_example;
	CREATE FUNCTION test_execute(rel regclass, filter text, order_by text,
	                             max_rows bigint, params text[])
	RETURNS SETOF record AS 'shardexec', 'shardexec_test_execute' LANGUAGE C;
});
$node1->wait_for_catchup($replica_name);
is(query_value($replica, 'SELECT pg_is_in_recovery()'), 't', 'the replica is a standby');

# bg: runs $sql in the background session $s; returns its output, or
# (output, stderr of this query) in list context
sub bg
{
	my ($s, $sql) = @_;
	$s->{stderr} = '';
	my $out = $s->query($sql);
	my $err = $s->{stderr};
	$s->{stderr} = '';
	return wantarray ? ($out, $err) : $out;
}

# psql_result: runs $sql in a new session, returns (stdout, stderr)
sub psql_result
{
	my ($instance, $sql) = @_;
	my ($out, $err) = ('', '');
	$instance->psql('postgres', $sql, stdout => \$out, stderr => \$err);
	return ($out, $err);
}

# ---------------------------------------------------------------------------
# (1) registration checks and errors that name the plugin

my ($out, $err) = psql_result($coord,
	q{SELECT shardexec.register_plugin('wrong', 'shardexec.shardexec_fdw_handler')});
like($err, qr/function shardexec\.shardexec_fdw_handler\(\) is not a shardexec plugin handler/,
	'a handler of the wrong kind is refused at registration');
($out, $err) = psql_result($coord,
	q{SELECT shardexec.register_plugin('wrong', 'plugin_example_not_a_routine')});
like($err, qr/did not return a shardexec plugin routine/,
	'a handler that returns something else is refused at registration');
is(query_value($coord, q{SELECT count(*) FROM shardexec.plugin WHERE plugin_name = 'wrong'}),
	'0', 'nothing was registered');

$coord->safe_psql('postgres', q{
	SELECT shardexec.register_plugin('breaks', 'plugin_example_handler', NULL,
	                                 '{"fail_in": "execute_end"}');
});
($out, $err) = psql_result($coord, q{
	SET shardexec.plugins = 'breaks';
	SELECT count(*) FROM t;
});
like($err, qr/plugin_example fails in execute_end as asked/, 'the plugin error fails the statement');
like($err, qr/shardexec plugin "breaks", pipeline "execute"/,
	'the error names the plugin and the pipeline');

# ---------------------------------------------------------------------------
# (2) the third-party plugin through every pipeline

$coord->safe_psql('postgres', qq{
	SELECT shardexec.register_plugin('example', 'plugin_example_handler', NULL,
	       '{"replicas": true, "application_name": "example_tap",
	         "extra_replica": "localhost:$rport"}');
});
my $calls = $coord->safe_psql('postgres', q{
	SET shardexec.plugins = 'topology, static_hosts';
	SELECT count(*) FROM t;
	SET shardexec.plugins = 'example, topology, static_hosts';
	SELECT count(*) FROM t;
	-- another chain: the pooled connections it did not make are outdated
	SET shardexec.plugins = 'example, static_hosts, topology';
	SELECT count(*) FROM t;
	SELECT count(*) FROM t WHERE id = 5;
	INSERT INTO t VALUES (1000, 'x');
	DELETE FROM t WHERE id = 1000;
	SELECT coalesce(string_agg(callback, ',' ORDER BY callback), 'none')
	  FROM plugin_example_calls() WHERE calls = 0;
});
my @lines = split /\n/, $calls;
is($lines[-1], 'none', 'every pipeline of the example plugin was called');

# ---------------------------------------------------------------------------
# (3) read_write_splitting
#
# Replay is paused on the replica and a row is added through the primary:
# a read that the replica serves does not see it.  log_query logs the host
# and port that served each unit, where pg_is_in_recovery() is asked.

$replica->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$coord->safe_psql('postgres', q{INSERT INTO t VALUES (101, 'v101')});
$coord->safe_psql('postgres', q{
	SELECT shardexec.register_plugin('log_units', 'shardexec.log_query_handler');
});
my $split = q{SET shardexec.plugins = 'read_write_splitting, static_hosts, log_units';};
my $log_offset = -s $coord->logfile;
is(query_value($coord, qq{$split SELECT count(*) FROM t}), '100',
	'a read outside a transaction is served by the replica (replay paused there)');
my $log = substr(slurp_file($coord->logfile), $log_offset);
my %served = map { $_ => 1 } ($log =~ /node "node1" \(127\.0\.0\.1:(\d+)\)/g);
is(join(',', sort keys %served), $rport, 'every unit of the read ran on the replica\'s port');
my %instance_by_port = ($pport => $node1, $rport => $replica);
is(join(',', map { query_value($instance_by_port{$_}, 'SELECT pg_is_in_recovery()') } sort keys %served),
	't', 'pg_is_in_recovery() is true on the host that served the read');
is(query_value($coord, qq{SELECT count(*) FROM t}), '101',
	'without the plugin the same read is served by the primary');
is(query_value($coord, qq{$split
	INSERT INTO t VALUES (102, 'v102') RETURNING id}),
	'102', 'a write goes to the primary');
is(query_value($coord, qq{$split
	BEGIN; SELECT count(*) FROM t; COMMIT;}),
	'102', 'a read in a read-write transaction goes to the primary');
is(query_value($coord, qq{$split
	BEGIN READ ONLY; SELECT count(*) FROM t; COMMIT;}),
	'100', 'a read in a read-only transaction goes to the replica');
is(query_value($coord, qq{$split
	BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY; SELECT count(*) FROM t; COMMIT;}),
	'102', 'a serializable read-only transaction goes to the primary (a standby refuses it)');
$replica->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
$coord->safe_psql('postgres', q{DELETE FROM t WHERE id = 102});
$node1->wait_for_catchup($replica_name);
is(query_value($coord, qq{$split SELECT count(*) FROM t}), '101',
	'the replica caught up');

# round_robin over two addresses of the replica
$coord->safe_psql('postgres', qq{
	SELECT shardexec.add_replica('node1', 'localhost', $rport);
	SELECT shardexec.register_plugin('split_rr', 'shardexec.read_write_splitting_handler',
	                                 NULL, '{"strategy": "round_robin"}');
});
my $hosts = $coord->safe_psql('postgres', q{
	SET shardexec.plugins = 'split_rr, host_selection, static_hosts';
	SELECT count(*) FROM t;
	SELECT host || ' ' || role || ' ' || (open_connections > 0)
	  FROM shardexec.host_list('node1') ORDER BY role, host;
});
like($hosts, qr/127\.0\.0\.1 replica true\nlocalhost replica true/,
	'round_robin spreads the connections over both replicas');
($out, $err) = psql_result($coord, q{
	SET shardexec.plugins = 'split_rr, static_hosts';
	SELECT count(*) FROM t;
});
like($err, qr/no active plugin accepts the host selection strategy "round_robin"/,
	'a strategy no active plugin provides is an error');

# ---------------------------------------------------------------------------
# (4) topology

is($coord->safe_psql('postgres', q{
	SET shardexec.plugins = 'topology';
	SELECT string_agg(host || ':' || port || ' ' || role, ', ' ORDER BY role, host)
	  FROM shardexec.host_list('node1');
}), "127.0.0.1:$pport primary, 127.0.0.1:$rport replica",
	'topology finds the replica in the primary\'s pg_stat_replication');

# ---------------------------------------------------------------------------
# (5) credentials

$node1->safe_psql('postgres', q{
	CREATE ROLE app LOGIN PASSWORD 'app-secret';
	GRANT ALL ON ALL TABLES IN SCHEMA public TO app;
});
# app must give a password on 127.0.0.1 (the first matching line wins)
my $hba = slurp_file($node1->data_dir . '/pg_hba.conf');
open(my $fh, '>', $node1->data_dir . '/pg_hba.conf') or die $!;
print $fh "host all app 127.0.0.1/32 scram-sha-256\n" . $hba;
close $fh;
$node1->reload;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $secrets = "$dir/secrets";
open($fh, '>', $secrets) or die $!;
print $fh "# node:user:password\nnode2:app:wrong\nnode1:app:app-secret\n";
close $fh;
chmod 0600, $secrets;

$coord->safe_psql('postgres', qq{
	CREATE ROLE alice SUPERUSER LOGIN;
	CREATE USER MAPPING FOR alice SERVER node1 OPTIONS (user 'app');
	SELECT shardexec.register_plugin('secrets', 'shardexec.credentials_handler', NULL,
	                                 '{"file": "$secrets", "ttl_s": 30}');
});
my ($rc, $alice_out, $alice_err) = (0, '', '');
$rc = $coord->psql('postgres', 'SELECT count(*) FROM t', stdout => \$alice_out,
	stderr => \$alice_err, extra_params => [ '-U', 'alice' ]);
like($alice_err, qr/could not connect to node "node1".*(password|authentication)/s,
	'without credentials, user app cannot connect');
$rc = $coord->psql('postgres',
	q{SET shardexec.plugins = 'secrets'; SELECT count(*) FROM t},
	stdout => \$alice_out, stderr => \$alice_err, extra_params => [ '-U', 'alice' ]);
is($alice_out, '101', 'with credentials from the file, user app connects');

# a role that is not a superuser gets the secrets only if the plugin names it
$coord->safe_psql('postgres', q{
	CREATE ROLE bob LOGIN;
	GRANT SELECT ON t TO bob;
	GRANT USAGE ON FOREIGN SERVER node1 TO bob;
	CREATE USER MAPPING FOR bob SERVER node1 OPTIONS (user 'app');
});
my ($bob_out, $bob_err) = ('', '');
$coord->psql('postgres', q{SET shardexec.plugins = 'secrets'; SELECT count(*) FROM t},
	stdout => \$bob_out, stderr => \$bob_err, extra_params => [ '-U', 'bob' ]);
like($bob_err, qr/password is required to connect to node "node1"/,
	'a role the credentials plugin does not name does not get its secrets');
$coord->safe_psql('postgres', qq{
	SELECT shardexec.register_plugin('secrets_bob', 'shardexec.credentials_handler', NULL,
	                                 '{"file": "$secrets", "roles": ["bob"]}');
});
($bob_out, $bob_err) = ('', '');
$coord->psql('postgres', q{SET shardexec.plugins = 'secrets_bob'; SELECT count(*) FROM t},
	stdout => \$bob_out, stderr => \$bob_err, extra_params => [ '-U', 'bob' ]);
is($bob_out, '101',
	'a role it names connects with the secret from the file, with no password in its user mapping');

# a connection made with bob's secret is not reused by another role of the
# same session that has the same user mapping options (SET ROLE here; a
# SECURITY DEFINER function alike)
$coord->safe_psql('postgres', q{
	CREATE ROLE carol;
	GRANT SELECT ON t TO carol;
	GRANT USAGE ON FOREIGN SERVER node1 TO carol;
	CREATE USER MAPPING FOR carol SERVER node1 OPTIONS (user 'app');
	GRANT carol TO bob;
});
($bob_out, $bob_err) = ('', '');
$coord->psql('postgres', q{SET shardexec.plugins = 'secrets_bob';
	SELECT count(*) FROM t;
	SET ROLE carol;
	SELECT count(*) FROM t;},
	stdout => \$bob_out, stderr => \$bob_err, extra_params => [ '-U', 'bob' ]);
is($bob_out, '101', 'bob reads with his secret');
like($bob_err, qr/password is required to connect to node "node1"/,
	'carol, in the same session, does not get bob\'s connection');

# ---------------------------------------------------------------------------
# (6) a running session sees registry and setting changes

my $session = $coord->background_psql('postgres', on_error_stop => 0);
bg($session, q{SET shardexec.plugins = 'late'});
is(bg($session, q{SELECT count(*) FROM t}), '101', 'second session runs');
is(bg($session, q{SELECT count(*) FROM shardexec.plugins WHERE active}), '0',
	'"late" is not registered yet');
$coord->safe_psql('postgres', q{
	SELECT shardexec.register_plugin('late', 'shardexec.execution_time_handler');
});
bg($session, q{SELECT shardexec.reset_execution_time()});
bg($session, q{SELECT count(*) FROM t});
is(bg($session, q{SELECT plugin_name FROM shardexec.plugins WHERE active}), 'late',
	'the running session sees the plugin registered by another one');
is(bg($session, q{SELECT sum(calls) FROM shardexec.execution_time WHERE pipeline = 'execute'}),
	'4', 'and runs it');

bg($session, q{RESET shardexec.plugins});
bg($session, q{SELECT shardexec.reset_execution_time()});
$coord->safe_psql('postgres', q{ALTER SYSTEM SET shardexec.plugins = 'execution_time'});
$coord->safe_psql('postgres', q{SELECT pg_reload_conf()});
my $seen = 0;
for (1 .. 50)
{
	if (bg($session, q{SHOW shardexec.plugins}) eq 'execution_time')
	{
		$seen = 1;
		last;
	}
	sleep 0.1;
}
ok($seen, 'the running session sees the new shardexec.plugins after the reload');
bg($session, q{SELECT count(*) FROM t});
is(bg($session, q{SELECT sum(calls) FROM shardexec.execution_time WHERE pipeline = 'execute'}),
	'4', 'and its plugin chain follows');
$coord->safe_psql('postgres', q{ALTER SYSTEM RESET shardexec.plugins});
$coord->safe_psql('postgres', q{SELECT pg_reload_conf()});
$session->quit;

# ---------------------------------------------------------------------------
# (7) failover

$coord->safe_psql('postgres', qq{DELETE FROM shardexec.replica WHERE host = 'localhost'});
my $failover = q{SET shardexec.plugins = 'failover, static_hosts';};

# a session in a transaction on the old primary, and one with pooled connections
my $in_xact = $coord->background_psql('postgres', on_error_stop => 0);
bg($in_xact, $failover);
bg($in_xact, q{BEGIN});
is(bg($in_xact, q{SELECT count(*) FROM t}), '101', 'transaction started on the old primary');
my $pooled = $coord->background_psql('postgres', on_error_stop => 0);
bg($pooled, $failover);
is(bg($pooled, q{SELECT count(*) FROM t}), '101', 'pooled connections to the old primary');

# a read in flight when the primary stops: every shard's rows are sorted
# on the node, after a sleep per row, so none has been sent when it stops
# (rows returned already could not be taken back: such a read fails)
my $expected_read = query_value($coord,
	q{SELECT count(*), min(id), max(id), sum(id) FROM t});
my $reader = $coord->background_psql('postgres', on_error_stop => 0);
bg($reader, $failover);
$reader->{stdin} .= q{SELECT count(*), min(id), max(id), sum(id)
	FROM test_execute('t', $$pg_sleep(0.05)::text = ''$$, 'id', NULL, NULL)
	AS r(id bigint, v text);} . "\n";
$reader->{run}->pump_nb;
ok($node1->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_stat_activity
	 WHERE query LIKE '%pg_sleep(0.05)%' AND pid <> pg_backend_pid()}),
	'the read runs on the old primary');

$node1->wait_for_catchup($replica_name);
$node1->stop('fast');
$replica->promote;

my ($reader_out, $reader_err) = bg($reader, q{SELECT 'reader done'});
is($reader_out, "$expected_read\nreader done",
	'the read in flight was sent again to the new primary and returned every row');
is($reader_err, '', 'without an error');
$reader->quit;
like(slurp_file($coord->logfile),
	qr/shardexec: sending 1 shard query again to node "node1" after losing the connection/,
	'sending the shard queries again is logged');
is(query_value($replica, 'SELECT pg_is_in_recovery()'), 'f', 'the replica was promoted');

my ($xact_out, $xact_err) = bg($in_xact, q{SELECT count(*) FROM t});
like($xact_err, qr/lost the connection to node "node1" inside a transaction/,
	'inside a transaction: a clear error');
like($xact_err, qr/outcome of this transaction on node "node1" is unknown/,
	'that says the outcome on the node is unknown');
like($xact_err, qr/now has its primary at 127\.0\.0\.1:$rport/,
	'and where the new primary is');
bg($in_xact, q{ROLLBACK});
$in_xact->quit;

my $start = time;
is(bg($pooled, q{SELECT count(*) FROM t}), '101', 'the next read succeeds');
my $elapsed = time - $start;
ok($elapsed < 10, sprintf('within seconds (%.1f s)', $elapsed));
bg($pooled, q{INSERT INTO t VALUES (102, 'after failover')});
$pooled->quit;
my $rows = 0;
for my $shard (split /\n/, $coord->safe_psql('postgres',
	q{SELECT shard_table FROM shardexec.shards WHERE table_name = 't'::regclass}))
{
	$rows += query_value($replica, "SELECT count(*) FROM $shard WHERE v = 'after failover'");
}
is($rows, 1, 'the write after failover went to the new primary');

# a new session finds the new primary by itself
is(query_value($coord, qq{$failover SELECT count(*) FROM t}), '102',
	'a new session fails over too');
like(slurp_file($coord->logfile), qr/shardexec failover: node "node1" has its primary at 127\.0\.0\.1:$rport/,
	'failover is logged');

done_testing();
