# test/t/002_failure_atomicity.pl: a failure on one node leaves nothing
# behind, on real instances.
#
# A coordinator and three nodes.  create_distributed_table (and
# create_reference_table) runs in the caller's transaction, and the shard
# tables are created and filled inside remote transactions that follow it,
# so whatever goes wrong on one node, the statement fails and:
#   - the error names the node;
#   - no shard table (nor the schema created for it) remains on any node;
#   - the coordinator's metadata (shardexec.tables, shardexec.shards, the
#     catalog tables behind them) has no trace of the attempt;
#   - the local table still has all its rows;
#   - once the cause is gone, the same call succeeds.
# The failures:
#   (a) a node is down before the call starts;
#   (a') a node dies while the call runs: the call is held on that node by
#        a lock on the table's schema (an uncommitted DROP SCHEMA in
#        another session), the other nodes have meanwhile created their
#        shards in their open remote transactions, then the node is
#        stopped in immediate mode;
#   (a'') the call is cancelled (statement_timeout) while a node holds it
#         up in the same way: the node's waiting statement is cancelled too;
#   (d) the caller's transaction is rolled back, fails later, or rolls
#       back to a savepoint taken before the call;
#   (b) one node rejects the creation of one of its shards (a table of the
#       shard's predicted name already exists there) after the other
#       nodes created theirs;
#   (b') one node rejects some rows during the row move (a domain whose
#        CHECK is stricter on that node), after every shard was created
#        and rows were copied to the other nodes.
# Then DDL on a distributed table (ALTER TABLE, CREATE INDEX, TRUNCATE,
# DROP TABLE):
#   (c) with a node down, the statement fails, and the coordinator's
#       catalog and the other nodes are unchanged;
#   (c') with one node rejecting it (a conflicting column added by hand on
#        one shard), the nodes that had applied it roll it back.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ShardexecTest qw(start_cluster query_value node_count shard_row_counts);

my ($coord, @nodes) = start_cluster(nodes => 3);
my ($node1, $node2, $node3) = @nodes;

# fingerprint: "count md5" over the rows of $table read on the coordinator.
sub fingerprint
{
	my ($table) = @_;
	return query_value($coord,
		"SELECT count(*) || ' ' || md5(string_agg(r::text, E'\\n' ORDER BY id)) FROM $table r");
}

# run_fails: runs $sql on the coordinator, expecting an error; returns its
# stderr.
sub run_fails
{
	my ($sql, $test_name) = @_;
	my ($ret, $stdout, $stderr) = $coord->psql('postgres', $sql);
	isnt($ret, 0, "$test_name: the statement fails");
	return $stderr;
}

# tables_on: the tables on $node whose name starts with "$relname_", as a
# sorted, comma-separated list ("" if none).
sub tables_on
{
	my ($node, $relname) = @_;
	return query_value($node, qq{
		SELECT coalesce(string_agg(schemaname || '.' || tablename, ',' ORDER BY 1), '')
		  FROM pg_tables WHERE tablename LIKE '${relname}\\_%'});
}

# remote_xacts_closed: waits until $node has no transaction of the
# coordinator's left open or prepared.
sub remote_xacts_closed
{
	my ($node) = @_;
	return $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE application_name = 'shardexec' AND state LIKE 'idle in transaction%'})
	  && query_value($node, 'SELECT count(*) FROM pg_prepared_xacts') eq '0';
}

my $colocations_before;

# check_nothing_left: after a failed create_distributed_table of
# $qualified (schema.relname, fingerprint $before), on $live_nodes.
sub check_nothing_left
{
	my ($qualified, $before, $label, $live_nodes) = @_;
	my ($schema, $relname) = split /\./, $qualified;

	is( query_value($coord, qq{
			SELECT (SELECT count(*) FROM shardexec.tables WHERE table_name = '$qualified'::regclass)
			     + (SELECT count(*) FROM shardexec.shards WHERE table_name = '$qualified'::regclass)
			     + (SELECT count(*) FROM shardexec.dist_table WHERE table_id = '$qualified'::regclass)
			     + (SELECT count(*) FROM shardexec.shard WHERE table_id = '$qualified'::regclass)}),
		'0', "$label: the coordinator's metadata has no trace of $qualified");
	is(query_value($coord, 'SELECT count(*) FROM shardexec.colocation'),
		$colocations_before, "$label: no colocation group was recorded");
	for my $node (@$live_nodes)
	{
		is(tables_on($node, $relname), '',
			"$label: no shard table of $qualified is left on " . $node->name);
		ok(remote_xacts_closed($node),
			"$label: no remote transaction is left open or prepared on " . $node->name);
	}
	is(fingerprint($qualified), $before, "$label: the local table still has all its rows");
	ok(query_value($coord, "SELECT pg_relation_size('$qualified') > 0") eq 't',
		"$label: the rows are still in the local table's own storage");
}

# next_shard_id: the shard id the next create_distributed_table will take
# first (shard ids come from shardexec.shard_id_seq, one per shard, in
# shard index order).
sub next_shard_id
{
	my ($last, $called) = split /\|/,
	  query_value($coord, 'SELECT last_value, is_called FROM shardexec.shard_id_seq');
	return $called eq 't' ? $last + 1 : $last;
}

$coord->safe_psql('postgres', q{
	CREATE TABLE items (
		id bigint PRIMARY KEY,
		name text NOT NULL,
		qty int CHECK (qty >= 0),
		added date DEFAULT '2024-01-01'
	);
	INSERT INTO items
	SELECT g, 'item ' || g, g % 50, date '2024-01-01' + g % 365
	  FROM generate_series(1, 3000) g;
});
my $items_before = fingerprint('items');
$colocations_before = query_value($coord, 'SELECT count(*) FROM shardexec.colocation');

# ---------------------------------------------------------------------------
# (a) a node is down before the call starts

$node2->stop('immediate');

my $err = run_fails(q{SELECT shardexec.create_distributed_table('items', 'id', 6)},
	'(a) create_distributed_table with node2 down');
like($err, qr/ERROR:.*"node2"/, '(a) the error names node2');
check_nothing_left('public.items', $items_before, '(a)', [ $node1, $node3 ]);

$err = run_fails(q{SELECT shardexec.create_reference_table('items')},
	'(a) create_reference_table with node2 down');
like($err, qr/ERROR:.*"node2"/, '(a) the error of create_reference_table names node2');
check_nothing_left('public.items', $items_before, '(a) reference', [ $node1, $node3 ]);

$node2->start;
$coord->safe_psql('postgres', q{SELECT shardexec.create_distributed_table('items', 'id', 6)});
is(fingerprint('items'), $items_before,
	'(a) after node2 is back, create_distributed_table succeeds and the rows read back');
{
	my $rows = shard_row_counts($coord, \@nodes, 'items');
	is(join(' ', sort keys %$rows), 'node1 node2 node3',
		'(a) every node holds shards of items');
	my $sum = 0;
	$sum += $_ for values %$rows;
	is($sum, 3000, '(a) the shards on the nodes hold the 3000 rows');
}
$colocations_before = query_value($coord, 'SELECT count(*) FROM shardexec.colocation');

# ---------------------------------------------------------------------------
# (a') a node dies while the call runs

# The table lives in schema app, which exists on node2 only.  On node2 a
# session holds an uncommitted DROP SCHEMA app, so the coordinator's
# CREATE TABLE app.events_<id> waits there for the schema's lock, while
# node1 and node3 create the schema and their shards in their open remote
# transactions.
$node2->safe_psql('postgres', 'CREATE SCHEMA app');
$coord->safe_psql('postgres', q{
	CREATE SCHEMA app;
	CREATE TABLE app.events (id bigint PRIMARY KEY, kind text NOT NULL, payload jsonb);
	INSERT INTO app.events
	SELECT g, 'kind ' || g % 7, jsonb_build_object('g', g) FROM generate_series(1, 2000) g;
});
my $events_before = fingerprint('app.events');

my $blocker = $node2->background_psql('postgres');
$blocker->query_safe('BEGIN; DROP SCHEMA app;');

my $session = $coord->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, q{
\echo started
SELECT shardexec.create_distributed_table('app.events', 'id', 6);
});

ok( $node2->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM pg_stat_activity
		 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'}),
	"(a') the coordinator's shard creation waits for the schema lock on node2");
for my $node ($node1, $node3)
{
	ok( $node->poll_query_until('postgres', q{
			SELECT count(*) > 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND state = 'idle in transaction'}),
		"(a') " . $node->name . ' has run its part inside an open remote transaction');
}

$node2->stop('immediate');
eval { $blocker->quit; };

# the failed call, then a query in the same session: the session survives
my ($out) = $session->query('SELECT 42 AS still_alive');
like($session->{stderr}, qr/ERROR:.*"node2"/,
	"(a') create_distributed_table fails with an error naming node2");
unlike($session->{stderr}, qr/FATAL/, "(a') the node's FATAL is not re-raised as FATAL");
is($out, '42', "(a') the coordinator session survives the node's death");
$session->quit;

check_nothing_left('app.events', $events_before, "(a')", [ $node1, $node3 ]);
for my $node ($node1, $node3)
{
	is(query_value($node, q{SELECT count(*) FROM pg_namespace WHERE nspname = 'app'}), '0',
		"(a') the schema created for the shards is gone from " . $node->name);
}

$node2->start;
is(tables_on($node2, 'events'), '', "(a') node2 has no shard of app.events after its restart");
$coord->safe_psql('postgres', q{SELECT shardexec.create_distributed_table('app.events', 'id', 6)});
is(fingerprint('app.events'), $events_before,
	"(a') after node2 is back, create_distributed_table succeeds and the rows read back");
$colocations_before = query_value($coord, 'SELECT count(*) FROM shardexec.colocation');

# ---------------------------------------------------------------------------
# (a'') the call is cancelled while a node holds it up

# As in (a'), node2 holds the shard creation on a schema lock; this time
# the coordinator's statement_timeout cancels the call.  The remote work
# must be cancelled too: node2's waiting statement goes away while the
# lock is still held, and nothing is left anywhere.
$node2->safe_psql('postgres', 'CREATE SCHEMA slow');
$coord->safe_psql('postgres', q{
	CREATE SCHEMA slow;
	CREATE TABLE slow.audit (id bigint PRIMARY KEY, what text);
	INSERT INTO slow.audit SELECT g, 'what ' || g FROM generate_series(1, 1000) g;
});
my $audit_before = fingerprint('slow.audit');

$blocker = $node2->background_psql('postgres');
$blocker->query_safe('BEGIN; DROP SCHEMA slow;');

$err = run_fails(q{
	SET statement_timeout = '2s';
	SELECT shardexec.create_distributed_table('slow.audit', 'id', 6);},
	"(a'') create_distributed_table cancelled by statement_timeout");
like($err, qr/canceling statement due to statement timeout/,
	"(a'') the error is the statement timeout");
ok( $node2->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'}),
	"(a'') the statement waiting on node2 was cancelled while the lock is still held");
check_nothing_left('slow.audit', $audit_before, "(a'')", [ $node1, $node3 ]);
$blocker->query_safe('ROLLBACK');
$blocker->quit;
check_nothing_left('slow.audit', $audit_before, "(a'') after node2's lock is released",
	[$node2]);
$coord->safe_psql('postgres', q{SELECT shardexec.create_distributed_table('slow.audit', 'id', 6)});
is(fingerprint('slow.audit'), $audit_before,
	"(a'') without the lock, create_distributed_table succeeds");
$colocations_before = query_value($coord, 'SELECT count(*) FROM shardexec.colocation');

# ---------------------------------------------------------------------------
# (d) the caller's transaction or savepoint is rolled back

$coord->safe_psql('postgres', q{
	CREATE TABLE undone (id bigint PRIMARY KEY, v text);
	INSERT INTO undone SELECT g, 'v' || g FROM generate_series(1, 1200) g;
});
my $undone_before = fingerprint('undone');

$coord->safe_psql('postgres', q{
	BEGIN;
	SELECT shardexec.create_distributed_table('undone', 'id', 6);
	INSERT INTO undone VALUES (5000, 'inside');
	ROLLBACK;
});
check_nothing_left('public.undone', $undone_before, '(d) ROLLBACK', \@nodes);

$err = run_fails(q{
	BEGIN;
	SELECT shardexec.create_distributed_table('undone', 'id', 6);
	SELECT 1 / 0;
	COMMIT;},
	'(d) a transaction that fails after create_distributed_table');
like($err, qr/division by zero/, '(d) the error is the later statement\'s');
check_nothing_left('public.undone', $undone_before, '(d) failed transaction', \@nodes);

$coord->safe_psql('postgres', q{
	BEGIN;
	SAVEPOINT s1;
	SELECT shardexec.create_distributed_table('undone', 'id', 6);
	ROLLBACK TO SAVEPOINT s1;
	SELECT shardexec.create_distributed_table('undone', 'id', 4);
	COMMIT;
});
is(fingerprint('undone'), $undone_before,
	'(d) distributed again after ROLLBACK TO SAVEPOINT: the rows read back');
is(query_value($coord, q{SELECT count(*) FROM shardexec.shards WHERE table_name = 'undone'::regclass}),
	'4', '(d) only the shards of the second call are in the metadata');
{
	my $expected = query_value($coord, q{
		SELECT string_agg(split_part(shard_table, '.', 2), ',' ORDER BY 1)
		  FROM shardexec.shards WHERE table_name = 'undone'::regclass});
	my @on_nodes = sort map { split /,/, tables_on($_, 'undone') } @nodes;
	is(join(',', map { s/^public\.//r } @on_nodes), $expected,
		'(d) the nodes hold the 4 shards of the second call and nothing of the first');
}
$colocations_before = query_value($coord, 'SELECT count(*) FROM shardexec.colocation');

# ---------------------------------------------------------------------------
# (b) one node rejects the creation of one of its shards

$coord->safe_psql('postgres', q{
	CREATE TABLE conflict (id bigint PRIMARY KEY, v text);
	INSERT INTO conflict SELECT g, 'v' || g FROM generate_series(1, 1500) g;
});
my $conflict_before = fingerprint('conflict');

# 6 shards round-robin over 3 nodes: shard index 5, the last one created,
# goes to node3.  A table of its name is already there.
my $blocked_name = 'conflict_' . (next_shard_id() + 5);
$node3->safe_psql('postgres', "CREATE TABLE public.$blocked_name (x int)");

$err = run_fails(q{SELECT shardexec.create_distributed_table('conflict', 'id', 6)},
	'(b) create_distributed_table with a conflicting table on node3');
like($err, qr/ERROR:.*already exists/, '(b) the error says the shard table already exists');
like($err, qr/"node3"/, '(b) the error names node3');
check_nothing_left('public.conflict', $conflict_before, '(b)', [ $node1, $node2 ]);
is(tables_on($node3, 'conflict'), "public.$blocked_name",
	'(b) node3 has its own table and no shard of conflict');

$node3->safe_psql('postgres', "DROP TABLE public.$blocked_name");
$coord->safe_psql('postgres', q{SELECT shardexec.create_distributed_table('conflict', 'id', 6)});
is(fingerprint('conflict'), $conflict_before,
	'(b) without the conflicting table, create_distributed_table succeeds');
$colocations_before = query_value($coord, 'SELECT count(*) FROM shardexec.colocation');

# ---------------------------------------------------------------------------
# (b') one node rejects rows during the row move

# Domains are not propagated: each node has its own.  node3's rejects
# values of 1000 and more; some of the rows have them, in node3's shards.
$coord->safe_psql('postgres', 'CREATE DOMAIN small_qty AS int CHECK (VALUE >= 0)');
$node1->safe_psql('postgres', 'CREATE DOMAIN small_qty AS int CHECK (VALUE >= 0)');
$node2->safe_psql('postgres', 'CREATE DOMAIN small_qty AS int CHECK (VALUE >= 0)');
$node3->safe_psql('postgres',
	'CREATE DOMAIN small_qty AS int CONSTRAINT below_1000 CHECK (VALUE >= 0 AND VALUE < 1000)');
$coord->safe_psql('postgres', q{
	CREATE TABLE stock (id bigint PRIMARY KEY, qty small_qty NOT NULL);
	INSERT INTO stock SELECT g, g FROM generate_series(1, 2500) g;
});
my $stock_before = fingerprint('stock');

$err = run_fails(q{SELECT shardexec.create_distributed_table('stock', 'id', 6)},
	"(b') create_distributed_table with rows node3 rejects");
like($err, qr/ERROR:.*small_qty/, "(b') the error is node3's domain check violation");
like($err, qr/"node3"/, "(b') the error names node3");
check_nothing_left('public.stock', $stock_before, "(b')", [ $node1, $node2, $node3 ]);

$node3->safe_psql('postgres', q{
	ALTER DOMAIN small_qty DROP CONSTRAINT below_1000;
	ALTER DOMAIN small_qty ADD CHECK (VALUE >= 0);
});
$coord->safe_psql('postgres', q{SELECT shardexec.create_distributed_table('stock', 'id', 6)});
is(fingerprint('stock'), $stock_before,
	"(b') once node3 accepts the rows, create_distributed_table succeeds");

# ---------------------------------------------------------------------------
# (c) DDL on a distributed table with a node down

# shard_columns: "shard:columns" of every shard of items on the live
# nodes, to compare before and after.
sub shard_columns
{
	my ($live_nodes) = @_;
	my @result;
	for my $node (@$live_nodes)
	{
		push @result, query_value($node, q{
			SELECT coalesce(string_agg(table_name || ':' || cols, ' ' ORDER BY table_name), '')
			  FROM (SELECT table_name, string_agg(column_name || ' ' || data_type, ',' ORDER BY ordinal_position) AS cols
			          FROM information_schema.columns
			         WHERE table_schema = 'public' AND table_name LIKE 'items\_%'
			         GROUP BY table_name) s});
	}
	return join(' | ', @result);
}

# shard_indexes: the indexes on the shards of items on the live nodes.
sub shard_indexes
{
	my ($live_nodes) = @_;
	return join(' | ',
		map {
			query_value($_, q{
				SELECT coalesce(string_agg(indexname, ',' ORDER BY indexname), '')
				  FROM pg_indexes WHERE schemaname = 'public' AND tablename LIKE 'items\_%'})
		} @$live_nodes);
}

# shard_rows: "shard=rows" of every shard of items on the live nodes.
sub shard_rows
{
	my ($live_nodes) = @_;
	my @result;
	for my $node (@$live_nodes)
	{
		for my $shard (split /\n/, query_value($coord, sprintf(q{
				SELECT shard_table FROM shardexec.shards
				 WHERE table_name = 'items'::regclass AND node_name = '%s' ORDER BY shard_index},
				$node->name)))
		{
			push @result, "$shard=" . node_count($node, "SELECT count(*) FROM $shard");
		}
	}
	return join(' ', @result);
}

my $coord_columns_sql = q{
	SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY ordinal_position)
	  FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'items'};
my $coord_columns = query_value($coord, $coord_columns_sql);
my $coord_indexes_sql = q{
	SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'items'};
my $coord_indexes = query_value($coord, $coord_indexes_sql);
my $live_columns = shard_columns([ $node1, $node3 ]);
my $live_indexes = shard_indexes([ $node1, $node3 ]);
my $live_rows = shard_rows([ $node1, $node3 ]);

$node2->stop('immediate');

$err = run_fails(q{ALTER TABLE items ADD COLUMN extra int},
	'(c) ALTER TABLE ADD COLUMN with node2 down');
like($err, qr/ERROR:.*"node2"/, '(c) the error of ALTER TABLE names node2');
is(query_value($coord, $coord_columns_sql), $coord_columns,
	"(c) the coordinator's catalog is unchanged after the failed ALTER TABLE");
is(shard_columns([ $node1, $node3 ]), $live_columns,
	'(c) the shards on node1 and node3 are unchanged after the failed ALTER TABLE');

$err = run_fails(q{CREATE INDEX items_name_idx ON items (name)},
	'(c) CREATE INDEX with node2 down');
like($err, qr/ERROR:.*"node2"/, '(c) the error of CREATE INDEX names node2');
is(query_value($coord, $coord_indexes_sql), $coord_indexes,
	'(c) the coordinator has no new index after the failed CREATE INDEX');
is(shard_indexes([ $node1, $node3 ]), $live_indexes,
	'(c) the shards on node1 and node3 have no new index after the failed CREATE INDEX');

$err = run_fails(q{TRUNCATE items}, '(c) TRUNCATE with node2 down');
like($err, qr/ERROR:.*"node2"/, '(c) the error of TRUNCATE names node2');
is(shard_rows([ $node1, $node3 ]), $live_rows,
	'(c) the shards on node1 and node3 keep their rows after the failed TRUNCATE');

$err = run_fails(q{DROP TABLE items}, '(c) DROP TABLE with node2 down');
like($err, qr/ERROR:.*"node2"/, '(c) the error of DROP TABLE names node2');
is(query_value($coord, q{SELECT to_regclass('public.items') IS NOT NULL}), 't',
	'(c) the table still exists on the coordinator after the failed DROP TABLE');
is(query_value($coord, q{SELECT count(*) FROM shardexec.shards WHERE table_name = 'items'::regclass}),
	'6', '(c) the metadata of items is intact after the failed DROP TABLE');
is(shard_rows([ $node1, $node3 ]), $live_rows,
	'(c) the shards on node1 and node3 are intact after the failed DROP TABLE');

$node2->start;
is(fingerprint('items'), $items_before, '(c) with node2 back, items reads back all its rows');

# ---------------------------------------------------------------------------
# (c') one node rejects the DDL after others applied it

# A column "extra" added by hand to one shard of items on node3 makes the
# propagated ADD COLUMN fail there, after node1 and node2 applied it.
my ($node3_shard) = split /\n/, query_value($coord, q{
	SELECT shard_table FROM shardexec.shards
	 WHERE table_name = 'items'::regclass AND node_name = 'node3' ORDER BY shard_index});
$node3->safe_psql('postgres', "ALTER TABLE $node3_shard ADD COLUMN extra int");
my $with_manual_column = shard_columns(\@nodes);

$err = run_fails(q{ALTER TABLE items ADD COLUMN extra int},
	"(c') ALTER TABLE ADD COLUMN rejected by node3");
like($err, qr/ERROR:.*already exists/, "(c') the error is node3's");
like($err, qr/"node3"/, "(c') the error names node3");
is(query_value($coord, $coord_columns_sql), $coord_columns,
	"(c') the coordinator's catalog is unchanged");
is(shard_columns(\@nodes), $with_manual_column,
	"(c') node1 and node2 rolled the new column back; node3 is as it was");

$node3->safe_psql('postgres', "ALTER TABLE $node3_shard DROP COLUMN extra");
my ($ret) = $coord->psql('postgres', q{ALTER TABLE items ADD COLUMN extra int});
is($ret, 0, "(c') without the conflicting column, ALTER TABLE ADD COLUMN succeeds");
is(total_count_on_nodes(q{
		SELECT count(*) FROM information_schema.columns
		 WHERE table_name LIKE 'items\_%' AND column_name = 'extra'}),
	6, "(c') and reaches the 6 shards of items");

# total_count_on_nodes: the sum over the nodes of $sql's count.
sub total_count_on_nodes
{
	my ($sql) = @_;
	my $sum = 0;
	$sum += node_count($_, $sql) for @nodes;
	return $sum;
}

done_testing();
