# test/t/001_foundation.pl: the foundation end to end, on real instances.
#
# A coordinator and three node instances (ShardexecTest::start_cluster).
# The test adds the nodes, distributes a table that already holds rows of
# several types (with a generated column, and a dropped column whose
# values the stored rows still carry), a table colocated with it, a
# reference table and a table with quoted names distributed by a text
# column, and then looks at the nodes directly, not only through the
# coordinator:
#
#   - the coordinator reads back exactly the rows it had before (count and
#     an md5 over every row's text form, in id order);
#   - every shard table that shardexec.shards names exists on its node and
#     on no other, with the table's constraints and indexes, and holds
#     exactly the rows whose shard_id_for_value is its shard: the per-shard
#     counts and id lists read on the nodes equal those computed on the
#     coordinator, and, independently of the extension, the type's hash
#     function (hashint8, hashtext) of every stored row's distribution
#     value lies in the shard's hash range;
#   - the colocated table's shard i is on the node of the first table's
#     shard i, so each of its rows finds its parent row on the same node;
#   - the reference table has a full, identical copy on every node;
#   - INSERT, INSERT ... SELECT and COPY through the coordinator land on
#     the right node;
#   - undistribute_table brings the rows back into the local table and
#     drops the shards (of a distributed and of a reference table);
#   - DROP TABLE removes the shards from every node, and the metadata.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ShardexecTest qw(start_cluster query_value node_count shard_row_counts);

my ($coord, @nodes) = start_cluster(nodes => 3);
my %node_by_name = map { $_->name => $_ } @nodes;

# fingerprint: "count md5" over the rows of $table, in $order, read through
# the coordinator.
sub fingerprint
{
	my ($table, $order) = @_;
	return query_value($coord,
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(r::text, E'\\n' ORDER BY $order)), '-')"
		  . " FROM $table r");
}

# shards_of: the rows of shardexec.shards for $table, by shard index, as
# hash references.
sub shards_of
{
	my ($table) = @_;
	my $out = $coord->safe_psql('postgres', qq{
		SELECT shard_id, shard_index, hash_min, hash_max, node_name, shard_table
		  FROM shardexec.shards
		 WHERE table_name = '$table'::regclass
		 ORDER BY shard_index, node_name});
	my @shards;
	for my $line (split /\n/, $out)
	{
		my %s;
		@s{qw(shard_id shard_index hash_min hash_max node_name shard_table)} =
		  split /\|/, $line;
		push @shards, \%s;
	}
	return @shards;
}

# table_exists_on: whether $qualified_name is a table on $node.
sub table_exists_on
{
	my ($node, $qualified_name) = @_;
	return query_value($node, "SELECT to_regclass('$qualified_name') IS NOT NULL") eq 't';
}

# check_hash_placement: for every shard of $table, the shard table exists
# on its node and on no other, and holds exactly the rows whose
# shard_id_for_value is its shard.  $key is the (quoted) distribution
# column, $hash the hash function of its type (default: id, hashint8).
sub check_hash_placement
{
	my ($table, $label, $key, $hash) = @_;
	$key //= 'id';
	$hash //= 'hashint8';
	my @shards = shards_of($table);

	# expected per-shard counts and id lists, computed on the coordinator
	my %expected;
	for my $line (split /\n/, $coord->safe_psql('postgres', qq{
		SELECT shardexec.shard_id_for_value('$table', $key), count(*),
		       md5(string_agg(${key}::text, ',' ORDER BY ${key}::text COLLATE "C"))
		  FROM $table GROUP BY 1}))
	{
		my ($shard_id, $count, $md5) = split /\|/, $line;
		$expected{$shard_id} = "$count $md5";
	}

	my ($missing, $elsewhere, $wrong_rows, $outside_range) = (0, 0, 0, 0);
	my @details;
	for my $s (@shards)
	{
		my $node = $node_by_name{ $s->{node_name} };
		if (!table_exists_on($node, $s->{shard_table}))
		{
			$missing++;
			push @details, "$s->{shard_table} missing on $s->{node_name}";
			next;
		}
		for my $other (grep { $_->name ne $s->{node_name} } @nodes)
		{
			if (table_exists_on($other, $s->{shard_table}))
			{
				$elsewhere++;
				push @details, "$s->{shard_table} also on " . $other->name;
			}
		}
		my ($count, $md5, $outside) = split /\|/, query_value($node, qq{
			SELECT count(*), md5(string_agg(${key}::text, ',' ORDER BY ${key}::text COLLATE "C")),
			       count(*) FILTER (WHERE $hash($key) NOT BETWEEN $s->{hash_min} AND $s->{hash_max})
			  FROM $s->{shard_table}});
		my $got = $count == 0 ? undef : "$count $md5";
		if (($got // '') ne ($expected{ $s->{shard_id} } // ''))
		{
			$wrong_rows++;
			push @details,
			  "$s->{shard_table} on $s->{node_name}: "
			  . ($got // 'no rows')
			  . ", expected "
			  . ($expected{ $s->{shard_id} } // 'no rows');
		}
		$outside_range += $outside;
	}
	is($missing, 0, "$label: every shard table exists on its node") or diag join "\n", @details;
	is($elsewhere, 0, "$label: no shard table exists on another node") or diag join "\n", @details;
	is($wrong_rows, 0,
		"$label: each shard holds exactly the rows shard_id_for_value assigns to it")
	  or diag join "\n", @details;
	is($outside_range, 0,
		"$label: $hash($key) of every row stored on a node lies in its shard's hash range");
}

# ---------------------------------------------------------------------------
# Nodes

is( query_value($coord, q{
		SELECT string_agg(format('%s %s %s %s', node_name, host, port, dbname), ', ' ORDER BY node_id)
		  FROM shardexec.nodes}),
	join(', ', map { sprintf('%s 127.0.0.1 %d postgres', $_->name, $_->port) } @nodes),
	'shardexec.nodes lists the three nodes with host, port and database');

# ---------------------------------------------------------------------------
# A distributed table with existing rows

$coord->safe_psql('postgres', q{
	CREATE TABLE orders (
		id bigint PRIMARY KEY,
		customer text NOT NULL,
		amount numeric(12,2) CHECK (amount >= 0),
		placed_at timestamptz NOT NULL DEFAULT now(),
		paid boolean DEFAULT false,
		tags text[],
		details jsonb,
		ref uuid,
		junk int DEFAULT 7,
		amount_cents bigint GENERATED ALWAYS AS ((amount * 100)::bigint) STORED,
		UNIQUE (id, ref)
	);
	CREATE INDEX orders_customer_idx ON orders (customer);
	INSERT INTO orders
	SELECT g,
	       'customer ' || (g % 97) || CASE WHEN g % 11 = 0 THEN ' ünïcödé' ELSE '' END,
	       CASE WHEN g % 13 = 0 THEN NULL ELSE (g * 1.25)::numeric(12,2) END,
	       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute 7 seconds',
	       g % 3 = 0,
	       CASE WHEN g % 5 = 0 THEN NULL ELSE ARRAY['t' || g % 7, 'quote''d', 'x y'] END,
	       jsonb_build_object('n', g, 'half', g / 2.0, 'nested', jsonb_build_array(g, 'a"b')),
	       md5(g::text)::uuid
	  FROM generate_series(1, 6000) g;
	-- the stored rows keep a value for the dropped column
	ALTER TABLE orders DROP COLUMN junk;
});

my $orders_before = fingerprint('orders', 'id');
like($orders_before, qr/^6000 [0-9a-f]{32}$/, 'orders has 6000 rows before distribution');

$coord->safe_psql('postgres',
	q{SELECT shardexec.create_distributed_table('orders', 'id', 8)});

is(fingerprint('orders', 'id'), $orders_before,
	'the coordinator reads back exactly the same rows after create_distributed_table');
is(query_value($coord, q{
		SELECT format('%s %s %s %s', table_name, kind, distribution_column, shard_count)
		  FROM shardexec.tables WHERE table_name = 'orders'::regclass}),
	'orders distributed id 8', 'shardexec.tables describes orders');
is(query_value($coord, q{SELECT pg_relation_size('orders')}), '0',
	'the local table is an empty shell');

my @orders_shards = shards_of('orders');
is(scalar(@orders_shards), 8, 'orders has 8 shards, one placement each');
is(join(' ', map { $_->{node_name} } @orders_shards),
	join(' ', map { $nodes[ $_ % 3 ]->name } 0 .. 7),
	'shards are placed round-robin over the nodes');
my $contiguous = $orders_shards[0]{hash_min} == -2147483648
  && $orders_shards[-1]{hash_max} == 2147483647;
for my $i (1 .. $#orders_shards)
{
	$contiguous &&= $orders_shards[$i]{hash_min} == $orders_shards[ $i - 1 ]{hash_max} + 1;
}
ok($contiguous, 'the shards\' hash ranges cover the 32-bit hash space without gaps or overlaps');
is(join(' ', map { $_->{shard_table} } @orders_shards),
	join(' ', map { "public.orders_$_->{shard_id}" } @orders_shards),
	'shard tables are named <table>_<shard id>');

check_hash_placement('orders', 'after create_distributed_table');
is(total_rows('orders'), 6000, 'the shards hold 6000 rows in all');

# total_rows: the sum of the rows of $table's shards, counted on the nodes.
sub total_rows
{
	my $sum = 0;
	$sum += $_ for values %{ shard_row_counts($coord, \@nodes, $_[0]) };
	return $sum;
}

# the shard tables carry the table's constraints and indexes
{
	my $s = $orders_shards[0];
	my $node = $node_by_name{ $s->{node_name} };
	my ($schema, $name) = split /\./, $s->{shard_table};
	is( query_value($node, qq{
			SELECT string_agg(contype::text, '' ORDER BY contype::text)
			  FROM pg_constraint WHERE conrelid = '$s->{shard_table}'::regclass}),
		'cpu',
		"$s->{shard_table} has the CHECK, PRIMARY KEY and UNIQUE constraints");
	is( query_value($node, qq{
			SELECT count(*) FROM pg_indexes
			 WHERE schemaname = '$schema' AND tablename = '$name'
			   AND indexdef LIKE '%(customer)%'}),
		'1', "$s->{shard_table} has the index on customer");
	is( query_value($node, qq{
			SELECT string_agg(column_name || ':' || is_nullable, ' ' ORDER BY ordinal_position)
			  FROM information_schema.columns
			 WHERE table_schema = '$schema' AND table_name = '$name'}),
		'id:NO customer:NO amount:YES placed_at:NO paid:YES tags:YES details:YES ref:YES amount_cents:YES',
		"$s->{shard_table} has the table's columns (not the dropped one) and NOT NULLs");
	is( query_value($node, qq{
			SELECT is_generated || ' ' || generation_expression FROM information_schema.columns
			 WHERE table_schema = '$schema' AND table_name = '$name' AND column_name = 'amount_cents'}),
		'ALWAYS ((amount * (100)::numeric))::bigint',
		"$s->{shard_table} has the generated column");
}

# generated_mismatches: the number of rows of orders' shards whose
# generated column does not match its expression (0 expected).
sub generated_mismatches
{
	my $bad = 0;
	for my $s (shards_of('orders'))
	{
		$bad += node_count($node_by_name{ $s->{node_name} }, qq{
			SELECT count(*) FROM $s->{shard_table}
			 WHERE amount_cents IS DISTINCT FROM (amount * 100)::bigint});
	}
	return $bad;
}
is(generated_mismatches(), 0, 'the generated column is filled on every shard');

# ---------------------------------------------------------------------------
# A colocated table

$coord->safe_psql('postgres', q{
	CREATE TABLE order_lines (
		order_id bigint NOT NULL,
		line int NOT NULL,
		qty int NOT NULL DEFAULT 1,
		note text,
		PRIMARY KEY (order_id, line)
	);
	INSERT INTO order_lines
	SELECT o, l, o % 9 + l, CASE WHEN l = 2 THEN 'second' END
	  FROM generate_series(1, 2000) o, generate_series(1, 3) l;
});
my $lines_before = fingerprint('order_lines', 'order_id, line');
$coord->safe_psql('postgres',
	q{SELECT shardexec.create_distributed_table('order_lines', 'order_id', 8, colocate_with => 'orders')});

is(fingerprint('order_lines', 'order_id, line'), $lines_before,
	'the colocated table reads back the same 6000 rows');
is( query_value($coord, q{
		SELECT count(DISTINCT colocation_id) FROM shardexec.tables
		 WHERE table_name IN ('orders'::regclass, 'order_lines'::regclass)}),
	'1', 'orders and order_lines share a colocation group');
my @lines_shards = shards_of('order_lines');
is(join(' ', map { $_->{node_name} } @lines_shards),
	join(' ', map { $_->{node_name} } @orders_shards),
	'shard i of order_lines is on the node of shard i of orders');
is( query_value($coord, q{
		SELECT count(*) FROM generate_series(1, 2000) g
		 WHERE (SELECT shard_index FROM shardexec.shards
		         WHERE shard_id = shardexec.shard_id_for_value('orders', g::bigint))
		    <> (SELECT shard_index FROM shardexec.shards
		         WHERE shard_id = shardexec.shard_id_for_value('order_lines', g::bigint))}),
	'0', 'a value maps to the same shard index in both tables');
check_hash_placement_lines();

# every row of a colocated shard finds its order in the orders shard on the
# same node
sub check_hash_placement_lines
{
	my $orphans = 0;
	for my $i (0 .. $#lines_shards)
	{
		my $node = $node_by_name{ $lines_shards[$i]{node_name} };
		$orphans += node_count($node, qq{
			SELECT count(*) FROM $lines_shards[$i]{shard_table} l
			 WHERE NOT EXISTS (SELECT 1 FROM $orders_shards[$i]{shard_table} o
			                    WHERE o.id = l.order_id)});
	}
	is($orphans, 0,
		'every order line is stored on the node of its order, next to it');
}

# ---------------------------------------------------------------------------
# A reference table

$coord->safe_psql('postgres', q{
	CREATE TABLE countries (
		code char(2) PRIMARY KEY,
		name text NOT NULL,
		population bigint CHECK (population > 0)
	);
	INSERT INTO countries
	SELECT chr(65 + g / 26) || chr(65 + g % 26), 'country ' || g, 1000 * g + 1
	  FROM generate_series(0, 199) g;
});
my $countries_before = fingerprint('countries', 'code');
$coord->safe_psql('postgres', q{SELECT shardexec.create_reference_table('countries')});

is(fingerprint('countries', 'code'), $countries_before,
	'the reference table reads back the same rows');
is( query_value($coord, q{
		SELECT kind FROM shardexec.tables WHERE table_name = 'countries'::regclass}),
	'reference', 'shardexec.tables lists countries as a reference table');
my @country_shards = shards_of('countries');
is(join(' ', map { $_->{node_name} } @country_shards),
	join(' ', map { $_->name } @nodes),
	'the reference table has one shard with a placement on every node');

# check_reference_copies: every node's copy of countries equals the
# coordinator's view of it
sub check_reference_copies
{
	my ($label) = @_;
	my $expected = fingerprint('countries', 'code');
	for my $s (@country_shards)
	{
		my $node = $node_by_name{ $s->{node_name} };
		is( query_value($node, qq{
				SELECT count(*) || ' ' || coalesce(md5(string_agg(r::text, E'\\n' ORDER BY code)), '-')
				  FROM $s->{shard_table} r}),
			$expected, "$label: $s->{node_name} has a full copy of countries");
	}
}
check_reference_copies('after create_reference_table');

$coord->safe_psql('postgres', q{
	INSERT INTO countries VALUES ('zz', 'new country', 42);
});
is(query_value($coord, q{SELECT count(*) FROM countries}), '201',
	'INSERT into the reference table through the coordinator');
check_reference_copies('after INSERT');

# ---------------------------------------------------------------------------
# A table distributed by a text column, with quoted names

$coord->safe_psql('postgres', q{
	CREATE SCHEMA "Sales Dept";
	CREATE TABLE "Sales Dept"."Customer Notes" (
		"Customer Key" text PRIMARY KEY,
		"Note Text" text,
		CONSTRAINT "Key ""Format""" CHECK ("Customer Key" LIKE 'cust-%')
	);
	CREATE INDEX "Notes By Text" ON "Sales Dept"."Customer Notes" ("Note Text");
	INSERT INTO "Sales Dept"."Customer Notes"
	SELECT 'cust-' || g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || g END
	  FROM generate_series(1, 1500) g;
});
my $notes = q{"Sales Dept"."Customer Notes"};
my $notes_before = fingerprint($notes, q{"Customer Key" COLLATE "C"});
$coord->safe_psql('postgres',
	qq{SELECT shardexec.create_distributed_table('$notes', 'Customer Key', 5)});
is(fingerprint($notes, q{"Customer Key" COLLATE "C"}), $notes_before,
	'a table distributed by a text column reads back the same rows');
check_hash_placement($notes, 'text distribution column', q{"Customer Key"}, 'hashtext');
{
	my ($s) = shards_of($notes);
	like($s->{shard_table}, qr/^"Sales Dept"\."Customer Notes_\d+"$/,
		'the shard table of a quoted name is quoted in shardexec.shards');
	is( query_value($node_by_name{ $s->{node_name} }, qq{
			SELECT (SELECT count(*) FROM pg_indexes
			         WHERE indexname = 'Notes By Text_$s->{shard_id}')
			     + (SELECT count(*) FROM pg_constraint
			         WHERE conname = 'Key "Format"_$s->{shard_id}')}),
		'2', 'the shard has the quoted index and CHECK constraint');
}
is( query_value($coord, qq{
		SELECT shardexec.shard_id_for_value('$notes', 'cust-42'::text)
		     = shardexec.shard_id_for_value('$notes', 'cust-42'::varchar)}),
	't', 'shard_id_for_value converts a value of another type to the column type');

# ---------------------------------------------------------------------------
# INSERT, INSERT ... SELECT and COPY through the coordinator

$coord->safe_psql('postgres', q{
	INSERT INTO orders (id, customer, amount) VALUES (100001, 'single row', 1.50);
	INSERT INTO orders (id, customer, amount, tags)
	SELECT g, 'from select ' || g, g, ARRAY['s']
	  FROM generate_series(100002, 100300) g;
});
$coord->safe_psql('postgres', qq{
COPY orders (id, customer, amount, placed_at, details) FROM STDIN;
200001\tcopied one\t10.00\t2024-06-01 12:00:00+00\t{"copy": 1}
200002\tcopied two\t\\N\t2024-06-02 12:00:00+00\t\\N
200003\tcopied, "three"\t3.33\t2024-06-03 12:00:00+00\t[1, 2, 3]
\\.
});
$coord->safe_psql('postgres', q{
COPY orders (id, customer) FROM STDIN WITH (FORMAT csv);
300001,csv one
300002,"csv, two"
\.
});

is(query_value($coord, q{SELECT count(*) FROM orders}), '6305',
	'INSERT, INSERT ... SELECT and COPY added 305 rows');
is( query_value($coord, q{
		SELECT string_agg(format('%s %s %s', id, customer, coalesce(amount::text, 'null')), '; ' ORDER BY id)
		  FROM orders WHERE id IN (100001, 200002, 200003, 300002)}),
	'100001 single row 1.50; 200002 copied two null; 200003 copied, "three" 3.33; 300002 csv, two null',
	'rows inserted and copied through the coordinator read back');
is( query_value($coord, q{
		SELECT count(*) FROM orders
		 WHERE id > 100000 AND (paid IS DISTINCT FROM false OR placed_at IS NULL)}),
	'0', 'INSERT and COPY filled omitted columns with their defaults');
check_hash_placement('orders', 'after INSERT and COPY');
is(generated_mismatches(), 0, 'INSERT and COPY filled the generated column on the shards');
is(query_value($coord, q{SELECT pg_relation_size('orders')}), '0',
	'INSERT and COPY wrote nothing into the local table');

# a single-row INSERT lands on the node of its shard and only there
{
	my $shard_id = query_value($coord,
		q{SELECT shardexec.shard_id_for_value('orders', 100001::bigint)});
	my ($s) = grep { $_->{shard_id} == $shard_id } @orders_shards;
	is(node_count($node_by_name{ $s->{node_name} },
			"SELECT count(*) FROM $s->{shard_table} WHERE id = 100001"),
		1, "the row with id 100001 is in $s->{shard_table} on $s->{node_name}");
}

# ---------------------------------------------------------------------------
# undistribute_table

$lines_before = fingerprint('order_lines', 'order_id, line');
$coord->safe_psql('postgres', q{SELECT shardexec.undistribute_table('order_lines')});
is(fingerprint('order_lines', 'order_id, line'), $lines_before,
	'undistribute_table: the table reads back the same rows');
is(query_value($coord, q{SELECT count(*) FROM shardexec.tables WHERE table_name::text = 'order_lines'}),
	'0', 'undistribute_table: the table is no longer in shardexec.tables');
is(query_value($coord, q{SELECT count(*) FROM shardexec.shard WHERE table_id::text = 'order_lines'}),
	'0', 'undistribute_table: its shards are no longer in the metadata');
ok(query_value($coord, q{SELECT pg_relation_size('order_lines') > 0}) eq 't',
	'undistribute_table: the rows are back in the local table');
{
	my $left = 0;
	for my $s (@lines_shards)
	{
		$left += grep { table_exists_on($_, $s->{shard_table}) } @nodes;
	}
	is($left, 0, 'undistribute_table: no shard of order_lines remains on any node');
}
$coord->safe_psql('postgres', q{INSERT INTO order_lines VALUES (1, 4, 1, 'local again')});
is(query_value($coord, q{SELECT count(*) FROM order_lines WHERE order_id = 1}), '4',
	'undistribute_table: the table is an ordinary local table again');
like(fingerprint('orders', 'id'), qr/^6305 [0-9a-f]{32}$/,
	'orders is unaffected by undistributing a table colocated with it');

# a reference table comes back too
$coord->safe_psql('postgres', q{
	CREATE TABLE units (code text PRIMARY KEY, factor numeric NOT NULL);
	INSERT INTO units SELECT 'u' || g, g / 7.0 FROM generate_series(1, 300) g;
	SELECT shardexec.create_reference_table('units');
});
my ($units_shard) = map { $_->{shard_table} } shards_of('units');
my $units_before = fingerprint('units', 'code');
is(scalar(grep { table_exists_on($_, $units_shard) } @nodes), 3,
	'a second reference table has a copy on the three nodes');
$coord->safe_psql('postgres', q{SELECT shardexec.undistribute_table('units')});
is(fingerprint('units', 'code'), $units_before,
	'undistribute_table of a reference table: the rows are back');
is(scalar(grep { table_exists_on($_, $units_shard) } @nodes), 0,
	'undistribute_table of a reference table: no copy remains on any node');
$coord->safe_psql('postgres', q{DROP TABLE units});

# ---------------------------------------------------------------------------
# DROP TABLE

$coord->safe_psql('postgres', q{DROP TABLE orders});
{
	my $left = 0;
	for my $s (@orders_shards)
	{
		$left += grep { table_exists_on($_, $s->{shard_table}) } @nodes;
	}
	is($left, 0, 'DROP TABLE removed every shard of orders from every node');
}
is(query_value($coord, q{SELECT count(*) FROM shardexec.shard s
                           WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.table_id)}),
	'0', 'DROP TABLE removed the shards of orders from the metadata');

$coord->safe_psql('postgres', qq{DROP TABLE countries, $notes});
is(total_count_on_nodes(q{SELECT count(*) FROM pg_tables WHERE tablename LIKE 'countries\_%'}), 0,
	'DROP TABLE removed the reference table\'s copy from every node');
is(query_value($coord, q{SELECT count(*) FROM shardexec.tables}), '0',
	'no distributed or reference table is left in the metadata');
is(total_count_on_nodes(q{SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'Sales Dept')}), 0,
	'no table of any kind is left in the nodes\' schemas');

sub total_count_on_nodes
{
	my ($sql) = @_;
	my $sum = 0;
	$sum += node_count($_, $sql) for @nodes;
	return $sum;
}

done_testing();
