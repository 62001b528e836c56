# test/t/005_symbols.pl: shardexec.so defines no global symbol that the
# postgres executable or libpq also defines.
#
# An extension's global functions share one namespace with the server: a
# call to a function whose name the postgres executable also exports is
# bound to the server's function, silently.  shardexec once had an
# exported RecoverPreparedTransactions, which is also PostgreSQL's startup
# routine for prepared transactions: shardexec's recovery then ran the
# server's, which re-acquired the locks of every prepared transaction in
# shared memory and lost the data of one committed afterwards, while the
# real recovery never ran.  This compares the dynamic symbols with nm; it
# starts no server.

use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;

my ($nm_ok) = run_command([ 'sh', '-c', 'command -v nm' ]);
plan skip_all => 'nm (binutils) is not installed' unless $nm_ok =~ /nm/;

# the installation the tests run against: pg_config of the PATH
my ($pkglibdir) = run_command([ 'pg_config', '--pkglibdir' ]);
my ($bindir) = run_command([ 'pg_config', '--bindir' ]);
chomp($pkglibdir, $bindir);

# defined: the global symbols a shared object or executable defines
sub defined_symbols
{
	my ($file) = @_;
	my ($out, $err) = run_command([ 'nm', '-D', '--defined-only', $file ]);
	my %symbols;
	for my $line (split /\n/, $out)
	{
		# "address type name"; weak and local symbols do not clash
		my ($type, $name) = $line =~ /^\S*\s+([A-Za-z])\s+(\S+)$/ or next;
		next unless $type =~ /^[TDBRV]$/;
		$symbols{$name} = 1;
	}
	return \%symbols;
}

my $shardexec = "$pkglibdir/shardexec.so";
ok(-f $shardexec, "shardexec.so is installed in $pkglibdir");
my $ours = defined_symbols($shardexec);
ok(scalar(keys %$ours) > 100, 'shardexec.so exports its functions ('
	  . scalar(keys %$ours) . ')');

my $server = defined_symbols("$bindir/postgres");
ok(scalar(keys %$server) > 1000, 'the postgres executable exports its functions');
my @clash = sort grep { $server->{$_} } keys %$ours;
is(join(', ', @clash), '', 'no symbol of shardexec.so is also defined by postgres');

# the libpq shardexec.so is linked with
my ($ldd) = run_command([ 'ldd', $shardexec ]);
my ($libpq) = $ldd =~ /libpq\.so\S*\s+=>\s+(\S+)/;
SKIP:
{
	skip 'libpq not found by ldd', 1 unless defined $libpq;
	my $client = defined_symbols($libpq);
	@clash = sort grep { $client->{$_} } keys %$ours;
	is(join(', ', @clash), '', "no symbol of shardexec.so is also defined by $libpq");
}

done_testing();
