# test/t/020_writes_pgbench.pl: writes through the coordinator on real
# instances (issue 6).
#
#  - pgbench's own TPC-B-like script runs against the coordinator with
#    pgbench_accounts, pgbench_tellers and pgbench_history distributed and
#    pgbench_branches a reference table; no transaction may fail, and
#    afterwards every account's, teller's and branch's balance equals the
#    sum of its deltas in pgbench_history.
#  - COPY of a 1,000,000-row file loads every row exactly once: count and
#    checksum against the same file loaded into a local table.
#  - a COPY with a bad row reports the row's input line, and nothing of that
#    COPY stays loaded.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ShardexecTest qw(start_cluster);

my ($coord, @nodes) = start_cluster(nodes => 3);

# pgbench's tables, distributed after pgbench -i made them
$coord->command_ok([ 'pgbench', '-i', '-s', '2', '-q', '-d', 'postgres',
		'-p', $coord->port, '-h', $coord->host ], 'pgbench -i');
$coord->safe_psql('postgres', q{
	SELECT shardexec.create_distributed_table('pgbench_accounts', 'aid', 8);
	SELECT shardexec.create_distributed_table('pgbench_tellers', 'tid', 8);
	SELECT shardexec.create_distributed_table('pgbench_history', 'aid', 8,
	                                          colocate_with => 'pgbench_accounts');
	SELECT shardexec.create_reference_table('pgbench_branches');
});
is($coord->safe_psql('postgres', 'SELECT count(*) FROM pgbench_accounts'),
	'200000', 'accounts distributed with their rows');

# the TPC-B-like script, several clients, prepared statements; a hang
# (a deadlock no node sees) fails the test through statement_timeout
$ENV{PGOPTIONS} = '-c statement_timeout=60s';
$coord->command_ok([ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '150',
		'-M', 'prepared', '-d', 'postgres', '-p', $coord->port, '-h', $coord->host ],
	'pgbench TPC-B runs with no failed transaction');

delete $ENV{PGOPTIONS};
my $history = $coord->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
is($history, '600', 'one history row per transaction');

is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM pgbench_accounts a
	 WHERE a.abalance <> coalesce((SELECT sum(delta) FROM pgbench_history h
	                                WHERE h.aid = a.aid), 0)}),
	'0', 'every account balance equals the sum of its deltas');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM pgbench_tellers t
	 WHERE t.tbalance <> coalesce((SELECT sum(delta) FROM pgbench_history h
	                                WHERE h.tid = t.tid), 0)}),
	'0', 'every teller balance equals the sum of its deltas');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM pgbench_branches b
	 WHERE b.bbalance <> coalesce((SELECT sum(delta) FROM pgbench_history h
	                                WHERE h.bid = b.bid), 0)}),
	'0', 'every branch balance equals the sum of its deltas');

# every copy of the reference table agrees
my $branches = $coord->safe_psql('postgres',
	q{SELECT string_agg(bid || ':' || bbalance, ',' ORDER BY bid) FROM pgbench_branches});
foreach my $node (@nodes)
{
	my $copy = $node->safe_psql('postgres', q{
		SELECT (xpath('//s/text()', query_to_xml(format(
			'SELECT string_agg(bid || '':'' || bbalance, '','' ORDER BY bid) AS s FROM public.%I',
			tablename), false, false, '')))[1]::text
		  FROM pg_tables WHERE tablename LIKE 'pgbench_branches%'});
	is($copy, $branches, 'reference copy on ' . $node->name . ' matches');
}

# COPY of a million rows, against the same file loaded locally
my $file = $coord->basedir . '/million.tsv';
$coord->safe_psql('postgres', qq{
	COPY (SELECT g, 'row ' || g, g % 1000, (g * 7) % 100003 FROM generate_series(1, 1000000) g)
	  TO '$file';
	CREATE TABLE big (id bigint PRIMARY KEY, label text, bucket int, n int);
	CREATE TABLE big_local (LIKE big INCLUDING ALL);
	SELECT shardexec.create_distributed_table('big', 'id', 16);
});
$coord->safe_psql('postgres', "COPY big FROM '$file'");
$coord->safe_psql('postgres', "COPY big_local FROM '$file'");
my $checksum = q{SELECT count(*), sum(id), sum(bucket), md5(string_agg(label, ',' ORDER BY id))};
is($coord->safe_psql('postgres', "$checksum FROM big"),
	$coord->safe_psql('postgres', "$checksum FROM big_local"),
	'COPY loaded every row exactly once');

# a bad row: its input line is named and nothing of the COPY stays
my $bad = $coord->basedir . '/bad.tsv';
$coord->safe_psql('postgres', qq{
	ALTER TABLE big ADD CONSTRAINT n_not_negative CHECK (n >= 0);
	COPY (SELECT g + 2000000, 'new', 1, CASE WHEN g = 777 THEN -1 ELSE 1 END
	        FROM generate_series(1, 1000) g) TO '$bad';
});
my ($ret, $out, $err) = $coord->psql('postgres', "COPY big FROM '$bad'");
isnt($ret, 0, 'COPY with a bad row fails');
like($err, qr/violates check constraint/, 'the node\'s error is reported');
like($err, qr/COPY big, line 777\b/, 'the error names the input line of the bad row');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM big WHERE id > 2000000'),
	'0', 'nothing of the failed COPY stays loaded');

done_testing();
