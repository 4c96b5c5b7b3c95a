package main

import (
	"os"
	"os/exec"
	"path/filepath"
)

// A kind says how a tool is used, which decides how it is measured.
type kind int

const (
	inProcess kind = iota // a library call: cycles are timed inside one process
	command               // a program run per lock: timed per invocation, net of process starts
	mountKind             // open/close through the nfslockfs mount
	control               // no lock at all: the exclusion checker must catch it
)

// A tool is one way of locking, as a row of the tables.
type tool struct {
	name   string
	kind   kind
	pkg    string // Debian package whose version is reported; "" for ours
	usage  string // the calls or command lines measured, for the doc
	starts int    // process starts per acquire+release (commands)
	slow   bool   // waits by sleeping seconds: handoffs are measured in parallel pairs
	link   bool   // a link(2)-based NFS lock: the peers our operation counts must beat
	root   string // directory under which its locks are made
	flat   bool   // locks directly in root, named slug-MEASUREMENT
	slug   string // a short unique name
	notes  string // directory for logs and traces, never under a mount being measured
	spec   func(lock string) spec
}

// setup is what the tools need to know about this run.
type setup struct {
	self    string // this lockbench binary
	bin     string // directory of our binaries (nfslock, nfslockfs)
	peers   string // bench/peers
	work    string // directory on the filesystem under test
	scratch string // for logs and traces: a local directory outside every mount
	mnt     string // nfslockfs mountpoint, "" when there is no mount
	flat    bool   // every tool's locks directly in work (and mnt)
}

// goWorker is a lockbench worker process using one of the lockers.
func (s *setup) goWorker(locker string, env ...string) func(string) spec {
	return func(lock string) spec {
		return spec{argv: []string{s.self, "worker", "-tool", locker, "-lock", lock}, env: env}
	}
}

func (s *setup) tools() []*tool {
	py := func(kind string) func(string) spec {
		return func(lock string) spec {
			return spec{argv: []string{"/usr/bin/python3", filepath.Join(s.peers, "pylock.py"), kind, lock}}
		}
	}
	nfslock := filepath.Join(s.bin, "nfslock")
	dotlockfile, lockfile := s.unprivileged("dotlockfile"), s.unprivileged("lockfile")
	ts := []*tool{
		{name: "flock(2), in-process", kind: inProcess, pkg: "linux",
			usage: "open(PATH, O_RDWR|O_CREAT); flock(fd, LOCK_EX); close(fd)", spec: s.goWorker("flock2")},
		{name: "flock(1)", kind: command, pkg: "util-linux", starts: 2,
			usage: "flock PATH cat", spec: s.goWorker("hold", "LOCKBENCH_HOLD=flock")},
		{name: "liblockfile, in-process", link: true, kind: inProcess, pkg: "liblockfile1", slow: true,
			usage: `lockfile_create("PATH.lock", 100, 0); lockfile_remove("PATH.lock") (C library, via Python ctypes)`, spec: py("liblockfile")},
		{name: "dotlockfile", link: true, kind: command, pkg: "liblockfile-bin", starts: 2, slow: true,
			usage: "dotlockfile -l -r -1 PATH; dotlockfile -u PATH", spec: s.goWorker("pair", "LOCKBENCH_LOCK="+dotlockfile+" -l -r -1", "LOCKBENCH_UNLOCK="+dotlockfile+" -u")},
		{name: "lockfile-progs", link: true, kind: command, pkg: "lockfile-progs", starts: 2, slow: true,
			usage: "lockfile-create PATH; lockfile-remove PATH", spec: s.goWorker("pair", "LOCKBENCH_LOCK=lockfile-create", "LOCKBENCH_UNLOCK=lockfile-remove")},
		{name: "lockfile (procmail)", link: true, kind: command, pkg: "procmail", starts: 2, slow: true,
			usage: "lockfile PATH; rm -f PATH", spec: s.goWorker("pair", "LOCKBENCH_LOCK="+lockfile, "LOCKBENCH_UNLOCK=rm -f")},
		{name: "flufl.lock, in-process", link: true, kind: inProcess, pkg: "python3-flufl.lock", slow: true,
			usage: "l = flufl.lock.Lock(PATH); l.lock(); l.unlock()", spec: py("flufl")},
		{name: "File::NFSLock, in-process", link: true, kind: inProcess, pkg: "libfile-nfslock-perl", slow: true,
			usage: "File::NFSLock->new({file => PATH, lock_type => LOCK_EX}); ->unlock",
			spec: func(lock string) spec {
				return spec{argv: []string{"perl", filepath.Join(s.peers, "perllock.pl"), lock}}
			}},
		{name: "nfslock library, in-process", kind: inProcess,
			usage: "l, _ := nfslock.Acquire(ctx, PATH); l.Unlock()", spec: s.goWorker("library")},
		{name: "nfslock CLI", kind: command, starts: 2,
			usage: "nfslock PATH cat", spec: s.goWorker("hold", "LOCKBENCH_HOLD="+nfslock)},
	}
	if s.mnt != "" {
		ts = append(ts, &tool{name: "nfslockfs mount", kind: mountKind,
			usage: "open(MOUNT/PATH, O_WRONLY|O_CREAT|O_TRUNC); close(fd) (as exec 9>PATH)", spec: s.goWorker("open")})
	}
	ts = append(ts, &tool{name: "control: open/close, no lock", kind: control,
		usage: "open(PATH, O_WRONLY|O_CREAT|O_TRUNC); close(fd)", spec: s.goWorker("open")})
	for i, t := range ts {
		t.slug, t.flat = slug(i), s.flat
		switch {
		case s.flat && t.kind == mountKind:
			t.root = s.mnt
		case s.flat:
			t.root = s.work
		case t.kind == mountKind:
			t.root = filepath.Join(s.mnt, "bench", t.slug)
		default:
			t.root = filepath.Join(s.work, "tools", t.slug)
		}
		t.notes = filepath.Join(s.scratch, t.slug)
	}
	return ts
}

// unprivileged returns a copy of a setgid command without the setgid bit,
// made once in the scratch directory. As root, the command works the same
// without it; with it, the kernel keeps it out of FUSE mounts that only
// their owner may use, such as faultfs's.
func (s *setup) unprivileged(name string) string {
	copied := filepath.Join(s.scratch, "bin", name)
	if _, err := os.Stat(copied); err == nil {
		return copied
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return name // the worker reports it missing
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(copied), 0o755)
	}
	if err == nil {
		err = os.WriteFile(copied, data, 0o755)
	}
	if err != nil {
		return path
	}
	return copied
}

// baselines are the process start-ups that command rows are net of.
func (s *setup) baselines() (cStart, goStart *tool) {
	return &tool{name: "true", kind: command, starts: 1, root: filepath.Join(s.work, "tools", "true"),
			notes: filepath.Join(s.scratch, "true"), usage: "true", spec: s.goWorker("pair", "LOCKBENCH_LOCK=true")},
		&tool{name: "a Go program", kind: command, starts: 1, root: filepath.Join(s.work, "tools", "gostart"),
			notes: filepath.Join(s.scratch, "gostart"), usage: "lockbench noop", spec: s.goWorker("pair", "LOCKBENCH_LOCK="+s.self+" noop")}
}

// lockPath returns the lock for one measurement of t: L in a fresh
// directory of its own or, for a flat tool, a name of its own directly in
// its root. (On faultfs every directory level costs a LOOKUP per call, which
// a real NFS client, caching directories, would not send.)
func (t *tool) lockPath(name string) (string, error) {
	if t.flat {
		return filepath.Join(t.root, t.slug+"-"+name), nil
	}
	dir, err := t.lockDir(name)
	return filepath.Join(dir, "L"), err
}

// lockDir makes a fresh directory for one measurement of t.
func (t *tool) lockDir(name string) (string, error) {
	d := filepath.Join(t.root, name)
	return d, os.MkdirAll(d, 0o755)
}

// notesFile returns a file name for t's logs and traces, making its directory.
func (t *tool) notesFile(name string) (string, error) {
	return filepath.Join(t.notes, name), os.MkdirAll(t.notes, 0o755)
}

func slug(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }
