# test/t/041_pool.pl: the connection pool and the shared cap on real
# instances.
#
# A coordinator and three nodes.  Connections of the pool are the ones with
# application_name 'shardexec' in the nodes' pg_stat_activity.
#
#   (1) 10,000 router transactions in one session (reads and writes) reuse
#       a handful of connections per node: the session's pool view at the
#       end, and the sessions the nodes saw (pg_stat_database.sessions).
#   (2) shardexec.max_shared_pool_size: a statement that wants more
#       connections than there is room for runs connection-strict with
#       what it gets (EXPLAIN ANALYZE); one that can get none waits and,
#       after shardexec.pool_wait_timeout, fails with a clear error; it
#       works once a connection is free; the counts of a backend that
#       exits, normally or terminated, are given back.
#   (3) 32 concurrent pgbench clients (router reads, multi-shard reads,
#       and transfers between two accounts on different nodes in a
#       transaction block, with two-phase commit) under a cap of 4 per
#       node: every transaction completes, the connections per node never
#       exceed the cap (sampled on the nodes during the run), and the
#       balances still add up.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ShardexecTest qw(start_cluster query_value node_count);

my ($coord, @nodes) = start_cluster(
	nodes => 3,
	coordinator_conf => "shardexec.recovery_interval = 0\nmax_connections = 60\n",
	node_conf => "max_connections = 60\n");

$coord->safe_psql('postgres', q{
	CREATE TABLE acc (id bigint PRIMARY KEY, bal bigint NOT NULL);
	INSERT INTO acc SELECT g, 1000 FROM generate_series(1, 1000) g;
	SELECT shardexec.create_distributed_table('acc', 'id', 6);
	CREATE TABLE wide (id bigint PRIMARY KEY, v int);
	INSERT INTO wide SELECT g, g FROM generate_series(1, 1200) g;
	SELECT shardexec.create_distributed_table('wide', 'id', 12);
});

# pool connections of the coordinator on $node
sub pool_connections
{
	my ($node) = @_;
	return node_count($node, q{
		SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shardexec'});
}

# sessions $node has seen in database postgres
sub sessions
{
	my ($node) = @_;
	return node_count($node, q{
		SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'});
}

# ---------------------------------------------------------------------------
# (1) 10,000 router transactions in one session

{
	# the statistics of the sessions of the setup are written
	usleep(1_100_000);
	my %before = map { $_->name => sessions($_) } @nodes;
	my $script = '';
	for my $i (1 .. 10000)
	{
		my $id = 1 + ($i * 7919) % 1000;
		$script .= $i % 4 == 0
		  ? "UPDATE acc SET bal = bal + 0 WHERE id = $id;\n"
		  : "SELECT bal FROM acc WHERE id = $id;\n";
	}
	$script .= q{
		SELECT 'pool ' || string_agg(node_name || '=' || n || '/' || uses, ' ' ORDER BY node_name)
		  FROM (SELECT node_name, count(*) AS n, sum(uses) AS uses
		          FROM shardexec.connections GROUP BY 1) c;
	};
	my $start = time;
	my ($ret, $out, $err) = $coord->psql('postgres', $script);
	my $elapsed = time - $start;
	is($ret, 0, '(1) 10,000 router transactions run');
	my ($pool) = $out =~ /^pool (.*)$/m;
	note "(1) pool at the end: $pool; " . sprintf('%.1f s, %.0f transactions/s', $elapsed, 10000 / $elapsed);
	my $total = 0;
	my $most = 0;
	for my $entry (split / /, $pool // '')
	{
		my ($name, $n, $uses) = $entry =~ /^(\w+)=(\d+)\/(\d+)$/;
		$total += $uses;
		$most = $n if $n > $most;
	}
	cmp_ok($most, '<=', 2, '(1) the pool view shows at most 2 connections per node');
	cmp_ok($total, '>=', 10000, '(1) which served every transaction');

	usleep(1_100_000);
	for my $node (@nodes)
	{
		my $opened = sessions($node) - $before{ $node->name } - 1;    # -1: this check
		cmp_ok($opened, '<=', 3, '(1) ' . $node->name . " saw $opened sessions of the coordinator");
	}
}

# ---------------------------------------------------------------------------
# (2) the cap

$coord->safe_psql('postgres', q{
	ALTER SYSTEM SET shardexec.max_shared_pool_size = 3;
	SELECT pg_reload_conf();
});
ok($coord->poll_query_until('postgres', 'SHOW shardexec.max_shared_pool_size', '3'),
	'(2) the cap is 3');
is( query_value($coord, q{
		SELECT string_agg(node_name || '=' || cap, ' ' ORDER BY node_name)
		  FROM shardexec.shared_connection_counts()}),
	'node1=3 node2=3 node3=3', '(2) shared_connection_counts shows the cap');

{
	# a transaction holds 2 connections per node (6 shards of acc, 2 per node)
	my $holder = $coord->background_psql('postgres', on_error_stop => 0);
	$holder->query_safe('BEGIN');
	$holder->query_safe('SELECT count(*) FROM acc');
	is( query_value($coord, q{
			SELECT string_agg(node_name || '=' || connections, ' ' ORDER BY node_name)
			  FROM shardexec.shared_connection_counts()}),
		'node1=2 node2=2 node3=2', '(2) the counts show the connections of that transaction');

	# wide has 4 shards per node: 4 connections wanted, 1 left under the cap
	my $plan = query_value($coord, q{
		EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM wide});
	for my $name (map { $_->name } @nodes)
	{
		like($plan, qr/Node $name: connection-strict, 1 connection, 4 units, rows=\d+/,
			"(2) $name: the statement gets 1 connection and runs connection-strict");
	}
	is(query_value($coord, 'SELECT count(*) FROM wide'), '1200', '(2) with every row');

	# a third transaction takes the last slot of every node and keeps it
	my $third = $coord->background_psql('postgres', on_error_stop => 0);
	$third->query_safe('BEGIN');
	$third->query_safe('SELECT bal FROM acc WHERE id = 1');
	is( query_value($coord, q{
			SELECT string_agg(node_name || '=' || connections, ' ' ORDER BY node_name)
			  FROM shardexec.shared_connection_counts()}),
		'node1=3 node2=3 node3=3',
		'(2) a transaction block holds a slot on every node from its first statement');

	# now nothing is left: a statement waits, then fails
	my $start = time;
	my ($ret, $out, $err) = $coord->psql('postgres', q{
		SET shardexec.pool_wait_timeout = '1s'; SELECT bal FROM acc WHERE id = 2});
	my $waited = time - $start;
	like($err, qr/ERROR:  could not get a connection to node "node\d": the node has shardexec.max_shared_pool_size \(3\) connections/,
		'(2) at the cap, a statement that can get no connection fails');
	like($err, qr/DETAIL:  No connection became free within shardexec.pool_wait_timeout \(1000 ms\)/,
		'(2) after shardexec.pool_wait_timeout');
	cmp_ok($waited, '>=', 0.9, '(2) it waited');
	for my $node (@nodes)
	{
		cmp_ok(pool_connections($node), '<=', 3, '(2) ' . $node->name . ' has at most 3 connections');
	}

	# ... and gets one as soon as one is free
	my $waiter = $coord->background_psql('postgres', on_error_stop => 0);
	$waiter->query_until(qr/waiting/, "\\echo waiting\nSELECT 'got ' || bal FROM acc WHERE id = 3;\n");
	usleep(500_000);
	$third->query_safe('COMMIT');
	$third->quit;
	my ($got) = $waiter->query("SELECT 'done'");
	like($got, qr/got 1000/, '(2) a waiting statement runs once a connection is free');
	is($waiter->{stderr}, '', '(2) without an error');
	$waiter->quit;

	$holder->query_safe('COMMIT');
	$holder->quit;
}

# the counts of a backend that exits are given back
ok( $coord->poll_query_until('postgres', q{
		SELECT sum(connections) = 0 FROM shardexec.shared_connection_counts()}),
	'(2) the counts of backends that exited are given back');
{
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_safe('SELECT count(*) FROM acc');
	is(query_value($coord, 'SELECT sum(connections) FROM shardexec.shared_connection_counts()'),
		'6', '(2) a session with 2 connections per node');
	$coord->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	ok( $coord->poll_query_until('postgres', q{
			SELECT sum(connections) = 0 FROM shardexec.shared_connection_counts()}),
		'(2) terminated (FATAL): its counts are given back');
	eval { $session->quit };
}

# ---------------------------------------------------------------------------
# (3) 32 pgbench clients under a cap of 4 per node

my $cap = 4;
$coord->safe_psql('postgres', qq{
	ALTER SYSTEM SET shardexec.max_shared_pool_size = $cap;
	SELECT pg_reload_conf();
});
ok($coord->poll_query_until('postgres', 'SHOW shardexec.max_shared_pool_size', $cap),
	"(3) the cap is $cap");

my $dir = PostgreSQL::Test::Utils::tempdir;
my %scripts = (
	'router.sql' => q{
\set id random(1, 1000)
SELECT bal FROM acc WHERE id = :id;
},
	'multi.sql' => q{
SELECT count(*), sum(bal) FROM acc;
},
	'transfer.sql' => q{
\set a random(1, 1000)
\set b random(1, 1000)
\set lo least(:a, :b)
\set hi greatest(:a, :b)
\set d random(1, 10)
BEGIN;
UPDATE acc SET bal = bal - :d WHERE id = :lo;
UPDATE acc SET bal = bal + :d WHERE id = :hi;
SELECT bal FROM acc WHERE id = :lo;
END;
});
for my $name (keys %scripts)
{
	open my $fh, '>', "$dir/$name" or die $!;
	print $fh $scripts{$name};
	close $fh;
}

{
	my $clients = 32;
	my $per_client = 25;
	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '-h', $coord->host, '-p', $coord->port,
		'-c', $clients, '-j', 2, '-t', $per_client,
		'-f', "$dir/router.sql\@5", '-f', "$dir/multi.sql\@1", '-f', "$dir/transfer.sql\@4",
		'postgres');
	my $start = time;
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err);
	my %most = map { $_->name => 0 } @nodes;
	my $samples = 0;
	while ($h->pumpable)
	{
		for my $node (@nodes)
		{
			my $n = pool_connections($node);
			$most{ $node->name } = $n if $n > $most{ $node->name };
		}
		$samples++;
		$h->pump_nb;
		usleep(20_000);
	}
	$h->finish;
	my $elapsed = time - $start;
	my $status = $h->result(0);
	note "(3) pgbench: $out";
	note "(3) pgbench stderr: $err" if $err ne '';
	is($status, 0, "(3) pgbench with $clients clients ends without error");
	my $total = $clients * $per_client;
	like($out, qr/number of transactions actually processed: $total\/$total/,
		"(3) every one of the $total transactions completes");
	my ($tps) = $out =~ /tps = ([\d.]+)/;
	note sprintf('(3) %d samples over %.1f s; most pool connections seen: %s; %s tps',
		$samples, $elapsed, join(' ', map { "$_=$most{$_}" } sort keys %most), $tps // '?');
	cmp_ok($samples, '>=', 5, '(3) the nodes were sampled during the run');
	for my $node (@nodes)
	{
		cmp_ok($most{ $node->name }, '<=', $cap,
			'(3) ' . $node->name . " never had more than $cap connections of the coordinator");
		cmp_ok($most{ $node->name }, '>=', 1, '(3) ' . $node->name . ' was used');
	}
}
is(query_value($coord, q{SELECT count(*) || ' ' || sum(bal) FROM acc}), '1000 1000000',
	'(3) the transfers kept the sum of the balances');
is( join(' ', map { node_count($_, 'SELECT count(*) FROM pg_prepared_xacts') } @nodes),
	'0 0 0', '(3) nothing is left prepared');

done_testing();
