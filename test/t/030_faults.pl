# test/t/030_faults.pl: a node that fails while a statement uses it.
#
# A coordinator and three nodes; table items (6 shards, 2 per node).  For
# each fault and each kind of statement, the statement is started on the
# coordinator and held on node2 or at its commit (see scenario), and node2
# then fails:
#
#   stop    pg_ctl stop -m immediate;
#   kill9   SIGKILL of node2's postmaster (its backends notice and exit);
#   freeze  SIGSTOP of node2's backends that serve the coordinator (its
#           postmaster still answers): nothing ever comes back on those
#           connections, and only statement_timeout ends the statement.
#
# The statements: a router query, a multi-shard query, a multi-row INSERT
# (rows on every node), a COPY (rows on every node), and a transaction
# that wrote on every node, at its two-phase commit: node2 fails before
# the PREPAREs ("prepare": the transaction rolls back) or after every node
# prepared and the local commit, before COMMIT PREPARED ("2pc": the
# transaction is committed, node2's part by recovery).
#
# In every case:
#   - the coordinator's session gets an answer within the timeouts (at
#     once for stop and kill9; statement_timeout, plus the bounded cleanup
#     of connections, CONNECTION_CLEANUP_TIMEOUT_MS = 10 s, for freeze): an
#     error that names node2 (after the local commit: a WARNING naming
#     node2, since the decision was made), never a FATAL, and the session
#     stays usable;
#   - once node2 is back (started again, or SIGCONT), the same kind of
#     statement works in the same session;
#   - no connection leaks: the session's shardexec.connections holds no
#     claimed, busy or in-transaction connection, per node it has as many
#     connections as before the fault, and shardexec.shared_connection_counts()
#     counts exactly those; once the session quits, nothing is counted;
#   - no committed data is lost and nothing half-done remains: rows of a
#     failed write are on no node, rows of a committed transaction are all
#     there (on node2 once recovery has committed its prepared
#     transactions), no prepared transaction is left on any node.
#
# Then:
#   - a node restarted (fast, or after SIGKILL) between two statements of
#     a session is reconnected transparently;
#   - a whole frozen node (postmaster and every backend stopped) during a
#     multi-shard query: the statement still ends within statement_timeout
#     plus the cleanup bound (the cancel request to a frozen postmaster
#     must not block);
#   - node2's backends frozen with shardexec.node_response_timeout set and
#     no statement_timeout: the statement fails after the response timeout,
#     naming node2, and the next statement works once node2 is thawed;
#   - a COPY of a 64 MB row to a node that stops reading once the COPY has
#     begun: sending must not block, statement_timeout ends it;
#   - the coordinator never crashed.
#
# FAULTS_ONLY (see the end of the scenarios) runs a part of it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ShardexecTest qw(start_cluster query_value node_count);

# seconds; statement_timeout of the statements a frozen node holds
my $statement_timeout = 3;
# CONNECTION_CLEANUP_TIMEOUT_MS, in seconds
my $cleanup = 10;

my ($coord, @nodes) = start_cluster(
	nodes => 3,
	coordinator_conf => <<'EOC');
shardexec.connect_timeout = 2
shardexec.recovery_interval = 1
# for the synchronous_standby_names hold (see scenario)
wal_level = replica
max_wal_senders = 2
synchronous_commit = local
EOC
my $node2 = $nodes[1];

$coord->safe_psql('postgres', q{
	CREATE TABLE items (id bigint PRIMARY KEY, v text NOT NULL DEFAULT 'copied');
	SELECT shardexec.create_distributed_table('items', 'id', 6);
	INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 3000) g;
});

my @node2_shards = split /\n/, query_value($coord, q{
	SELECT shard_table FROM shardexec.shards
	 WHERE table_name = 'items'::regclass AND node_name = 'node2' ORDER BY 1});
is(scalar @node2_shards, 2, 'node2 holds two shards of items');

# a key whose shard is on node2, for the router query
my $key2 = query_value($coord, q{
	SELECT min(g) FROM generate_series(1, 1000) g
	  JOIN shardexec.shards s ON s.shard_id = shardexec.shard_id_for_value('items', g)
	 WHERE s.node_name = 'node2'});

# the rows the table should hold: committed writes add to it
my %expected_rows = map { $_ => 1 } (1 .. 3000);

my @frozen;    # pids to SIGCONT if the test dies

END
{
	kill 'CONT', @frozen if @frozen;
}

# ---------------------------------------------------------------------------
# helpers

# shardexec_backends: pids of the backends of $node that serve coordinator
# pool connections (application_name 'shardexec').
sub shardexec_backends
{
	my ($node) = @_;
	my $pids = query_value($node, q{
		SELECT coalesce(string_agg(pid::text, ' '), '') FROM pg_stat_activity
		 WHERE application_name = 'shardexec'});
	return split ' ', $pids;
}

# postmaster_and_children: the pid of $node's postmaster and of every
# process it started.
sub postmaster_and_children
{
	my ($node) = @_;
	my $pm = $node->{_pid};
	my @children = split ' ', `ps -o pid= --ppid $pm`;
	return ($pm, @children);
}

sub freeze
{
	my (@pids) = @_;
	kill 'STOP', @pids;
	push @frozen, @pids;
}

sub thaw
{
	kill 'CONT', @frozen;
	@frozen = ();
}

# restart: start $node again.  After a SIGKILL its postmaster may linger
# as a zombie where nothing reaps orphans (some containers' PID 1 does
# not): it holds nothing any more, but its pid in postmaster.pid would
# keep the new postmaster from starting, so the file goes.  Its backends
# may hold the shared memory for a moment: retry.
sub restart
{
	my ($node) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	if (-f $pidfile)
	{
		my ($old) = split /\n/, slurp_file($pidfile);
		for (1 .. 100)
		{
			last if !kill(0, $old) || process_state($old) eq 'Z';
			usleep(100_000);
		}
		unlink $pidfile if kill(0, $old) && process_state($old) eq 'Z';
	}
	for (1 .. 60)
	{
		$node->{_pid} = undef;
		return if $node->start(fail_ok => 1);
		usleep(500_000);
	}
	BAIL_OUT('could not restart ' . $node->name);
}

# process_state: the state letter of process $pid (R, S, T, Z, ...), or ''.
sub process_state
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return '';
	my $stat = <$fh>;
	close $fh;
	return $stat =~ /\)\s+(\S)/ ? $1 : '';
}

# pool: this session's pool connections per node, "node1=2 node2=2 ...".
sub pool
{
	my ($s) = @_;
	return session_value($s, q{
		SELECT coalesce(string_agg(node_name || '=' || n, ' ' ORDER BY node_name), '')
		  FROM (SELECT node_name, count(*) AS n FROM shardexec.connections GROUP BY 1) c});
}

# shared: the shared connection counts of all backends, same format.
sub shared
{
	return query_value($coord, q{
		SELECT coalesce(string_agg(node_name || '=' || connections, ' ' ORDER BY node_name), '')
		  FROM shardexec.shared_connection_counts() WHERE connections > 0});
}

# session_value: runs $sql in background session $s; dies on error.
sub session_value
{
	my ($s, $sql) = @_;
	$s->{stderr} = '';
	my $out = $s->query($sql);
	die "query failed in session: $s->{stderr}" if $s->{stderr} ne '';
	$out =~ s/^\s+|\s+$//g;
	return $out;
}

# check_table: the coordinator reads exactly %expected_rows (ids), and no
# prepared transaction is left on any node (waiting for recovery).
sub check_table
{
	my ($label) = @_;
	my $want = join(',', sort { $a <=> $b } keys %expected_rows);
	my $got = '';
	for (1 .. 40)
	{
		$got = query_value($coord,
			q{SELECT string_agg(id::text, ',' ORDER BY id) FROM items});
		last if $got eq $want;
		usleep(250_000);
	}
	ok($got eq $want, "$label: the table holds exactly the committed rows");
	for my $node (@nodes)
	{
		ok( $node->poll_query_until('postgres',
				'SELECT count(*) = 0 FROM pg_prepared_xacts'),
			"$label: no prepared transaction left on " . $node->name);
	}
}

# lock_node2: a session on node2 that holds ACCESS EXCLUSIVE locks on
# node2's shards of items.
sub lock_node2
{
	my $locker = $node2->background_psql('postgres', on_error_stop => 0);
	$locker->query_safe('BEGIN; LOCK TABLE ' . join(', ', @node2_shards)
		  . ' IN ACCESS EXCLUSIVE MODE;');
	return $locker;
}

my $next_id = 100_000;

# rows: ids and VALUES list of $n new rows (on every node)
sub new_ids
{
	my ($n) = @_;
	my @ids = ($next_id + 1 .. $next_id + $n);
	$next_id += 1000;
	return @ids;
}

# the statements, by kind: sql($ids) and what a success returns
my %operations = (
	router => {
		sql => sub { "SELECT v FROM items WHERE id = $key2" },
		expect => sub { "v$key2" },
	},
	multi => {
		sql => sub { 'SELECT count(*) FROM items' },
		expect => sub { scalar keys %expected_rows },
	},
	insert => {
		write => 1,
		sql => sub {
			my ($ids) = @_;
			'INSERT INTO items (id, v) VALUES '
			  . join(', ', map { "($_, 'ins')" } @$ids);
		},
		expect => sub { '' },
	},
	copy => {
		write => 1,
		sql => sub {
			my ($ids) = @_;
			"COPY items (id) FROM PROGRAM 'seq $ids->[0] $ids->[-1]'";
		},
		expect => sub { '' },
	},
	# the fault comes before the PREPAREs: the transaction rolls back
	prepare => {
		write => 1,
		hold => 'records',
		sql => sub {
			my ($ids) = @_;
			'BEGIN; INSERT INTO items (id, v) VALUES '
			  . join(', ', map { "($_, 'prep')" } @$ids)
			  . '; COMMIT';
		},
		expect => sub { '' },
	},
	# the fault comes after every node prepared and the local commit: the
	# transaction is committed, node2's part by recovery
	'2pc' => {
		write => 1,
		hold => 'syncrep',
		sql => sub {
			my ($ids) = @_;
			'BEGIN; INSERT INTO items (id, v) VALUES '
			  . join(', ', map { "($_, '2pc')" } @$ids)
			  . '; COMMIT';
		},
		expect => sub { '' },
	},
);

# ---------------------------------------------------------------------------
# the faults

# scenario: $op is held on node2 (or at its commit), node2 suffers $fault,
# and everything said at the top is checked.  How the statement is held:
#   node2-lock  a session on node2 holds ACCESS EXCLUSIVE locks on its shards;
#   records     (a COMMIT) a session on the coordinator holds a lock on
#               shardexec.transaction_record, into which the commit inserts
#               its records before it sends the PREPAREs;
#   syncrep     (a COMMIT) synchronous_standby_names names a standby that
#               does not exist: the committing backend waits for it after
#               the PREPAREs and the local commit, before COMMIT PREPARED;
#               the session's synchronous_commit is on, everyone else's
#               local.  Emptying synchronous_standby_names releases it.
sub scenario
{
	my ($fault, $op) = @_;
	my $o = $operations{$op};
	my $hold = $o->{hold} // 'node2-lock';
	my $label = "$fault during $op";

	my $s = $coord->background_psql('postgres', on_error_stop => 0);
	my $pid = session_value($s, 'SELECT pg_backend_pid()');
	# warm the pool: connections to every node, the statement's own number
	session_value($s, 'SELECT count(*) FROM items');
	session_value($s, "SELECT v FROM items WHERE id = $key2");
	my $before = pool($s);
	# a frozen node is ended by statement_timeout, except after the local
	# commit, where the cleanup bound ends COMMIT PREPARED
	my $timeout = $fault eq 'freeze' && $hold ne 'syncrep' ? $statement_timeout : 60;
	session_value($s, "SET statement_timeout = '${timeout}s'");

	my @ids = $o->{write} ? new_ids(30) : ();
	my $locker;
	if ($hold eq 'records')
	{
		$locker = $coord->background_psql('postgres', on_error_stop => 0);
		$locker->query_safe(
			'BEGIN; LOCK TABLE shardexec.transaction_record IN EXCLUSIVE MODE;');
	}
	elsif ($hold eq 'syncrep')
	{
		session_value($s, 'SET synchronous_commit = on');
		$coord->safe_psql('postgres',
			"ALTER SYSTEM SET synchronous_standby_names = 'nobody'; SELECT pg_reload_conf()");
		ok( $coord->poll_query_until('postgres',
				q{SELECT current_setting('synchronous_standby_names') = 'nobody'}),
			"$label: synchronous_standby_names holds commits");
	}
	else
	{
		$locker = lock_node2();
	}

	my $start = time;
	$s->{stderr} = '';
	$s->query_until(qr/started/, "\\echo started\n" . $o->{sql}->(\@ids) . ";\n");

	if ($hold eq 'records')
	{
		ok( $coord->poll_query_until('postgres', qq{
				SELECT count(*) = 1 FROM pg_stat_activity
				 WHERE pid = $pid AND wait_event_type = 'Lock'}),
			"$label: the COMMIT waits to insert its commit records");
	}
	elsif ($hold eq 'syncrep')
	{
		ok( $coord->poll_query_until('postgres', qq{
				SELECT count(*) = 1 FROM pg_stat_activity
				 WHERE pid = $pid AND wait_event = 'SyncRep'}),
			"$label: the COMMIT waits after the local commit");
		for my $node (@nodes)
		{
			# one prepared transaction per connection that wrote
			ok(node_count($node, 'SELECT count(*) FROM pg_prepared_xacts') >= 1,
				"$label: " . $node->name . ' has prepared the transaction');
		}
	}
	else
	{
		ok( $node2->poll_query_until('postgres', q{
				SELECT count(*) > 0 FROM pg_stat_activity
				 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'}),
			"$label: the statement waits on node2");
	}

	my $fault_time = time;
	if ($fault eq 'stop')
	{
		$node2->stop('immediate');
	}
	elsif ($fault eq 'kill9')
	{
		$node2->kill9;
	}
	else
	{
		freeze(shardexec_backends($node2));
	}
	# release the hold: only the fault holds the statement now
	if ($hold eq 'syncrep')
	{
		$coord->safe_psql('postgres',
			'ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf()');
	}
	elsif ($hold eq 'records' || $fault eq 'freeze')
	{
		$locker->query('COMMIT');
	}
	eval { $locker->quit } if $locker;

	my ($out) = $s->query("SELECT 'alive'");
	my $elapsed = time - $fault_time;
	my $stderr = $s->{stderr};
	# stop and kill9 are seen at once; a frozen node waits for
	# statement_timeout (counted from the statement's start), then for
	# the bounded cleanup of its connections
	my $limit = 8;
	$limit = $timeout - ($fault_time - $start) + $cleanup + 5 if $fault eq 'freeze';
	$limit = $cleanup + 5 if $fault eq 'freeze' && $hold eq 'syncrep';
	ok($elapsed < $limit,
		sprintf('%s: the session answers within %.0f s (%.1f s)', $label, $limit, $elapsed));
	like($out, qr/alive$/, "$label: the session is still usable");
	unlike($stderr, qr/^psql:\S+ FATAL|connection to server was lost/m,
		"$label: no FATAL, the coordinator's backend survives");

	my $succeeded;
	if ($hold eq 'syncrep')
	{
		# the decision was made: COMMIT succeeds, the lost node is a warning
		like($stderr, qr/WARNING:  could not commit prepared transaction ".*" on node "node2"/,
			"$label: a warning names node2");
		unlike($stderr, qr/ERROR/, "$label: no error");
		$succeeded = 1;
	}
	elsif ($fault eq 'kill9' && $stderr !~ /ERROR/)
	{
		# node2's backend may be granted the lock (its holder died first)
		# and finish before it notices its postmaster is gone
		note "$label: the statement completed before node2's backend exited";
		my $want = $o->{expect}->();
		is($out, ($want eq '' ? '' : "$want\n") . 'alive', "$label: ... with the right answer");
		$succeeded = 1;
	}
	else
	{
		like($stderr, qr/ERROR:  (.*\n)*.*node "node2"/,
			"$label: the error names node2");
		$succeeded = 0;
	}
	note "stderr: $stderr";

	# node2 back
	if ($fault eq 'freeze')
	{
		thaw();
	}
	else
	{
		restart($node2);
	}

	is( session_value($s, q{
			SELECT count(*) FROM shardexec.connections
			 WHERE state <> 'idle' OR reference_count > 0 OR in_transaction}),
		'0', "$label: no connection left claimed, busy or in a transaction");

	if ($o->{write})
	{
		if ($succeeded)
		{
			$expected_rows{$_} = 1 for @ids;
		}
		check_table($label);
	}

	# the same kind of statement works again in the same session
	session_value($s, 'RESET statement_timeout');
	session_value($s, 'RESET synchronous_commit');
	my @again = $o->{write} ? new_ids(30) : ();
	$s->{stderr} = '';
	my $again_out = $s->query($o->{sql}->(\@again));
	is($s->{stderr}, '', "$label: after node2 is back, the statement works");
	if ($o->{write})
	{
		$expected_rows{$_} = 1 for @again;
		check_table("$label, again");
	}
	else
	{
		is($again_out, $o->{expect}->(), "$label: ... with the right answer");
	}

	# same connections as before the fault, and only those counted
	session_value($s, 'SELECT count(*) FROM items');
	session_value($s, "SELECT v FROM items WHERE id = $key2");
	is(pool($s), $before, "$label: the session has the connections it had before");
	my $shared = '';
	for (1 .. 40)
	{
		$shared = shared();
		last if $shared eq $before;
		usleep(250_000);
	}
	is($shared, $before, "$label: the shared counts are the session's connections");

	$s->quit;
	my $after = '';
	for (1 .. 40)
	{
		$after = shared();
		last if $after eq '';
		usleep(250_000);
	}
	is($after, '', "$label: once the session is gone, no connection is counted");
}

# FAULTS_ONLY="freeze:copy kill9:2pc restart frozen-node stuck-copy" runs
# only those parts (for debugging; scripts/test.sh passes no environment)
my %only = map { $_ => 1 } split ' ', ($ENV{FAULTS_ONLY} // '');

sub wanted
{
	my ($part) = @_;
	return !%only || $only{$part};
}

for my $fault (qw(stop kill9 freeze))
{
	for my $op (qw(router multi insert copy prepare 2pc))
	{
		scenario($fault, $op) if wanted("$fault:$op");
	}
}

# ---------------------------------------------------------------------------
# a node restarted between two statements is reconnected transparently

for my $how (qw(fast kill9))
{
	next unless wanted('restart');
	my $s = $coord->background_psql('postgres', on_error_stop => 0);
	is(session_value($s, 'SELECT count(*) FROM items'), scalar(keys %expected_rows),
		"restart ($how) between statements: the session has connections to node2");
	if ($how eq 'fast')
	{
		$node2->stop('fast');
		restart($node2);
	}
	else
	{
		$node2->kill9;
		restart($node2);
	}
	$s->{stderr} = '';
	my $out = $s->query('SELECT count(*) FROM items');
	is($s->{stderr}, '', "restart ($how) between statements: the next statement has no error");
	is($out, scalar(keys %expected_rows), "restart ($how) between statements: ... and the right answer");
	$s->{stderr} = '';
	$out = $s->query("SELECT v FROM items WHERE id = $key2");
	is($s->{stderr} . $out, "v$key2", "restart ($how) between statements: a router query too");
	my @ids = new_ids(30);
	$s->{stderr} = '';
	$s->query('INSERT INTO items (id, v) VALUES ' . join(', ', map { "($_, 'r')" } @ids));
	is($s->{stderr}, '', "restart ($how) between statements: and a write");
	$expected_rows{$_} = 1 for @ids;
	$s->quit;
}
check_table('restarts between statements') if wanted('restart');

# ---------------------------------------------------------------------------
# a whole frozen node: its postmaster and every backend stopped, so that
# even a cancel request gets no answer

if (wanted('frozen-node'))
{
	my $label = 'whole node2 frozen during multi';
	my $s = $coord->background_psql('postgres', on_error_stop => 0, timeout => 90);
	my $pid = session_value($s, 'SELECT pg_backend_pid()');
	session_value($s, 'SELECT count(*) FROM items');
	my $before = pool($s);
	session_value($s, "SET statement_timeout = '${statement_timeout}s'");
	my $locker = lock_node2();
	$s->{stderr} = '';
	$s->query_until(qr/started/, "\\echo started\nSELECT count(*) FROM items;\n");
	ok( $node2->poll_query_until('postgres', q{
			SELECT count(*) > 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'}),
		"$label: the statement waits on node2");
	my $start = time;
	freeze(postmaster_and_children($node2));
	my $limit = $statement_timeout + $cleanup + 5;
	my $answered = $coord->poll_query_until('postgres', qq{
		SELECT state <> 'active' FROM pg_stat_activity WHERE pid = $pid});
	my $elapsed = time - $start;
	ok($answered && $elapsed < $limit,
		sprintf('%s: the session answers within %d s (%.1f s)', $label, $limit, $elapsed));
	thaw();
	my ($out) = $s->query("SELECT 'alive'");
	like($out, qr/alive$/, "$label: the session is still usable");
	like($s->{stderr}, qr/ERROR:  (.*\n)*.*node "node2"/, "$label: the error names node2");
	eval { $locker->query('COMMIT'); $locker->quit; };
	session_value($s, 'RESET statement_timeout');
	is(session_value($s, 'SELECT count(*) FROM items'), scalar(keys %expected_rows),
		"$label: after SIGCONT, the next statement works");
	is(pool($s), $before, "$label: the session has the connections it had before");
	$s->quit;
}

# ---------------------------------------------------------------------------
# a large COPY to a node that stops reading (a trigger on its shard waits
# for a lock): more data than the sockets hold, so that sending it would
# block; statement_timeout must still end it

# ---------------------------------------------------------------------------
# a frozen node, noticed by shardexec.node_response_timeout alone

if (wanted('response-timeout'))
{
	my $label = 'node2 frozen, node_response_timeout';
	my $s = $coord->background_psql('postgres', on_error_stop => 0, timeout => 90);
	session_value($s, 'SELECT count(*) FROM items');
	my $before = pool($s);
	session_value($s, "SET shardexec.node_response_timeout = '1s'");
	freeze(shardexec_backends($node2));
	my ($out) = $s->query('SELECT count(*) FROM items');
	like($s->{stderr}, qr/ERROR:  node "node2" did not answer within 1000 ms/,
		"$label: the statement fails, naming node2");
	like($s->{stderr}, qr/remote SQL command on node "node2"/,
		"$label: with the remote SQL");
	thaw();
	is(session_value($s, 'SELECT count(*) FROM items'), scalar(keys %expected_rows),
		"$label: after SIGCONT, the next statement works");
	is(pool($s), $before, "$label: the session has the connections it had before");

	# a router statement with a parameter, prepared on node2's session for
	# the first time: that wait is bounded too
	my $id2 = query_value($coord, q{
		SELECT min(id) FROM items
		 WHERE shardexec.shard_id_for_value('items', id) IN
		       (SELECT shard_id FROM shardexec.shards
		         WHERE table_name = 'items'::regclass AND node_name = 'node2')});
	session_value($s, 'PREPARE by_id(bigint) AS SELECT count(*) FROM items WHERE id = $1');
	freeze(shardexec_backends($node2));
	$s->{stderr} = '';
	$s->query("EXECUTE by_id($id2)");
	like($s->{stderr}, qr/ERROR:  node "node2" did not answer within 1000 ms/,
		"$label: also while the node prepares a router statement");
	thaw();
	is(session_value($s, "EXECUTE by_id($id2)"), '1',
		"$label: after SIGCONT, the router statement works");
	$s->quit;
}

if (wanted('stuck-copy'))
{
	my $label = 'COPY to a node that stops reading';
	$coord->safe_psql('postgres', q{
		CREATE TABLE bulk (id bigint, pad text);
		SELECT shardexec.create_distributed_table('bulk', 'id', 1);
	});
	my $shard = query_value($coord,
		q{SELECT shard_table FROM shardexec.shards WHERE table_name = 'bulk'::regclass});
	my $holder = query_value($coord,
		q{SELECT node_name FROM shardexec.shards WHERE table_name = 'bulk'::regclass});
	my ($node) = grep { $_->name eq $holder } @nodes;
	# the COPY waits for an advisory lock once it has told the coordinator
	# to send its rows (a statement trigger), and reads none of them
	$node->safe_psql('postgres', qq{
		CREATE FUNCTION hold_rows() RETURNS trigger LANGUAGE plpgsql AS
		  \$\$BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END\$\$;
		CREATE TRIGGER hold_rows BEFORE INSERT ON $shard
		  FOR EACH STATEMENT EXECUTE FUNCTION hold_rows();
	});
	my $locker = $node->background_psql('postgres', on_error_stop => 0);
	$locker->query_safe('SELECT pg_advisory_lock(4242)');

	my $s = $coord->background_psql('postgres', on_error_stop => 0, timeout => 120);
	my $pid = session_value($s, 'SELECT pg_backend_pid()');
	# time to read and route the row first, however busy the machine; no
	# lock_timeout on the node, which would end its wait
	my $timeout = 15;
	session_value($s, "SET statement_timeout = '${timeout}s'");
	session_value($s, 'SET shardexec.remote_lock_timeout = 0');
	$s->{stderr} = '';
	# a row of 64 MB: more than the sockets between them hold
	$s->query_until(qr/started/, "\\echo started\n"
		  . q{COPY bulk FROM PROGRAM 'awk ''BEGIN { s = "x"; while (length(s) < 50000000) s = s s; print "1\t" s }''';}
		  . "\n");
	my $start = time;
	ok( $node->poll_query_until('postgres', q{
			SELECT count(*) > 0 FROM pg_stat_activity
			 WHERE application_name = 'shardexec' AND wait_event_type = 'Lock'
			   AND query LIKE 'COPY%'}),
		"$label: the node's COPY waits, its rows unread");
	my $limit = $timeout + $cleanup + 5;
	my $answered = $coord->poll_query_until('postgres', qq{
		SELECT state <> 'active' FROM pg_stat_activity WHERE pid = $pid});
	my $elapsed = time - $start;
	ok($answered && $elapsed < $limit,
		sprintf('%s: the session answers within %d s (%.1f s)', $label, $limit, $elapsed));
	$locker->query('SELECT pg_advisory_unlock(4242)');
	$locker->quit;
	my ($out) = $s->query("SELECT 'alive'");
	like($out, qr/alive$/, "$label: the session is still usable");
	like($s->{stderr}, qr/ERROR:  canceling statement due to statement timeout\n(.*\n)*.*node "$holder"/,
		"$label: statement_timeout, naming the node");
	is(query_value($coord, 'SELECT count(*) FROM bulk'), '0', "$label: no row was loaded");
	$node->safe_psql('postgres', "DROP TRIGGER hold_rows ON $shard");
	session_value($s, 'RESET statement_timeout');
	session_value($s, 'RESET shardexec.remote_lock_timeout');
	$s->{stderr} = '';
	$s->query(q{COPY bulk (id) FROM PROGRAM 'seq 1 1000'});
	is($s->{stderr}, '', "$label: without the hold, the next COPY works");
	is(query_value($coord, 'SELECT count(*) FROM bulk'), '1000', "$label: ... and loads its rows");
	$s->quit;
}

# ---------------------------------------------------------------------------
# the coordinator never crashed

my $log = slurp_file($coord->logfile);
unlike($log, qr/terminated by signal/, 'no coordinator process was terminated by a signal');

done_testing();
