# test/perl/ShardexecTest.pm: start a shardexec cluster (a coordinator and N
# nodes) for TAP tests, on top of PostgreSQL::Test::Cluster.
#
# Each instance is an ordinary PostgreSQL::Test::Cluster node in
# $TESTDIR/tmp_check, with a port picked (and reserved) by Cluster.pm.  On
# Unix, Cluster.pm configures instances for Unix sockets only
# (listen_addresses = ''), and the harness's own connections (safe_psql, ...)
# go through that socket.  The coordinator, however, reaches its nodes the way
# a real deployment does, over TCP: so every instance also gets
# listen_addresses = '127.0.0.1' appended to postgresql.conf (the last setting
# wins) and an explicit "host all all 127.0.0.1/32 trust" in pg_hba.conf.
# This keeps the harness untouched (no fiddling with $use_tcp or
# $use_unix_sockets, which Cluster.pm reads in INIT blocks) and listens on
# 127.0.0.1 only.  Nodes are registered as add_node('nodeK', '127.0.0.1',
# <port>, 'postgres').
#
# scripts/test.sh runs prove with -I for this directory and for the
# PostgreSQL TAP modules, as the postgres OS user, with TESTDIR and
# PG_REGRESS set.

package ShardexecTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT_OK = qw(start_cluster query_value node_count total_count
  shard_row_counts);

=pod

=head1 NAME

ShardexecTest - coordinator and nodes for shardexec TAP tests

=head1 SYNOPSIS

  use lib 'perl';    # not needed under scripts/test.sh
  use ShardexecTest qw(start_cluster node_count shard_row_counts);

  my ($coord, @nodes) = start_cluster(nodes => 3);
  $coord->safe_psql('postgres', q{
      CREATE TABLE t (id bigint PRIMARY KEY, v text);
      SELECT shardexec.create_distributed_table('t', 'id', 8);
      INSERT INTO t SELECT g, 'x' FROM generate_series(1, 100) g;
  });
  # every row is stored once, somewhere on the nodes
  my $rows = shard_row_counts($coord, \@nodes, 't');
  my $sum = 0;
  $sum += $_ for values %$rows;
  is($sum, 100, 'rows moved to the shards');
  is(node_count($coord, 'SELECT count(*) FROM t'), 100, 'count through the coordinator');

=head1 FUNCTIONS

=over

=item start_cluster(%options)

Creates, configures and starts a coordinator (named C<coordinator>) and
C<nodes> node instances (named C<node1> .. C<nodeN>), then runs
C<CREATE EXTENSION shardexec> in the coordinator's C<postgres> database and
C<shardexec.add_node('nodeK', '127.0.0.1', port, 'postgres')> for each node.
Returns C<($coordinator, @nodes)>, PostgreSQL::Test::Cluster objects; the
instances are stopped by Cluster.pm when the test script exits.

Options:

=over

=item nodes => N

Number of nodes (default 3).

=item coordinator_conf => '...', node_conf => '...'

Extra postgresql.conf lines for the coordinator / for every node, appended
after the defaults (so they override them).  Coordinator defaults:
C<shared_preload_libraries = 'shardexec'>, C<max_prepared_transactions = 20>,
C<shared_buffers = 32MB>.  Node defaults: C<max_prepared_transactions = 20>,
C<shared_buffers = 16MB>.  All: C<listen_addresses = '127.0.0.1'>.

=item allows_streaming => 0 | 1 | 'logical'

Passed to C<init> of every instance (default 0), for tests that add replicas.

=item create_extension => 1, add_nodes => 1

Set to 0 to skip C<CREATE EXTENSION> / the C<add_node> calls.

=back

=cut

sub start_cluster
{
    my (%opt) = @_;
    my $n_nodes = $opt{nodes} // 3;
    my $streaming = $opt{allows_streaming} // 0;

    my $coord = _new_instance(
        'coordinator', $streaming, <<'EOC', $opt{coordinator_conf});
shared_preload_libraries = 'shardexec'
max_prepared_transactions = 20
shared_buffers = 32MB
EOC

    my @nodes;
    for my $i (1 .. $n_nodes)
    {
        push @nodes, _new_instance("node$i", $streaming, <<'EON', $opt{node_conf});
max_prepared_transactions = 20
shared_buffers = 16MB
EON
    }

    $_->start for ($coord, @nodes);

    if ($opt{create_extension} // 1)
    {
        $coord->safe_psql('postgres', 'CREATE EXTENSION shardexec');
        if ($opt{add_nodes} // 1)
        {
            for my $node (@nodes)
            {
                $coord->safe_psql('postgres',
                    sprintf(
                        q{SELECT shardexec.add_node('%s', '127.0.0.1', %d, 'postgres')},
                        $node->name, $node->port));
            }
        }
    }

    return ($coord, @nodes);
}

# _new_instance: init one instance with the common settings, then $conf, then
# the caller's $extra; reachable over TCP on 127.0.0.1 with trust auth.
sub _new_instance
{
    my ($name, $streaming, $conf, $extra) = @_;
    my $node = PostgreSQL::Test::Cluster->new($name);

    $node->init(allows_streaming => $streaming);
    $node->append_conf('postgresql.conf',
        "\n# Added by ShardexecTest.pm\nlisten_addresses = '127.0.0.1'\n"
          . $conf
          . ($extra // ''));
    $node->append_conf('pg_hba.conf', "host all all 127.0.0.1/32 trust\n");
    return $node;
}

=item query_value($instance, $sql [, $dbname])

Runs C<$sql> with C<safe_psql> (default database C<postgres>) and returns its
output, trimmed.  Dies on error.

=cut

sub query_value
{
    my ($instance, $sql, $dbname) = @_;
    my $out = $instance->safe_psql($dbname // 'postgres', $sql);
    $out =~ s/^\s+|\s+$//g;
    return $out;
}

=item node_count($instance, $sql)

Runs C<$sql>, which must return one integer (e.g. C<SELECT count(*) ...>), on
C<$instance>'s C<postgres> database and returns it as a number.  Dies
otherwise.

=cut

sub node_count
{
    my ($instance, $sql) = @_;
    my $v = query_value($instance, $sql);
    die "node_count: \"$sql\" on " . $instance->name . " returned \"$v\", not an integer\n"
      unless $v =~ /^-?\d+$/;
    return 0 + $v;
}

=item total_count(\@instances, $sql)

The sum of C<node_count($_, $sql)> over C<@instances>.

=cut

sub total_count
{
    my ($instances, $sql) = @_;
    my $sum = 0;
    $sum += node_count($_, $sql) for @$instances;
    return $sum;
}

=item shard_row_counts($coordinator, \@nodes, $table)

Looks up the shards of C<$table> in the coordinator's C<shardexec.shards> and
counts the rows of each shard table directly on its node.  Returns a hash
reference C<< { node_name => rows } >> with an entry (possibly 0) for every
node that holds a shard of C<$table>.

=cut

sub shard_row_counts
{
    my ($coord, $nodes, $table) = @_;
    my %by_name = map { $_->name => $_ } @$nodes;
    my $list = $coord->safe_psql(
        'postgres', sprintf(
            q{SELECT node_name, shard_table FROM shardexec.shards
              WHERE table_name::regclass = %s::regclass ORDER BY shard_index},
            _quote_literal($table)));
    my %rows;
    for my $line (split /\n/, $list)
    {
        my ($node_name, $shard_table) = split /\|/, $line, 2;
        my $node = $by_name{$node_name}
          or die "shard_row_counts: shard on unknown node \"$node_name\"\n";
        $rows{$node_name} //= 0;
        $rows{$node_name} +=
          node_count($node, "SELECT count(*) FROM $shard_table");
    }
    return \%rows;
}

sub _quote_literal
{
    my ($s) = @_;
    $s =~ s/'/''/g;
    return "'$s'";
}

=back

=cut

1;
