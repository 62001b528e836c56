# test/t/010_executor.pl: the distributed executor on real instances.
#
# A coordinator and four nodes; a table of 32 shards (8 per node).  Every
# SELECT over it runs its 32 shard queries through the distributed
# executor (src/executor/distributed_executor.c).
#
#   (1) For m = shardexec.max_connections_per_query in 1, 2, 8 and 64, each
#       node serves the statement with min(m, 8) connections: the shard
#       tables are locked on every node (ACCESS EXCLUSIVE, in another
#       session), so every connection's current shard query waits there
#       and can be counted in pg_stat_activity.  EXPLAIN ANALYZE shows the
#       mode and counts per node, and the rows are the same in every mode,
#       with binary or text transfer, with or without pipelining.
#   (2) The ordered k-way merge, parameters and an early end, through a
#       test entry point (shardexec_test_execute, declared here); a LIMIT
#       over the scan leaves no query running on the nodes.
#   (3) Writes in a transaction are read back (the shard stays on the
#       connection that wrote it), also across a savepoint.
#   (4) pg_cancel_backend and statement_timeout on the coordinator while
#       the shard queries wait on a node: the statement ends within seconds
#       and the node's waiting queries are cancelled too.
#   (5) A node that accepts TCP connections but never answers fails the
#       statement after shardexec.connect_timeout, naming the node.
#   (6) A node killed while the statement runs: a clear error naming it;
#       after the node's restart the next query works, in the same session.
#   (7) 2 million rows: memory-strict mode keeps the coordinator backend's
#       peak memory (VmHWM) flat; connection-strict mode spills the shard
#       results to temporary files instead of growing.

use strict;
use warnings;

use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ShardexecTest qw(start_cluster query_value node_count);

# Pushdown is off: every query reads its tables through the pull scan,
# whose shard queries are plain "SELECT columns FROM shard", so what this
# test sees depends on the executor only, not on what the planner pushes
# down.
my ($coord, @nodes) = start_cluster(
	nodes => 4,
	coordinator_conf =>
	  "work_mem = '1MB'\nlog_temp_files = 0\nshardexec.enable_pushdown = off\n",
	node_conf => "max_connections = 80\n");

# the rows of items, computed locally: the ground truth
my $items_sql = q{
	SELECT g::bigint AS id, (g % 17)::int AS grp,
	       CASE WHEN g % 1000 = 0 THEN NULL ELSE 'label ' || g END AS label,
	       CASE WHEN g % 777 = 0 THEN NULL ELSE g * 1.25 END AS amount,
	       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' AS at
	  FROM generate_series(1, 20000) g};

$coord->safe_psql('postgres', qq{
	CREATE TABLE items (id bigint PRIMARY KEY, grp int, label text, amount numeric,
	                    at timestamptz);
	SELECT shardexec.create_distributed_table('items', 'id', 32);
	INSERT INTO items $items_sql;
	CREATE FUNCTION test_execute(rel regclass, filter text, order_by text,
	                             max_rows bigint, params text[])
	RETURNS SETOF record AS 'shardexec', 'shardexec_test_execute' LANGUAGE C;
});

my $expected = query_value($coord,
	"SELECT count(*) || ' ' || md5(string_agg(r::text, ',' ORDER BY id)) FROM ($items_sql) r");

# shards of items per node: name => [ qualified shard tables ]
my %shards;
for my $line (split /\n/, $coord->safe_psql('postgres', q{
	SELECT node_name, shard_table FROM shardexec.shards
	 WHERE table_name = 'items'::regclass ORDER BY shard_index}))
{
	my ($node, $table) = split /\|/, $line;
	push @{ $shards{$node} }, $table;
}
is(join(' ', map { "$_=" . scalar @{ $shards{$_} } } sort keys %shards),
	'node1=8 node2=8 node3=8 node4=8', '32 shards, 8 on each of the 4 nodes');

# waiting_queries: shard queries of the coordinator waiting for a lock on
# $node.
sub waiting_queries
{
	my ($node) = @_;
	return node_count($node, q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'
		   AND query LIKE 'SELECT %items\_%'});
}

# lock_shards: a session on $node holding ACCESS EXCLUSIVE locks on its
# shards of items, until its transaction ends.
sub lock_shards
{
	my ($node) = @_;
	my $session = $node->background_psql('postgres');
	$session->query_safe('BEGIN; LOCK TABLE ' . join(', ', @{ $shards{ $node->name } })
		  . ' IN ACCESS EXCLUSIVE MODE;');
	return $session;
}

# ---------------------------------------------------------------------------
# (1) connections per node, by m

for my $m (1, 2, 8, 64)
{
	my $want = $m < 8 ? $m : 8;
	my @lockers = map { lock_shards($_) } @nodes;

	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	$session->query_safe("SET shardexec.max_connections_per_query = $m");
	$session->query_until(qr/started/, qq{\\echo started
SELECT 'result ' || count(*) || ' ' || md5(string_agg(r::text, ',' ORDER BY id)) FROM items r;
});

	for my $node (@nodes)
	{
		ok( $node->poll_query_until('postgres', qq{
				SELECT count(*) >= $want FROM pg_stat_activity
				 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'
				   AND query LIKE 'SELECT %items\\_%'}),
			"m=$m: " . $node->name . " runs shard queries of the statement");
	}
	# give any extra connection time to show up
	usleep(300_000);
	for my $node (@nodes)
	{
		is(waiting_queries($node), $want,
			"m=$m: " . $node->name . " serves the statement with $want connections");
	}

	$_->query_safe('COMMIT') for @lockers;
	$_->quit for @lockers;
	my ($out) = $session->query("SELECT 'done'");
	like($out, qr/^result (.*)$/m, "m=$m: the statement completes once the locks are gone");
	my ($got) = $out =~ /^result (.*)$/m;
	is($got, $expected, "m=$m: the rows are the expected ones");
	is($session->{stderr}, '', "m=$m: no error");
	$session->quit;

	my $plan = $coord->safe_psql('postgres', qq{
		SET shardexec.max_connections_per_query = $m;
		EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM items;});
	my $mode = $m < 8 ? 'connection-strict' : 'memory-strict';
	my $conns = $want == 1 ? '1 connection' : "$want connections";
	my $rows = 0;
	for my $node (@nodes)
	{
		my $name = $node->name;
		like($plan, qr/Node $name: $mode, $conns, 8 units, rows=\d+/,
			"m=$m: EXPLAIN ANALYZE shows $name $mode with $conns for 8 units");
		$rows += $1 if $plan =~ /Node $name: .*rows=(\d+)/;
	}
	is($rows, 20000, "m=$m: EXPLAIN ANALYZE counts every row, per node");
}

for my $settings (
	'SET shardexec.max_connections_per_query = 3; SET shardexec.binary_transfer = off',
	'SET shardexec.max_connections_per_query = 3; SET shardexec.use_pipeline = off',
	'SET shardexec.max_connections_per_query = 8; SET shardexec.binary_transfer = off')
{
	is( query_value($coord, qq{$settings;
			SELECT count(*) || ' ' || md5(string_agg(r::text, ',' ORDER BY id)) FROM items r}),
		$expected, "same rows with: $settings");
}

# two executions at once, in one plan (merge join of two scans)
is( query_value($coord, q{
		SET shardexec.max_connections_per_query = 2;
		SET enable_hashjoin = off; SET enable_nestloop = off;
		SELECT count(*) FROM items a JOIN items b USING (id)}),
	'20000', 'a self-join runs two executions side by side');

# ---------------------------------------------------------------------------
# (2) ordered merge, parameters, early end

my $cols = 'r(id bigint, grp int, label text, amount numeric, at timestamptz)';
for my $m (2, 8)
{
	is( query_value($coord, qq{
			SET shardexec.max_connections_per_query = $m;
			SELECT count(*) || ' ' || md5(string_agg(r::text, ','))
			  FROM test_execute('items', NULL, 'id', NULL, NULL) AS $cols}),
		$expected, "m=$m: the k-way merge returns every row in id order");
	is( query_value($coord, qq{
			SET shardexec.max_connections_per_query = $m;
			SELECT count(*) || ' ' || bool_and(ok IS NOT FALSE) FROM (
			  SELECT grp >= lag(grp) OVER () AS ok
			    FROM test_execute('items', NULL, 'grp', NULL, NULL) AS $cols) s}),
		'20000 true', "m=$m: the merge on a column with ties keeps its order");
}
# (16000 has a NULL label)
is( query_value($coord, qq{
		SELECT string_agg(id::text, ',')
		  FROM test_execute('items', 'id > \$1 AND label LIKE \$2', 'id', 5,
		                    '{15000,label 16%}') AS $cols}),
	'16001,16002,16003,16004,16005',
	'parameters are sent, and the execution ends after 5 rows');
for my $node (@nodes)
{
	ok( $node->poll_query_until('postgres', q{
			SELECT count(*) = 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND state = 'active'}),
		'after an early end, nothing runs any more on ' . $node->name);
}
is(query_value($coord, 'SELECT count(*) FROM (SELECT * FROM items LIMIT 3) s'),
	'3', 'a LIMIT over the scan');
for my $node (@nodes)
{
	ok( $node->poll_query_until('postgres', q{
			SELECT count(*) = 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND state = 'active'}),
		'after a LIMIT over the scan, nothing runs any more on ' . $node->name);
}
{
	my ($ret, $stdout, $stderr) = $coord->psql('postgres', q{
		SELECT count(*) FROM test_execute('items', 'id / (id - 7) > 0', NULL, NULL, NULL)
		    AS r(id bigint, grp int, label text, amount numeric, at timestamptz)});
	like($stderr, qr/ERROR:  division by zero/, 'a remote error keeps its message');
	like($stderr, qr/CONTEXT:  remote SQL command on node "node\d": SELECT .* WHERE id \/ \(id - 7\) > 0/,
		'a remote error names the node and gives the remote SQL');
	is( query_value($coord, q{
			SELECT count(*) FROM test_execute('items', NULL, NULL, NULL, NULL)
			    AS r(id bigint, grp int, label text, amount numeric, at timestamptz)}),
		'20000', 'the next execution works');
}

# ---------------------------------------------------------------------------
# (3) writes in a transaction

is( query_value($coord, q{
		SET shardexec.max_connections_per_query = 8;
		BEGIN;
		INSERT INTO items (id, grp) SELECT g, -1 FROM generate_series(30001, 30100) g;
		SAVEPOINT s;
		INSERT INTO items (id, grp) SELECT g, -1 FROM generate_series(30101, 30150) g;
		ROLLBACK TO SAVEPOINT s;
		SELECT count(*) FROM items WHERE grp = -1;
		ROLLBACK;}),
	'100', 'a transaction reads its own writes, minus those rolled back to a savepoint');
is(query_value($coord, 'SELECT count(*) FROM items WHERE grp = -1'), '0',
	'and none of them once it is rolled back');

# ---------------------------------------------------------------------------
# (4) cancel and statement_timeout while node2 holds the shard queries

my $node2 = $nodes[1];
{
	my $locker = lock_shards($node2);
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_until(qr/started/, q{\echo started
SELECT count(*) FROM items;
});
	ok( $node2->poll_query_until('postgres', q{
			SELECT count(*) > 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'}),
		'cancel: the shard queries wait on node2');
	my $start = time;
	$coord->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	my ($out) = $session->query("SELECT 'after cancel'");
	my $elapsed = time - $start;
	like($session->{stderr}, qr/ERROR:  canceling statement due to user request/,
		'cancel: the statement ends with the cancel error');
	ok($elapsed < 5, sprintf('cancel: within seconds (%.2f s)', $elapsed));
	like($out, qr/after cancel/, 'cancel: the session goes on');
	ok( $node2->poll_query_until('postgres', q{
			SELECT count(*) = 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'}),
		'cancel: the queries waiting on node2 are cancelled while the lock is held');

	$session->{stderr} = '';
	$start = time;
	($out) = $session->query(q{SET statement_timeout = '1s'; SELECT count(*) FROM items});
	$elapsed = time - $start;
	like($session->{stderr}, qr/ERROR:  canceling statement due to statement timeout/,
		'statement_timeout: the statement ends with the timeout error');
	ok($elapsed < 5, sprintf('statement_timeout: within seconds (%.2f s)', $elapsed));
	ok( $node2->poll_query_until('postgres', q{
			SELECT count(*) = 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'}),
		'statement_timeout: the queries waiting on node2 are cancelled');

	$locker->query_safe('COMMIT');
	$locker->quit;
	$session->{stderr} = '';
	($out) = $session->query('RESET statement_timeout; SELECT count(*) FROM items');
	is($out, '20000', 'the same session reads the table once the lock is gone');
	$session->quit;
}

# ---------------------------------------------------------------------------
# (5) a node that does not answer

{
	# the kernel completes the TCP handshake for the backlog; nobody
	# ever reads or writes
	my $listener = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Listen => 128,
		ReuseAddr => 1) or die "could not listen: $!";
	my $port = $listener->sockport;
	my $node4_port = $nodes[3]->port;

	$coord->safe_psql('postgres', "ALTER SERVER node4 OPTIONS (SET port '$port')");
	my $start = time;
	my ($ret, $stdout, $stderr) = $coord->psql('postgres', q{
		SET shardexec.connect_timeout = 2;
		SELECT count(*) FROM items});
	my $elapsed = time - $start;
	isnt($ret, 0, 'connect timeout: the statement fails');
	like($stderr, qr/ERROR:  could not connect to node "node4": timeout after 2 seconds/,
		'connect timeout: the error names the node');
	ok($elapsed >= 1.9 && $elapsed < 10,
		sprintf('connect timeout: after about shardexec.connect_timeout (%.2f s)', $elapsed));
	$coord->safe_psql('postgres', "ALTER SERVER node4 OPTIONS (SET port '$node4_port')");
	is(query_value($coord, 'SELECT count(*) FROM items'), '20000',
		'connect timeout: with the right port again, the query works');
	close($listener);
}

# ---------------------------------------------------------------------------
# (6) a node killed while the statement runs

my $node3 = $nodes[2];
{
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	# warm connections to every node, kept for the next statements
	$session->query_safe('SELECT count(*) FROM items WHERE false');
	my $locker = lock_shards($node3);
	$session->query_until(qr/started/, q{\echo started
SELECT count(*) FROM items;
});
	ok( $node3->poll_query_until('postgres', q{
			SELECT count(*) > 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'}),
		'node killed: the shard queries wait on node3');
	$node3->stop('immediate');
	eval { $locker->quit; };

	my ($out) = $session->query("SELECT 'still here'");
	like($session->{stderr}, qr/ERROR:  .*\n(.*\n)*.*"node3"/,
		'node killed: the statement fails with an error naming node3');
	unlike($session->{stderr}, qr/FATAL/, "node killed: the node's FATAL is not re-raised as FATAL");
	like($out, qr/still here/, 'node killed: the coordinator session survives');

	$node3->start;
	$session->{stderr} = '';
	($out) = $session->query('SELECT count(*) FROM items');
	is($out, '20000', 'node killed: after its restart, the next query works in the same session');
	is($session->{stderr}, '', 'node killed: ... without an error');
	$session->quit;
}

# ---------------------------------------------------------------------------
# (7) memory: 2 million rows

$coord->safe_psql('postgres', q{
	CREATE TABLE big (id bigint, v int);
	SELECT shardexec.create_distributed_table('big', 'id', 32);
	INSERT INTO big SELECT g, g % 1000 FROM generate_series(1, 2000000) g;
});

# peak: the coordinator backend's VmHWM in kB, before and after $query,
# in one session with settings $settings; the warm-up opens every
# connection and runs every shard query, returning no rows.
sub peak
{
	my ($settings, $query) = @_;
	my $hwm = q{SELECT substring(pg_read_file('/proc/' || pg_backend_pid() || '/status')
	                             from 'VmHWM:\s*(\d+)')};
	my @out = split /\n/, $coord->safe_psql('postgres', qq{
		$settings;
		SELECT count(*) FROM test_execute('big', 'id < 0', NULL, NULL, NULL) AS r(id bigint, v int);
		$hwm;
		$query;
		$hwm;});
	return ($out[1], $out[3], $out[2]);
}

{
	my ($before, $after, $result) = peak('SET shardexec.max_connections_per_query = 8',
		'SELECT count(*) || \' \' || sum(v) FROM big');
	is($result, '2000000 999000000', 'memory-strict: 2 million rows read');
	note("memory-strict: VmHWM $before kB before, $after kB after");
	ok($after - $before < 8 * 1024,
		sprintf('memory-strict: peak memory stays flat (grew by %d kB)', $after - $before));
}
{
	my $offset = -s $coord->logfile;
	my ($before, $after, $result) = peak(
		q{SET shardexec.max_connections_per_query = 1; SET work_mem = '1MB'},
		'SELECT count(*) || \' \' || sum(v) FROM big');
	is($result, '2000000 999000000', 'connection-strict: 2 million rows read');
	note("connection-strict: VmHWM $before kB before, $after kB after");
	ok($after - $before < 16 * 1024,
		sprintf('connection-strict: peak memory does not grow with the result (grew by %d kB)',
			$after - $before));
	my $log = slurp_file($coord->logfile, $offset);
	my $spilled = () = $log =~ /LOG:  temporary file: path/g;
	ok($spilled >= 8, "connection-strict: the shard results spilled to $spilled temporary files");
}

done_testing();
