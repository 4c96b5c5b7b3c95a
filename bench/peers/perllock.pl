#!/usr/bin/perl
# A lockbench worker (protocol: bench/cmd/lockbench/worker.go) for Perl's
# File::NFSLock, in-process:
#
#     perl perllock.pl PATH    File::NFSLock->new({file => PATH, lock_type => LOCK_EX}), released by ->unlock
use strict;
use warnings;
use Fcntl qw(LOCK_EX O_WRONLY O_APPEND O_CREAT);
use File::NFSLock;
use POSIX ();
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my $MARK = "/.lockbench-mark/";
my $path = shift @ARGV or die "usage: perllock.pl PATH\n";
my $held;

sub now { return int(clock_gettime(CLOCK_MONOTONIC) * 1e9) }

sub lock {
    $held = File::NFSLock->new({file => $path, lock_type => LOCK_EX})
        or die "File::NFSLock: $File::NFSLock::errstr\n";
}

sub unlock { $held->unlock or die "unlock failed\n"; undef $held }

sub serve {
    my ($cmd, @args) = @_;
    if ($cmd eq "lock") {
        my $start = now();
        lock();
        return sprintf "ok %d %d", now(), $start;
    }
    if ($cmd eq "unlock") {
        my $t = now();
        unlock();
        return "ok $t";
    }
    if ($cmd eq "cycles") {
        my $start = now();
        for (1 .. $args[0]) { lock(); unlock() }
        return sprintf "ok %d", now() - $start;
    }
    if ($cmd eq "loop") {
        my ($ms, $log, $id) = @args;
        my $fd = POSIX::open($log, O_WRONLY | O_APPEND | O_CREAT, 0644) // die "open $log: $!\n";
        my ($cycles, $start) = (0, now());
        while (now() - $start < $ms * 1e6) {
            lock();
            POSIX::write($fd, "$id +\n", length("$id +\n"));
            POSIX::write($fd, "$id -\n", length("$id -\n"));
            unlock();
            $cycles++;
        }
        POSIX::close($fd);
        return sprintf "ok %d %d", $cycles, now() - $start;
    }
    die "bad command $cmd\n";
}

$| = 1;
while (my $line = <STDIN>) {
    my @words = split ' ', $line;
    next unless @words;
    -e $MARK . join("_", @words);
    my $reply = eval { serve(@words) } // do { (my $e = "err $@") =~ s/\n/ /g; $e };
    -e $MARK . join("_", @words) . "-done";
    print "$reply\n";
}
