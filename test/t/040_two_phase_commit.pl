# test/t/040_two_phase_commit.pl: distributed transactions on real instances.
#
# A coordinator and three nodes; a table of 6 shards (2 per node).  Every
# write of 30 rows below reaches every node, so its commit is two-phase
# (shardexec.use_2pc = auto).  shardexec.test_2pc_fault stops a commit at a
# chosen point, where the test kills the coordinator (pg_ctl -m immediate)
# or a node.
#
#   (1) Killed after the local commit, before COMMIT PREPARED: the
#       transactions stay prepared on the nodes; after the restart the
#       background recovery (shardexec.recovery_interval) commits them on
#       every node and deletes the commit records.
#   (2) Killed after PREPARE, before the commit record: while the
#       coordinator's transaction is still in progress, the background
#       recovery leaves its prepared transactions alone; after the restart
#       it rolls them back everywhere.
#   (3) A node killed in the middle of a multi-node transaction: the
#       transaction fails, and nothing of it is left on any node.  A node
#       killed after it prepared: the others are rolled back at once, and
#       its own prepared transaction by recovery once it is back.
#   (4) A node with max_prepared_transactions = 0: a clear error before
#       anything is prepared anywhere.
#   (5) Two coordinator transactions that wait for each other's row locks
#       on two nodes (a deadlock no node can see) end in a lock timeout
#       error naming the node (shardexec.remote_lock_timeout), not a hang.
#   (6) A frozen node (SIGSTOP of its postmaster and every process) does
#       not stall recovery: each step on a node is bounded by
#       shardexec.recovery_step_timeout (here far below
#       shardexec.connect_timeout), the frozen node is skipped with a
#       warning, the others are resolved, and the frozen one is on the
#       first pass after it is thawed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ShardexecTest qw(start_cluster query_value node_count total_count);

my ($coord, @nodes) = start_cluster(
	nodes => 3,
	coordinator_conf => "shardexec.recovery_interval = 0\n");

$coord->safe_psql('postgres', q{
	CREATE TABLE t (id bigint PRIMARY KEY, batch int NOT NULL, v int);
	SELECT shardexec.create_distributed_table('t', 'id', 6);
});

# the shard tables of t on each node: name => [ tables ]
my %shards;
for my $line (split /\n/, $coord->safe_psql('postgres', q{
	SELECT node_name, shard_table FROM shardexec.shards
	 WHERE table_name = 't'::regclass ORDER BY shard_index}))
{
	my ($node, $table) = split /\|/, $line;
	push @{ $shards{$node} }, $table;
}

# rows of batch $batch on each node, read directly on the node
sub batch_rows_on
{
	my ($node, $batch) = @_;
	my $sum = 0;
	$sum += node_count($node, "SELECT count(*) FROM $_ WHERE batch = $batch")
	  for @{ $shards{ $node->name } };
	return $sum;
}

sub batch_rows_everywhere
{
	my ($batch) = @_;
	return join(' ', map { $_->name . '=' . batch_rows_on($_, $batch) } @nodes);
}

# where the coordinator places the 30 rows of batch $batch, in the same form
sub batch_placement
{
	my ($batch) = @_;
	return query_value($coord, qq{
		SELECT string_agg(n.node_name || '=' || coalesce(c.rows, 0), ' ' ORDER BY n.node_name)
		  FROM shardexec.nodes n
		  LEFT JOIN (SELECT s.node_name, count(*) AS rows
		               FROM generate_series(1, 30) g
		               JOIN shardexec.shards s
		                 ON s.shard_id = shardexec.shard_id_for_value('t', (g + $batch * 1000)::bigint)
		              GROUP BY 1) c USING (node_name)});
}

sub prepared_everywhere
{
	return join(' ',
		map { $_->name . '=' . node_count($_, 'SELECT count(*) FROM pg_prepared_xacts') }
		  @nodes);
}

# whether every node has at least one prepared transaction
sub prepared_on_every_node
{
	for my $node (@nodes)
	{
		return 0 if node_count($node, 'SELECT count(*) FROM pg_prepared_xacts') == 0;
	}
	return 1;
}

# wait until every node has a prepared transaction
sub wait_prepared_everywhere
{
	for my $node (@nodes)
	{
		return 0
		  unless $node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM pg_prepared_xacts');
	}
	return 1;
}

# 30 rows of batch $batch, on every node
sub insert_sql
{
	my ($batch) = @_;
	return "INSERT INTO t SELECT g + $batch * 1000, $batch, g FROM generate_series(1, 30) g";
}

is(batch_rows_everywhere(0), 'node1=0 node2=0 node3=0', 'empty at the start');

# a two-phase commit that goes through
$coord->safe_psql('postgres', insert_sql(1));
is(batch_rows_everywhere(1), batch_placement(1), 'a write on three nodes commits');
unlike(batch_placement(1), qr/=0/, 'every node has rows of it');
is(prepared_everywhere(), 'node1=0 node2=0 node3=0', 'nothing stays prepared');

# ---------------------------------------------------------------------------
# (1) coordinator killed after the local commit, before COMMIT PREPARED

{
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	$session->query_safe("SET shardexec.test_2pc_fault = 'sleep_before_commit_prepared'");
	$session->query_until(qr/started/, "\\echo started\n" . insert_sql(2) . ";\n");

	# the records become visible with the local commit
	ok( $coord->poll_query_until('postgres',
			'SELECT count(*) >= 3 FROM shardexec.transaction_record'),
		'(1) the commit records are committed');
	ok(prepared_on_every_node(), '(1) the remote transactions are prepared on every node');
	is(batch_rows_everywhere(2), 'node1=0 node2=0 node3=0',
		'(1) and not committed yet');

	$coord->stop('immediate');
	eval { $session->quit };
}
$coord->append_conf('postgresql.conf', "shardexec.recovery_interval = 1s\n");
$coord->start;
for my $node (@nodes)
{
	ok( $node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
		'(1) after the restart, recovery resolves what was prepared on ' . $node->name);
}
is(batch_rows_everywhere(2), batch_placement(2),
	'(1) recovery committed the transaction on every node');
is(query_value($coord, 'SELECT count(*) FROM t WHERE batch = 2'), '30',
	'(1) the coordinator sees all of it');
ok($coord->poll_query_until('postgres', 'SELECT count(*) = 0 FROM shardexec.transaction_record'),
	'(1) and recovery deleted the commit records');
ok($coord->log_contains(qr/committed prepared transaction "shardexec_\d+_\d+_\d+_\d+_\d+" on node "node\d"/),
	'(1) the log says what recovery committed');

# ---------------------------------------------------------------------------
# (2) coordinator killed after PREPARE, before the commit record

{
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	$session->query_safe("SET shardexec.test_2pc_fault = 'sleep_after_prepare'");
	$session->query_until(qr/started/, "\\echo started\n" . insert_sql(3) . ";\n");

	for my $node (@nodes)
	{
		ok( $node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM pg_prepared_xacts'),
			'(2) prepared on ' . $node->name);
	}
	my $prepared = prepared_everywhere();
	# the background recovery runs every second meanwhile
	sleep 3;
	is(prepared_everywhere(), $prepared,
		'(2) recovery leaves the prepared transactions of a transaction in progress alone');
	is(query_value($coord, 'SELECT count(*) FROM shardexec.transaction_record'), '0',
		'(2) no commit record yet');

	$coord->stop('immediate');
	eval { $session->quit };
}
$coord->start;
for my $node (@nodes)
{
	ok( $node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
		'(2) after the restart, recovery resolves what was prepared on ' . $node->name);
}
is(batch_rows_everywhere(3), 'node1=0 node2=0 node3=0',
	'(2) recovery rolled the transaction back on every node');
is(query_value($coord, 'SELECT count(*) FROM t WHERE batch = 3'), '0',
	'(2) the coordinator sees none of it');
ok($coord->log_contains(qr/rolled back prepared transaction "shardexec_\d+_\d+_\d+_\d+_\d+" on node "node\d"/),
	'(2) the log says what recovery rolled back');

# ---------------------------------------------------------------------------
# (3) a node killed in the middle of a multi-node transaction

my $node2 = $nodes[1];
{
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	$session->query_safe('BEGIN');
	$session->query_safe(insert_sql(4));
	$node2->stop('immediate');
	my ($out, $err) = $session->query('COMMIT');
	ok($err, '(3) a node killed before the commit fails the transaction');
	like($session->{stderr}, qr/node2/, '(3) the error names the node');
	$session->quit;
}
$node2->start;
is(batch_rows_everywhere(4), 'node1=0 node2=0 node3=0', '(3) nothing of it is left on any node');
is(prepared_everywhere(), 'node1=0 node2=0 node3=0', '(3) nothing is left prepared');

# ... in the middle of a statement: the statement fails, the transaction too
{
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	$session->query_safe('BEGIN');
	$session->query_safe(insert_sql(5));
	$node2->stop('immediate');
	my ($out, $err) = $session->query("UPDATE t SET v = v + 1 WHERE batch = 5");
	ok($err, '(3) a statement that reaches the killed node fails');
	$session->query('COMMIT');
	$session->quit;
}
$node2->start;
is(batch_rows_everywhere(5), 'node1=0 node2=0 node3=0', '(3) nothing of that one is left either');

# ... after it prepared: the coordinator is woken from its sleep after
# PREPARE by a cancel, rolls back what it can reach, and recovery the rest
{
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_safe("SET shardexec.test_2pc_fault = 'sleep_after_prepare'");
	$session->query_until(qr/started/, "\\echo started\n" . insert_sql(6) . ";\n");
	ok(wait_prepared_everywhere(),
		'(3) prepared on every node');
	$node2->stop('immediate');
	$coord->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	my ($out, $err) = $session->query("SELECT 'after'");
	like($session->{stderr}, qr/canceling statement due to user request/,
		'(3) the transaction is cancelled after PREPARE');
	$session->quit;
}
is( join(' ', map { $_->name . '=' . node_count($_, 'SELECT count(*) FROM pg_prepared_xacts') }
		  ($nodes[0], $nodes[2])),
	'node1=0 node3=0', '(3) the nodes that answer are rolled back at once');
$node2->start;
ok($node2->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
	'(3) recovery rolls back what stayed prepared on node2 once it is back');
is(batch_rows_everywhere(6), 'node1=0 node2=0 node3=0', '(3) nothing of it is left anywhere');

# ---------------------------------------------------------------------------
# (4) a node without prepared transactions

my $node3 = $nodes[2];
$node3->append_conf('postgresql.conf', "max_prepared_transactions = 0\n");
$node3->restart;
{
	my ($ret, $stdout, $stderr) = $coord->psql('postgres', insert_sql(7));
	like($stderr, qr/ERROR:  node "node3" does not allow prepared transactions/,
		'(4) a write that needs two-phase commit on a node without it fails');
	like($stderr, qr/HINT:  Set max_prepared_transactions above zero on the node/,
		'(4) with a hint');
}
is(prepared_everywhere(), 'node1=0 node2=0 node3=0', '(4) nothing was prepared anywhere');
is(batch_rows_everywhere(7), 'node1=0 node2=0 node3=0', '(4) nothing was written');
$coord->safe_psql('postgres', 'SET shardexec.use_2pc = off; ' . insert_sql(7));
is(batch_rows_everywhere(7), batch_placement(7), '(4) with use_2pc = off, it commits');
$node3->append_conf('postgresql.conf', "max_prepared_transactions = 20\n");
$node3->restart;

# ---------------------------------------------------------------------------
# (5) a deadlock across two nodes ends in an error

# a row on node1 and a row on node2
my ($a, $b);
for my $id (split /\n/, query_value($coord, 'SELECT id FROM t WHERE batch = 1 ORDER BY id'))
{
	my $node = query_value($coord, qq{
		SELECT node_name FROM shardexec.shards
		 WHERE shard_id = shardexec.shard_id_for_value('t', ${id}::bigint)});
	$a //= $id if $node eq 'node1';
	$b //= $id if $node eq 'node2';
}
ok(defined $a && defined $b, '(5) a row on node1 and a row on node2');
my $before = query_value($coord, "SELECT string_agg(v::text, ',' ORDER BY id) FROM t WHERE id IN ($a, $b)");

{
	my $s1 = $coord->background_psql('postgres', on_error_stop => 0);
	my $s2 = $coord->background_psql('postgres', on_error_stop => 0);
	$_->query_safe("SET shardexec.remote_lock_timeout = '2s'") for ($s1, $s2);
	$s1->query_safe('BEGIN');
	$s2->query_safe('BEGIN');
	$s1->query_safe("UPDATE t SET v = v + 1 WHERE id = $a");
	$s2->query_safe("UPDATE t SET v = v + 1 WHERE id = $b");
	my $start = time;
	$s1->query_until(qr/s1 waits/, "\\echo s1 waits\nUPDATE t SET v = v + 1 WHERE id = $b;\n");
	my ($out2, $err2) = $s2->query("UPDATE t SET v = v + 1 WHERE id = $a");
	my ($out1, $err1) = $s1->query("SELECT 'done'");
	my $elapsed = time - $start;
	my $errors = $s1->{stderr} . $s2->{stderr};
	like($errors, qr/canceling statement due to lock timeout/,
		'(5) the deadlock ends in a lock timeout error');
	like($errors, qr/remote SQL command on node "node[12]"/, '(5) the error names the node');
	cmp_ok($elapsed, '<', 20, '(5) within seconds, not a hang');
	$s1->query('ROLLBACK');
	$s2->query('ROLLBACK');
	$_->quit for ($s1, $s2);
}
is(query_value($coord, "SELECT string_agg(v::text, ',' ORDER BY id) FROM t WHERE id IN ($a, $b)"),
	$before, '(5) both rolled back');
is( query_value($coord, q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE wait_event_type = 'Lock' OR state = 'idle in transaction'}),
	'0', '(5) nothing is left waiting');

# ---------------------------------------------------------------------------
# (6) a frozen node does not stall recovery

my @frozen;
END { kill 'CONT', @frozen if @frozen; }
{
	my $session = $coord->background_psql('postgres', on_error_stop => 0);
	$session->query_safe("SET shardexec.test_2pc_fault = 'sleep_after_prepare'");
	$session->query_until(qr/started/, "\\echo started\n" . insert_sql(8) . ";\n");
	ok(wait_prepared_everywhere(), '(6) prepared on every node');
	$coord->stop('immediate');
	eval { $session->quit };
}
# node2 stops answering anything, even a connection request
my $pm = $node2->{_pid};
@frozen = ($pm, split(' ', `ps -o pid= --ppid $pm`));
kill 'STOP', @frozen;
$coord->append_conf('postgresql.conf',
	"shardexec.connect_timeout = 600\nshardexec.recovery_step_timeout = '2s'\n");
$coord->start;
for my $node ($nodes[0], $nodes[2])
{
	ok( $node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
		'(6) with node2 frozen, recovery resolves what was prepared on ' . $node->name);
}
ok( $coord->log_contains(
		qr/WARNING:  shardexec recovery on node "node2": no answer within 2000 ms/),
	'(6) the frozen node was skipped with a warning once its step timed out');
kill 'CONT', @frozen;
@frozen = ();
ok($node2->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
	'(6) thawed, node2 is resolved too');
is(batch_rows_everywhere(8), 'node1=0 node2=0 node3=0', '(6) nothing of it is left anywhere');

done_testing();
