# test/t/050_limits.pl: 1024 shards on 4 nodes, connection caps, and a
# result larger than work_mem in connection-strict mode.
#
# A coordinator and four nodes, shardexec.max_shared_pool_size = 6 (a
# node takes at most 6 connections from all the coordinator's backends),
# shardexec.max_connections_per_query = 4.
#
#   (1) A table of 1024 shards (256 per node) and one colocated with it:
#       create_distributed_table moves existing rows; router and
#       multi-shard reads, aggregates, a colocated join, INSERT, COPY,
#       UPDATE and DELETE on every shard, and DDL (ADD COLUMN, CREATE
#       INDEX) on 1024 shards give the answers the same statements give
#       on a local copy, and the rows on the nodes add up.  With 256
#       shard queries per node over at most 4 connections, every
#       multi-shard statement runs connection-strict.
#   (2) Three sessions run multi-shard queries over the 1024 shards at
#       the same time while node1 holds them up (a lock on its shards):
#       node1 never serves more than shardexec.max_shared_pool_size
#       connections of the coordinator, shardexec.shared_connection_counts()
#       never counts more (and node1's cap is reached: the sessions wait
#       for one another's connections), the other nodes stay within the
#       cap too, and every query completes with the right answer once the
#       lock is gone.
#   (3) With work_mem = 64kB and one connection per node (connection-
#       strict), a result of 20 MB is read into tuplestores that spill to
#       temporary files (log_temp_files shows them), and comes back whole.
#   (4) undistribute_table of the 1024 shards brings every row back and
#       leaves no shard table on any node.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ShardexecTest qw(start_cluster query_value node_count);

my $cap = 6;
my $per_query = 4;

my ($coord, @nodes) = start_cluster(
	nodes => 4,
	coordinator_conf => <<"EOC",
shardexec.max_shared_pool_size = $cap
shardexec.max_connections_per_query = $per_query
log_temp_files = 0
EOC
	node_conf => "max_connections = 60\n");

my $start = time;

# node_rows: the rows of $table's shards stored on $node, in one query
sub node_rows
{
	my ($node, $table) = @_;
	my $shards = query_value($coord, qq{
		SELECT string_agg(quote_literal(shard_table), ', ') FROM shardexec.shards
		 WHERE table_name = '$table'::regclass AND node_name = '@{[ $node->name ]}'});
	return 0 if $shards eq '';
	return node_count($node, qq{
		SELECT coalesce(sum((xpath('/row/c/text()',
		         query_to_xml('SELECT count(*) AS c FROM ' || s, false, true, '')))[1]::text::bigint), 0)
		  FROM unnest(ARRAY[$shards]) s});
}

# both: runs $sql on the distributed tables (schema public) and on local
# copies (schema local); returns the two outputs
sub both
{
	my ($sql) = @_;
	my $dist = $coord->safe_psql('postgres', "SET search_path = public; $sql");
	my $local = $coord->safe_psql('postgres', "SET search_path = local; $sql");
	return ($dist, $local);
}

sub same
{
	my ($sql, $label) = @_;
	my ($dist, $local) = both($sql);
	is($dist, $local, $label);
	return $dist;
}

# ---------------------------------------------------------------------------
# (1) 1024 shards

$coord->safe_psql('postgres', q{
	CREATE SCHEMA local;
	CREATE TABLE accounts (id bigint PRIMARY KEY, grp int, balance numeric, pad text);
	CREATE TABLE moves (account_id bigint, move_id int, amount numeric,
	                    PRIMARY KEY (account_id, move_id));
	INSERT INTO accounts SELECT g, g % 97, g % 1000, repeat('x', g % 50)
	  FROM generate_series(1, 20000) g;
	INSERT INTO moves SELECT g % 20000 + 1, g, (g % 77) - 30 FROM generate_series(1, 40000) g;
	CREATE TABLE local.accounts AS SELECT * FROM accounts;
	CREATE TABLE local.moves AS SELECT * FROM moves;
});
my $t0 = time;
$coord->safe_psql('postgres', q{
	SELECT shardexec.create_distributed_table('accounts', 'id', 1024);
	SELECT shardexec.create_distributed_table('moves', 'account_id', 1024,
	                                          colocate_with => 'accounts');
});
note sprintf('create_distributed_table of 2 x 1024 shards: %.1f s', time - $t0);

is( query_value($coord, q{
		SELECT string_agg(node_name || '=' || n, ' ' ORDER BY node_name)
		  FROM (SELECT node_name, count(*) n FROM shardexec.shards
		         WHERE table_name = 'accounts'::regclass GROUP BY 1) s}),
	'node1=256 node2=256 node3=256 node4=256',
	'1024 shards: 256 on each of the 4 nodes');

my $sum = 0;
$sum += node_rows($_, 'accounts') for @nodes;
is($sum, 20000, '1024 shards: the existing rows moved to the shards, each once');

same('SELECT count(*), sum(balance), sum(length(pad)) FROM accounts',
	'1024 shards: multi-shard aggregate');
same('SELECT * FROM accounts WHERE id = 4242', '1024 shards: router query');
same('SELECT grp, count(*), sum(balance) FROM accounts GROUP BY grp ORDER BY 3 DESC, 1 LIMIT 5',
	'1024 shards: grouped, ordered, limited');
same('SELECT id, balance FROM accounts ORDER BY balance DESC, id LIMIT 7',
	'1024 shards: ORDER BY ... LIMIT over every shard');
same(q{SELECT a.grp, count(*), sum(m.amount) FROM accounts a JOIN moves m ON m.account_id = a.id
        WHERE a.grp < 5 GROUP BY a.grp ORDER BY 1},
	'1024 shards: colocated join');
like(
	$coord->safe_psql('postgres', q{
		SET shardexec.max_connections_per_query = 4;
		EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM accounts}),
	qr/Execution Units: 1024.*Node node1: connection-strict, 4 connections, 256 units/s,
	'1024 shards: EXPLAIN ANALYZE shows 1024 units, connection-strict over 4 connections per node');

# writes: every statement on both sides
my @writes = (
	q{INSERT INTO accounts SELECT g, g % 97, 0, 'new' FROM generate_series(20001, 21000) g},
	q{INSERT INTO accounts VALUES (30001, 1, 1, 'a'), (30002, 2, 2, 'b'), (30003, 3, 3, 'c')},
	q{UPDATE accounts SET balance = balance + 1 WHERE grp = 7},
	q{DELETE FROM accounts WHERE id % 100 = 0},
	q{UPDATE moves SET amount = -amount WHERE move_id % 3 = 0},
);
for my $w (@writes)
{
	both($w);
}
$coord->safe_psql('postgres', q{
	COPY accounts FROM PROGRAM 'seq 40001 41000 | sed "s/$/\t5\t5\tcopied/"';
	COPY local.accounts FROM PROGRAM 'seq 40001 41000 | sed "s/$/\t5\t5\tcopied/"';
});
same('SELECT count(*), sum(balance), count(DISTINCT grp), md5(string_agg(id::text, \',\' ORDER BY id)) FROM accounts',
	'1024 shards: INSERT, UPDATE, DELETE and COPY on every shard give the same rows');
same('SELECT count(*), sum(amount) FROM moves', '1024 shards: UPDATE on the colocated table');

# DDL on 1024 shards
$t0 = time;
$coord->safe_psql('postgres', q{
	ALTER TABLE accounts ADD COLUMN note text DEFAULT 'n';
	CREATE INDEX accounts_grp ON accounts (grp);
	ALTER TABLE local.accounts ADD COLUMN note text DEFAULT 'n';
});
note sprintf('ADD COLUMN and CREATE INDEX on 1024 shards: %.1f s', time - $t0);
is( node_count($nodes[2], q{
		SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'accounts_grp_%'}),
	256, 'CREATE INDEX: node3 has the index on each of its 256 shards');
same(q{SELECT note, count(*) FROM accounts WHERE grp = 3 GROUP BY note},
	'ADD COLUMN: the new column reads the same');

# ---------------------------------------------------------------------------
# (2) concurrent sessions against the caps

{
	my $node1 = $nodes[0];
	my $shards = query_value($coord, q{
		SELECT string_agg(shard_table, ', ') FROM shardexec.shards
		 WHERE table_name = 'accounts'::regclass AND node_name = 'node1'});
	my $locker = $node1->background_psql('postgres', on_error_stop => 0);
	$locker->query_safe("BEGIN; LOCK TABLE $shards IN ACCESS EXCLUSIVE MODE;");

	my $expected = query_value($coord,
		"SELECT count(*) || ' ' || sum(balance) FROM local.accounts");
	my @sessions;
	for my $i (1 .. 3)
	{
		my $s = $coord->background_psql('postgres', on_error_stop => 0);
		$s->query_safe('SET shardexec.pool_wait_timeout = 60000');
		$s->query_until(qr/started/, "\\echo started\n"
			  . "SELECT 'result ' || count(*) || ' ' || sum(balance) FROM accounts;\n");
		push @sessions, $s;
	}

	# sample every node while they wait
	my %max = map { $_->name => 0 } @nodes;
	my $max_counted = 0;
	my $deadline = time + 4;
	while (time < $deadline)
	{
		for my $node (@nodes)
		{
			my $n = node_count($node, q{
				SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shardexec'});
			$max{ $node->name } = $n if $n > $max{ $node->name };
		}
		my $c = node_count($coord, q{
			SELECT coalesce(max(connections), 0) FROM shardexec.shared_connection_counts()});
		$max_counted = $c if $c > $max_counted;
		usleep(100_000);
	}
	for my $node (@nodes)
	{
		my $n = $max{ $node->name };
		ok($n <= $cap,
			'caps: ' . $node->name
			  . " served at most shardexec.max_shared_pool_size ($cap) connections (saw $n)");
	}
	is($max{node1}, $cap, "caps: three sessions wanting $per_query each filled node1's cap");
	ok($max_counted <= $cap,
		"caps: shared_connection_counts() never counted more than $cap for a node (saw $max_counted)");

	$locker->query_safe('COMMIT');
	$locker->quit;
	for my $i (0 .. $#sessions)
	{
		my $s = $sessions[$i];
		my ($out) = $s->query("SELECT 'done'");
		like($out, qr/^result \Q$expected\E$/m,
			'caps: session ' . ($i + 1) . ' completes with the right answer');
		is($s->{stderr}, '', 'caps: session ' . ($i + 1) . ' had no error');
		$s->quit;
	}
	ok( $coord->poll_query_until('postgres', q{
			SELECT coalesce(sum(connections), 0) = 0 FROM shardexec.shared_connection_counts()}),
		'caps: once the sessions are gone, no connection is counted');
}

# ---------------------------------------------------------------------------
# (3) a result larger than work_mem, connection-strict: spilled

{
	$coord->safe_psql('postgres', q{
		CREATE TABLE wide (id bigint, pad text);
		SELECT shardexec.create_distributed_table('wide', 'id', 16);
		INSERT INTO wide SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 100000) g;
	});
	my $offset = -s $coord->logfile;
	my $out = $coord->safe_psql('postgres', q{
		SET work_mem = '64kB';
		SET shardexec.max_connections_per_query = 1;
		SELECT pg_backend_pid();
		\o /dev/null
		SELECT id, pad FROM wide;
		\o
		SELECT count(*), sum(length(pad)) FROM (SELECT id, pad FROM wide) w;
		EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id, pad FROM wide;
	});
	my ($pid) = $out =~ /^(\d+)$/m;
	like($out, qr/^100000\|19200000$/m, 'spill: the 19 MB result comes back whole');
	like($out, qr/Node node1: connection-strict, 1 connections?, 4 units/,
		'spill: connection-strict, one connection per node');
	my $log = slurp_file($coord->logfile, $offset);
	my $spilled = () = $log =~ /\[$pid\].*LOG:  temporary file: path/g;
	ok($spilled >= 4, "spill: the shard results went to $spilled temporary files");
}

# ---------------------------------------------------------------------------
# (4) undistribute 1024 shards

$t0 = time;
$coord->safe_psql('postgres', q{SELECT shardexec.undistribute_table('moves')});
$coord->safe_psql('postgres', q{SELECT shardexec.undistribute_table('accounts')});
note sprintf('undistribute_table of 2 x 1024 shards: %.1f s', time - $t0);
is( query_value($coord, 'SELECT count(*) FROM shardexec.shards WHERE table_name::text IN (\'accounts\', \'moves\')'),
	'0', 'undistribute: no shard left in the metadata');
for my $node (@nodes)
{
	is( node_count($node, q{
			SELECT count(*) FROM pg_class WHERE relname ~ '^(accounts|moves)_[0-9]+$'}),
		0, 'undistribute: no shard table left on ' . $node->name);
}
same('SELECT count(*), sum(balance), md5(string_agg(id::text, \',\' ORDER BY id)) FROM accounts',
	'undistribute: every row is back in the local table');

my $log = slurp_file($coord->logfile);
unlike($log, qr/terminated by signal/, 'no coordinator process was terminated by a signal');
note sprintf('050_limits: %.0f s', time - $start);

done_testing();
