# test/t/003_ddl_propagation.pl: DDL on distributed and reference tables
# reaches every shard on every node, on real instances.
#
# A coordinator and three nodes; a distributed table of 6 shards (two per
# node) with rows, and a reference table (a copy on every node).  After
# each statement run on the coordinator, the test reads the catalogs of
# every node for every shard table that shardexec.shards names, and
# compares them with the coordinator's catalog for the logical table:
#   - columns: information_schema.columns (name, type, precision and
#     scale, nullability, default);
#   - indexes: pg_indexes.indexdef;
#   - constraints: pg_constraint (name, pg_get_constraintdef).
# A shard's index and constraint names carry the suffix _<shard id>,
# which the comparison removes.  Each step also asserts its own effect
# directly (the column is there, the index is gone, ...), so that a
# statement that changed neither side is not mistaken for one that reached
# both.  The statements: CREATE INDEX (plain, unique, expression with a
# predicate) and DROP INDEX; ALTER TABLE ADD, DROP and RENAME COLUMN (and
# several subcommands at once); ALTER COLUMN TYPE, SET DEFAULT, SET NOT
# NULL; ADD and DROP CONSTRAINT; ALTER TABLE RENAME; TRUNCATE; DROP
# TABLE.  Where the nodes' rows make a statement fail there (SET NOT NULL
# over NULLs, a CHECK the rows violate), the statement fails as a whole
# and the coordinator's catalog is unchanged.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ShardexecTest qw(start_cluster query_value node_count);

my ($coord, @nodes) = start_cluster(nodes => 3);
my %node_by_name = map { $_->name => $_ } @nodes;

# shards_of: [node, shard_id, shard_table] for every placement of $table.
sub shards_of
{
	my ($table) = @_;
	my @shards;
	for my $line (split /\n/, query_value($coord, qq{
			SELECT node_name, shard_id, shard_table FROM shardexec.shards
			 WHERE table_name = '$table'::regclass ORDER BY shard_index, node_name}))
	{
		my ($node_name, $shard_id, $shard_table) = split /\|/, $line;
		push @shards, [ $node_by_name{$node_name}, $shard_id, $shard_table ];
	}
	return @shards;
}

# definition: the columns, indexes and constraints of table $qualified on
# $instance, as text; with $shard_id, the suffix _<shard id> is removed
# from names, so that a shard's definition equals its table's.
sub definition
{
	my ($instance, $qualified, $shard_id) = @_;
	my ($schema, $name) = split /\./, $qualified;
	my $strip = defined $shard_id ? "_$shard_id" : '';
	return query_value($instance, qq{
		SELECT 'columns: ' || coalesce((
		         SELECT string_agg(format('%s %s%s %s %s', column_name, data_type,
		                                  '(' || numeric_precision || ',' || numeric_scale || ')',
		                                  CASE is_nullable WHEN 'NO' THEN 'not null' ELSE 'null' END,
		                                  coalesce('default ' || column_default, '')),
		                           ', ' ORDER BY ordinal_position)
		           FROM information_schema.columns
		          WHERE table_schema = '$schema' AND table_name = '$name'), '')
		    || E'\\nindexes: ' || coalesce((
		         SELECT string_agg(replace(indexdef, '$strip', ''), '; '
		                           ORDER BY replace(indexdef, '$strip', ''))
		           FROM pg_indexes WHERE schemaname = '$schema' AND tablename = '$name'), '')
		    || E'\\nconstraints: ' || coalesce((
		         SELECT string_agg(c, '; ' ORDER BY c)
		           FROM (SELECT replace(conname, '$strip', '') || ' ' || pg_get_constraintdef(oid) AS c
		                   FROM pg_constraint
		                  WHERE conrelid = to_regclass('$qualified')) s), '')});
}

# check_shards_match: every shard of $table, on its node, has the
# coordinator's definition of $table.
sub check_shards_match
{
	my ($table, $label) = @_;
	my $expected = definition($coord, "public.$table");
	my @mismatches;
	my @shards = shards_of($table);
	for my $s (@shards)
	{
		my ($node, $shard_id, $shard_table) = @$s;
		my $got = definition($node, $shard_table, $shard_id);
		push @mismatches, "$shard_table on " . $node->name . ":\n$got" if $got ne $expected;
	}
	ok(@shards > 0 && @mismatches == 0,
		"$label: all " . scalar(@shards) . " shards of $table match the coordinator's definition")
	  or diag "coordinator:\n$expected\nmismatches:\n" . join("\n", @mismatches);
}

# on_every_shard: the number of shards of $table for which $sql, run on
# the shard's node with %s replaced by the shard's (qualified) name and
# %i by its shard id, returns "t"; compared with the number of shards.
sub on_every_shard
{
	my ($table, $sql, $test_name) = @_;
	my @shards = shards_of($table);
	my $true = 0;
	for my $s (@shards)
	{
		my ($node, $shard_id, $shard_table) = @$s;
		my ($schema, $name) = split /\./, $shard_table;
		(my $q = $sql) =~ s/%s/$shard_table/g;
		$q =~ s/%n/$name/g;
		$q =~ s/%i/$shard_id/g;
		$true++ if query_value($node, $q) eq 't';
	}
	is($true, scalar(@shards), "$test_name (" . scalar(@shards) . " shards)");
}

# run_fails: runs $sql on the coordinator; it must fail.  Returns stderr.
sub run_fails
{
	my ($sql, $test_name) = @_;
	my ($ret, $stdout, $stderr) = $coord->psql('postgres', $sql);
	isnt($ret, 0, $test_name);
	return $stderr;
}

$coord->safe_psql('postgres', q{
	CREATE TABLE accounts (
		id bigint PRIMARY KEY,
		owner text NOT NULL,
		balance numeric(12,2) NOT NULL DEFAULT 0 CHECK (balance >= 0),
		tag text
	);
	INSERT INTO accounts
	SELECT g, 'owner ' || g, g * 10, NULL FROM generate_series(1, 900) g;
	SELECT shardexec.create_distributed_table('accounts', 'id', 6);

	CREATE TABLE currencies (code text PRIMARY KEY, name text NOT NULL);
	INSERT INTO currencies VALUES ('EUR', 'Euro'), ('USD', 'US dollar'), ('JPY', 'Yen');
	SELECT shardexec.create_reference_table('currencies');
});
is(scalar(shards_of('accounts')), 6, 'accounts has 6 shards');
is(scalar(shards_of('currencies')), 3, 'currencies has a placement on each of the 3 nodes');
check_shards_match('accounts', 'after create_distributed_table');
check_shards_match('currencies', 'after create_reference_table');

my $accounts_rows = query_value($coord,
	q{SELECT count(*) || ' ' || md5(string_agg(id || ' ' || balance, ',' ORDER BY id)) FROM accounts});

# ---------------------------------------------------------------------------
# CREATE INDEX / DROP INDEX

$coord->safe_psql('postgres', q{
	CREATE INDEX accounts_owner_idx ON accounts (owner);
	CREATE UNIQUE INDEX accounts_id_owner_key ON accounts (id, owner);
	CREATE INDEX accounts_lower_owner_idx ON accounts (lower(owner)) WHERE balance > 100;
	CREATE INDEX ON currencies (name);
});
on_every_shard('accounts', q{
	SELECT count(*) = 4 FROM pg_indexes WHERE tablename = '%n'},
	'CREATE INDEX: every shard of accounts has the primary key and the three new indexes');
on_every_shard('accounts', q{
	SELECT indexdef ~ '\(lower\(owner\)\) WHERE \(balance > \(?100\)?::numeric\)$'
	  FROM pg_indexes WHERE indexname = 'accounts_lower_owner_idx_%i'},
	'CREATE INDEX: the expression index keeps its expression and predicate on the shards');
on_every_shard('accounts', q{
	SELECT indisunique FROM pg_index WHERE indexrelid = 'public.accounts_id_owner_key_%i'::regclass},
	'CREATE UNIQUE INDEX: the shards\' index is unique');
on_every_shard('currencies', q{
	SELECT count(*) = 2 FROM pg_indexes WHERE tablename = '%n'},
	'CREATE INDEX: every copy of the reference table has the new index');
check_shards_match('accounts', 'CREATE INDEX');
check_shards_match('currencies', 'CREATE INDEX on a reference table');

$coord->safe_psql('postgres', q{DROP INDEX accounts_lower_owner_idx});
on_every_shard('accounts', q{
	SELECT count(*) = 0 FROM pg_indexes WHERE indexname = 'accounts_lower_owner_idx_%i'},
	'DROP INDEX: the index is gone from every shard');
check_shards_match('accounts', 'DROP INDEX');

# ---------------------------------------------------------------------------
# ALTER TABLE ADD / DROP / RENAME COLUMN

$coord->safe_psql('postgres', q{ALTER TABLE accounts ADD COLUMN note text DEFAULT 'none'});
on_every_shard('accounts', q{
	SELECT count(*) = 1 FROM information_schema.columns
	 WHERE table_name = '%n' AND column_name = 'note' AND column_default = '''none''::text'},
	'ADD COLUMN: every shard has the new column with its default');
is(query_value($coord, q{SELECT count(*) FROM accounts WHERE note = 'none'}), '900',
	'ADD COLUMN: the existing rows read back with the default');
check_shards_match('accounts', 'ADD COLUMN');

$coord->safe_psql('postgres', q{ALTER TABLE accounts DROP COLUMN note});
on_every_shard('accounts', q{
	SELECT count(*) = 0 FROM information_schema.columns
	 WHERE table_name = '%n' AND column_name = 'note'},
	'DROP COLUMN: the column is gone from every shard');
check_shards_match('accounts', 'DROP COLUMN');

$coord->safe_psql('postgres', q{
	ALTER TABLE accounts ADD COLUMN region text DEFAULT 'eu', ADD COLUMN score int});
on_every_shard('accounts', q{
	SELECT count(*) = 2 FROM information_schema.columns
	 WHERE table_name = '%n' AND column_name IN ('region', 'score')},
	'ALTER TABLE with two ADD COLUMN subcommands: both columns on every shard');
check_shards_match('accounts', 'ALTER TABLE with several subcommands');

$coord->safe_psql('postgres', q{ALTER TABLE accounts RENAME COLUMN owner TO holder});
on_every_shard('accounts', q{
	SELECT count(*) = 1 FROM information_schema.columns
	 WHERE table_name = '%n' AND column_name = 'holder'},
	'RENAME COLUMN: every shard has the column under its new name');
on_every_shard('accounts', q{
	SELECT indexdef LIKE '%(holder)' FROM pg_indexes WHERE indexname = 'accounts_owner_idx_%i'},
	'RENAME COLUMN: the shards\' index follows the renamed column');
check_shards_match('accounts', 'RENAME COLUMN');
is(query_value($coord, q{SELECT holder FROM accounts WHERE id = 7}), 'owner 7',
	'RENAME COLUMN: the renamed column reads back through the coordinator');

$coord->safe_psql('postgres', q{ALTER TABLE currencies ADD COLUMN symbol text});
$coord->safe_psql('postgres', q{ALTER TABLE currencies RENAME COLUMN name TO full_name});
on_every_shard('currencies', q{
	SELECT count(*) = 1 FROM information_schema.columns
	 WHERE table_name = '%n' AND column_name = 'full_name'},
	'RENAME COLUMN on a reference table: every copy has the new name');
check_shards_match('currencies', 'ADD and RENAME COLUMN on a reference table');

# ---------------------------------------------------------------------------
# ALTER COLUMN TYPE / SET DEFAULT / SET NOT NULL

$coord->safe_psql('postgres', q{ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(14,3)});
on_every_shard('accounts', q{
	SELECT format_type(atttypid, atttypmod) = 'numeric(14,3)' FROM pg_attribute
	 WHERE attrelid = '%s'::regclass AND attname = 'balance'},
	'ALTER COLUMN TYPE: every shard\'s column has the new type');
check_shards_match('accounts', 'ALTER COLUMN TYPE');
is( query_value($coord,
		q{SELECT count(*) || ' ' || md5(string_agg(id || ' ' || balance::numeric(12,2), ',' ORDER BY id)) FROM accounts}),
	$accounts_rows, 'ALTER COLUMN TYPE: the rows keep their values');

$coord->safe_psql('postgres', q{ALTER TABLE accounts ALTER COLUMN holder SET DEFAULT 'anonymous'});
on_every_shard('accounts', q{
	SELECT column_default = '''anonymous''::text' FROM information_schema.columns
	 WHERE table_name = '%n' AND column_name = 'holder'},
	'ALTER COLUMN SET DEFAULT: every shard has the new default');
check_shards_match('accounts', 'ALTER COLUMN SET DEFAULT');
$coord->safe_psql('postgres', q{INSERT INTO accounts (id, balance) VALUES (1001, 5)});
is(query_value($coord, q{SELECT holder FROM accounts WHERE id = 1001}), 'anonymous',
	'ALTER COLUMN SET DEFAULT: an INSERT through the coordinator gets the new default');

$coord->safe_psql('postgres', q{ALTER TABLE accounts ALTER COLUMN region SET NOT NULL});
on_every_shard('accounts', q{
	SELECT attnotnull FROM pg_attribute WHERE attrelid = '%s'::regclass AND attname = 'region'},
	'ALTER COLUMN SET NOT NULL: every shard\'s column is NOT NULL');
check_shards_match('accounts', 'ALTER COLUMN SET NOT NULL');

# tag is NULL in every row: the nodes refuse, and so does the statement
my $err = run_fails(q{ALTER TABLE accounts ALTER COLUMN tag SET NOT NULL},
	'SET NOT NULL over NULLs stored on the nodes fails');
like($err, qr/ERROR:.*contains null values/, 'SET NOT NULL: the nodes\' error is reported');
like($err, qr/"node\d"/, 'SET NOT NULL: the error names a node');
is(query_value($coord, q{SELECT attnotnull FROM pg_attribute
                           WHERE attrelid = 'accounts'::regclass AND attname = 'tag'}),
	'f', 'SET NOT NULL: the coordinator\'s column stays nullable after the failure');
on_every_shard('accounts', q{
	SELECT NOT attnotnull FROM pg_attribute WHERE attrelid = '%s'::regclass AND attname = 'tag'},
	'SET NOT NULL: no shard kept the NOT NULL after the failure');

# ---------------------------------------------------------------------------
# ADD / DROP CONSTRAINT

$coord->safe_psql('postgres', q{
	ALTER TABLE accounts ADD CONSTRAINT balance_limit CHECK (balance < 1000000);
	ALTER TABLE accounts ADD CONSTRAINT accounts_id_region_key UNIQUE (id, region);
});
on_every_shard('accounts', q{
	SELECT count(*) = 2 FROM pg_constraint
	 WHERE conrelid = '%s'::regclass
	   AND conname IN ('balance_limit_%i', 'accounts_id_region_key_%i')},
	'ADD CONSTRAINT: every shard has the CHECK and the UNIQUE constraint');
check_shards_match('accounts', 'ADD CONSTRAINT');
$err = run_fails(q{INSERT INTO accounts (id, holder, balance) VALUES (2001, 'rich', 5000000)},
	'ADD CONSTRAINT: a row violating the new CHECK is refused');
like($err, qr/balance_limit/, 'ADD CONSTRAINT: the error names the violated constraint');

$coord->safe_psql('postgres', q{ALTER TABLE accounts DROP CONSTRAINT balance_limit});
on_every_shard('accounts', q{
	SELECT count(*) = 0 FROM pg_constraint WHERE conname = 'balance_limit_%i'},
	'DROP CONSTRAINT: the constraint is gone from every shard');
check_shards_match('accounts', 'DROP CONSTRAINT');

# a CHECK that rows on the nodes violate: the statement fails everywhere
$err = run_fails(q{ALTER TABLE accounts ADD CONSTRAINT small_balance CHECK (balance < 100)},
	'ADD CONSTRAINT violated by rows on the nodes fails');
like($err, qr/ERROR:.*small_balance.*violated/, 'ADD CONSTRAINT: the nodes\' error is reported');
is(query_value($coord, q{SELECT count(*) FROM pg_constraint WHERE conname = 'small_balance'}),
	'0', 'ADD CONSTRAINT: the coordinator has no trace of the failed constraint');
on_every_shard('accounts', q{
	SELECT count(*) = 0 FROM pg_constraint WHERE conname = 'small_balance_%i'},
	'ADD CONSTRAINT: no shard kept the failed constraint');
check_shards_match('accounts', 'after the failed ADD CONSTRAINT');

$coord->safe_psql('postgres', q{ALTER TABLE currencies ADD CONSTRAINT code_length CHECK (length(code) = 3)});
check_shards_match('currencies', 'ADD CONSTRAINT on a reference table');
on_every_shard('currencies', q{
	SELECT count(*) = 1 FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'c'},
	'ADD CONSTRAINT on a reference table: every copy has it');

# ---------------------------------------------------------------------------
# ALTER TABLE RENAME

my @old_names = map { $_->[2] } shards_of('accounts');
$coord->safe_psql('postgres', q{ALTER TABLE accounts RENAME TO customers});
my @new_shards = shards_of('customers');
is(join(' ', map { $_->[2] } @new_shards),
	join(' ', map { s/accounts_/customers_/r } @old_names),
	'ALTER TABLE RENAME: shardexec.shards names the renamed shard tables');
on_every_shard('customers', q{SELECT to_regclass('%s') IS NOT NULL},
	'ALTER TABLE RENAME: every shard table has the new name on its node');
{
	my $left = 0;
	for my $name (@old_names)
	{
		$left += grep { query_value($_, "SELECT to_regclass('$name') IS NOT NULL") eq 't' } @nodes;
	}
	is($left, 0, 'ALTER TABLE RENAME: no shard table is left under the old name');
}
check_shards_match('customers', 'ALTER TABLE RENAME');
is(query_value($coord, q{SELECT count(*) FROM customers}), '901',
	'ALTER TABLE RENAME: the renamed table reads back its rows');
$coord->safe_psql('postgres', q{INSERT INTO customers (id, holder, balance) VALUES (3001, 'after rename', 1)});
is(query_value($coord, q{SELECT holder FROM customers WHERE id = 3001}), 'after rename',
	'ALTER TABLE RENAME: INSERT into the renamed table works');

# ---------------------------------------------------------------------------
# TRUNCATE

$coord->safe_psql('postgres', q{TRUNCATE customers, currencies});
on_every_shard('customers', q{SELECT count(*) = 0 FROM %s},
	'TRUNCATE: every shard of the distributed table is empty');
on_every_shard('currencies', q{SELECT count(*) = 0 FROM %s},
	'TRUNCATE: every copy of the reference table is empty');
is(query_value($coord, q{SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM currencies)}),
	'0', 'TRUNCATE: the coordinator reads no rows');

# ---------------------------------------------------------------------------
# DROP TABLE

my @all_shards = (shards_of('customers'), shards_of('currencies'));
$coord->safe_psql('postgres', q{DROP TABLE customers, currencies});
{
	my $left = 0;
	for my $s (@all_shards)
	{
		$left += grep { query_value($_, "SELECT to_regclass('$s->[2]') IS NOT NULL") eq 't' } @nodes;
	}
	is($left, 0, 'DROP TABLE: no shard table is left on any node');
}
is(query_value($coord, q{SELECT count(*) FROM shardexec.shard}), '0',
	'DROP TABLE: no shard is left in the metadata');
is( join(' ', map { query_value($_, q{SELECT count(*) FROM pg_tables WHERE schemaname = 'public'}) } @nodes),
	'0 0 0', 'DROP TABLE: the nodes\' public schemas are empty');

done_testing();
