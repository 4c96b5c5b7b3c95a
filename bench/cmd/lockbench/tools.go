package main

import (
	"os"
	"path/filepath"
)

// The parts of a run a tool takes part in.
const (
	cycle   = 1 << iota // Cycle: uncontended acquire+release
	handoff             // Handoff: release to the waiter's acquire, same host
	contend             // Contend: several processes on one lock, checked for overlaps
	spread              // ContendSpread: several processes on each of many locks
)

// A tool is one way of locking: a row of the tables.
type tool struct {
	name  string // the row's name, as in "BenchmarkCycle/tool=NAME"
	pkg   string // Debian package whose version is reported; "" for this tree
	usage string // what one acquire+release is, for the doc
	parts int
	slow  bool                     // waits by sleeping seconds: handoffs run in parallel pairs
	mount bool                     // its locks are under the nfslockfs mount
	lock  func(name string) string // the lock for one measurement
	spec  func(lock string) spec
}

// setup is what the tools need to know about this run.
type setup struct {
	self    string // this lockbench binary
	bin     string // directory of nfslock and nfslockfs
	peers   string // bench/peers
	work    string // directory for the locks, on the filesystem under test
	scratch string // for logs and traces, outside every mount
	mnt     string // nfslockfs mountpoint ("" when there is no mount)
	noop    string // a file of the no-op FUSE filesystem ("" when there is none)
}

// goWorker is a lockbench worker process using one of the lockers.
func (s *setup) goWorker(locker string, env ...string) func(string) spec {
	return func(lock string) spec {
		return spec{argv: []string{s.self, "worker", "-tool", locker, "-lock", lock}, env: env}
	}
}

func (s *setup) peer(argv ...string) func(string) spec {
	return func(lock string) spec { return spec{argv: append(argv[:len(argv):len(argv)], lock)} }
}

func (s *setup) tools() []*tool {
	const all = cycle | handoff | contend
	nfslock := filepath.Join(s.bin, "nfslock")
	py := filepath.Join(s.peers, "pylock.py")
	open := "open(PATH, O_WRONLY|O_CREAT|O_TRUNC); close(fd)"
	ts := []*tool{
		{name: "true", pkg: "coreutils", usage: "true (a process start, for the commands' rows)", parts: cycle,
			spec: s.goWorker("pair", "LOCKBENCH_LOCK=true")},
		{name: "go-noop", usage: "lockbench noop (a Go program's start)", parts: cycle,
			spec: s.goWorker("pair", "LOCKBENCH_LOCK="+s.self+" noop")},
		{name: "flock2", pkg: "linux", usage: "open(PATH, O_RDWR|O_CREAT); flock(fd, LOCK_EX); close(fd)", parts: all | spread,
			spec: s.goWorker("flock2")},
		{name: "flock1", pkg: "util-linux", usage: "flock PATH cat", parts: all,
			spec: s.goWorker("hold", "LOCKBENCH_HOLD=flock")},
		{name: "flock1-n", pkg: "util-linux", usage: "flock -n PATH true", parts: cycle,
			spec: s.goWorker("pair", "LOCKBENCH_LOCK=flock -n", "LOCKBENCH_AFTER=true")},
		{name: "liblockfile", pkg: "liblockfile1", slow: true, parts: all,
			usage: `lockfile_create("PATH.lock", 100, 0); lockfile_remove (C library via Python ctypes)`,
			spec:  s.peer("/usr/bin/python3", py, "liblockfile")},
		{name: "dotlockfile", pkg: "liblockfile-bin", slow: true, parts: all,
			usage: "dotlockfile -l -r -1 PATH; dotlockfile -u PATH",
			spec:  s.goWorker("pair", "LOCKBENCH_LOCK=dotlockfile -l -r -1", "LOCKBENCH_UNLOCK=dotlockfile -u")},
		{name: "lockfile-progs", pkg: "lockfile-progs", slow: true, parts: all,
			usage: "lockfile-create PATH; lockfile-remove PATH",
			spec:  s.goWorker("pair", "LOCKBENCH_LOCK=lockfile-create", "LOCKBENCH_UNLOCK=lockfile-remove")},
		{name: "procmail-lockfile", pkg: "procmail", slow: true, parts: all, usage: "lockfile PATH; rm -f PATH",
			spec: s.goWorker("pair", "LOCKBENCH_LOCK=lockfile", "LOCKBENCH_UNLOCK=rm -f")},
		{name: "flufl.lock", pkg: "python3-flufl.lock", slow: true, parts: all,
			usage: "l = flufl.lock.Lock(PATH); l.lock(); l.unlock()", spec: s.peer("/usr/bin/python3", py, "flufl")},
		{name: "File-NFSLock", pkg: "libfile-nfslock-perl", slow: true, parts: all,
			usage: "File::NFSLock->new({file => PATH, lock_type => LOCK_EX}); ->unlock",
			spec:  s.peer("perl", filepath.Join(s.peers, "perllock.pl"))},
		{name: "nfslock-lib", usage: "l, _ := nfslock.Acquire(ctx, PATH); l.Unlock()", parts: all,
			spec: s.goWorker("library")},
		{name: "nfslock-cli", usage: "nfslock PATH cat", parts: all,
			spec: s.goWorker("hold", "LOCKBENCH_HOLD="+nfslock)},
		{name: "nfslock-cli-n", usage: "nfslock -n PATH true", parts: cycle,
			spec: s.goWorker("pair", "LOCKBENCH_LOCK="+nfslock+" -n", "LOCKBENCH_AFTER=true")},
	}
	if s.mnt != "" {
		ts = append(ts,
			&tool{name: "mount-go", mount: true, usage: open + " (Go, syscall package)", parts: all | spread, spec: s.goWorker("open")},
			&tool{name: "mount-py", mount: true, usage: "os.close(os.open(PATH, os.O_WRONLY|os.O_CREAT|os.O_TRUNC)) (Python)",
				parts: cycle | handoff, spec: s.peer("/usr/bin/python3", py, "open")},
			&tool{name: "mount-bash", mount: true, usage: `exec 9>"PATH"; exec 9>&- (bash)`, parts: cycle | handoff,
				spec: s.peer("bash", filepath.Join(s.peers, "bashlock.sh"))},
			&tool{name: "mount-flock1", mount: true, pkg: "util-linux", usage: "flock MOUNT/PATH cat",
				parts: cycle | handoff, spec: s.goWorker("hold", "LOCKBENCH_HOLD=flock")})
	}
	if s.noop != "" {
		ts = append(ts, &tool{name: "fuse-noop", usage: open + " on a FUSE file whose open and release do nothing (the mount's floor)",
			parts: cycle, lock: func(string) string { return s.noop }, spec: s.goWorker("open")})
	}
	ts = append(ts, &tool{name: "control", usage: open + ", no lock: the overlap checker must catch it",
		parts: contend, spec: s.goWorker("open")})
	for _, t := range ts {
		if t.lock != nil {
			continue
		}
		root := filepath.Join(s.work, "tools", t.name)
		if t.mount {
			root = filepath.Join(s.mnt, t.name)
		}
		t.lock = func(name string) string {
			dir := filepath.Join(root, name)
			os.MkdirAll(dir, 0o755) // a failure shows at the first lock
			return filepath.Join(dir, "L")
		}
	}
	return ts
}
