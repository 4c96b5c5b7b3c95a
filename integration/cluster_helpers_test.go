package integration

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/faultfs"
	"github.com/nfslockfs/nfslockfs/internal/hostsim"
	"github.com/nfslockfs/nfslockfs/internal/nfsrig"
	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
	"github.com/nfslockfs/nfslockfs/nfslock"
)

// A cluster is the setting of the SPEC §5 tests: simulated hosts (package
// hostsim: own hostname, pids and mounts) that share one directory, the
// export, as compute nodes share an NFS export. The export is a faultfs
// mount (package faultfs), so that a test can make the "NFS server" lose
// LINK replies, fail requests, add latency or hang, and count requests. It
// is mounted before the hosts start, and named to them as shared, which is
// what makes it visible in them (they drop every other FUSE mount of the
// machine, so that they keep no concurrent test's mount alive).
// Each host can run its own nfslockfs over the export, mounted inside the
// host only, as on a real node.
//
// In the real-NFS guest (realnfs_test.go) the export is a real one instead:
// a directory that the guest's kernel NFS server exports, which every host
// mounts over its own path with its own NFS client mount; outside the hosts
// the same path is the server's directory. There is no fault to set then.
type cluster struct {
	t       *testing.T
	ctx     context.Context // ends at the scenario's time limit, killing everything started for it
	fault   *faultfs.FS     // nil on real NFS
	nfsVers string          // on real NFS: the hosts' NFS version
	export  string          // the shared "NFS" directory
	backing string          // the directory behind it (the export itself on real NFS, outside the hosts)
	check   string          // the exclusion checker's directory (cluster_checker_test.go)
	hold    time.Duration   // how long workers stay in the critical section
	nodes   []*node
}

type clusterConfig struct {
	hosts     int
	daemons   bool          // run nfslockfs in every host
	multiUser bool          // every uid may use the export (faultfs.Options.MultiUser)
	limit     time.Duration // the scenario fails, and everything is killed, after it
	// nfsVers, in the real-NFS guest, makes the export a real NFS export
	// that each host mounts with this NFS version ("3", "4.2").
	nfsVers string
	// nfsOptions, on real NFS, are each host's mount options added to the
	// rig's (soft,timeo=10, say), by host index; none: the client's
	// defaults (hard, attribute caches on).
	nfsOptions [][]string
	hold       time.Duration // how long workers stay in the critical section; 0: workerHold
}

// A node is one simulated host of a cluster.
type node struct {
	c      *cluster
	name   string // its hostname
	host   *hostsim.Host
	mnt    string      // where its nfslockfs mounts, seen in the host only
	daemon *hostDaemon // its nfslockfs, if running
}

// newCluster starts a cluster. Everything is torn down when t ends: the
// hosts are killed (with every process in them, nfslockfs mounts included)
// before the export is unmounted, as faultfs requires.
func newCluster(t *testing.T, cfg clusterConfig) *cluster {
	t.Helper()
	testenv.NeedFUSE(t)
	ctx, cancel := context.WithTimeout(t.Context(), cfg.limit)
	t.Cleanup(cancel)
	c := &cluster{t: t, ctx: ctx, check: newCheckDir(t), hold: cmp.Or(cfg.hold, workerHold)}
	mnts := make([]string, cfg.hosts)
	for i := range mnts {
		mnts[i] = testutil.MountpointDir(t)
	}
	if cfg.nfsVers != "" {
		c.startNFSExport(cfg.nfsVers)
	} else {
		c.startFaultExport(cfg.multiUser)
	}
	t.Cleanup(c.logOnFailure) // after the hosts are killed, before the export goes
	for i := range cfg.hosts {
		name := fmt.Sprintf("cl-%c", 'a'+i)
		h, err := hostsim.Start(ctx, name, c.export)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := h.Kill(); err != nil {
				t.Error(err)
			}
		})
		n := &node{c: c, name: name, host: h, mnt: mnts[i]}
		c.nodes = append(c.nodes, n)
		if c.nfsVers != "" {
			var options []string
			if i < len(cfg.nfsOptions) {
				options = cfg.nfsOptions[i]
			}
			n.mountNFS(options...)
		}
	}
	if cfg.daemons {
		for _, n := range c.nodes {
			n.startDaemon()
		}
	}
	return c
}

// startFaultExport makes the export a faultfs mount over a new directory.
func (c *cluster) startFaultExport(multiUser bool) {
	t := c.t
	backing, export := t.TempDir(), t.TempDir() // removed after the unmount
	fault, err := faultfs.Mount(backing, export, faultfs.Options{MultiUser: multiUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fault.Unmount(); err != nil {
			t.Error(err)
		}
	})
	c.fault, c.export, c.backing = fault, export, backing
}

// startNFSExport makes the export a new directory under the guest's NFS
// export (see nfsrig.ExportDir), to be mounted by every host with vers.
func (c *cluster) startNFSExport(vers string) {
	t := c.t
	if !nfsrig.InGuest() {
		t.Fatal("a cluster on real NFS runs in the real-NFS guest only (TestRealNFS)")
	}
	dir, err := os.MkdirTemp(nfsrig.ExportDir, "cluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // after the hosts, and their mounts, are gone
	c.nfsVers, c.export, c.backing = vers, dir, dir
}

// mountNFS gives n, on real NFS, its own /run/lock (the host-local lock
// files live there) and its own NFS client mount of the guest's export
// (nosharecache: its own attribute and dentry caches), over the export's
// own path, so that the cluster's export is the same path in every host.
func (n *node) mountNFS(options ...string) {
	n.c.t.Helper()
	// The words are options and paths without blanks or quotes.
	mount := "mount " + strings.Join(nfsrig.MountArgs(n.c.nfsVers, nfsrig.ExportDir, slices.Index(n.c.nodes, n), options...), " ")
	if out, code := n.sh("mount -t tmpfs -o mode=1777 lock /run/lock && " + mount); code != 0 {
		n.c.t.Fatalf("%s: %s: exit %d: %s", n.name, mount, code, out)
	}
}

// lockPath returns the path through which a worker of role on n takes the
// lock name: in n's mount for the mount roles, in the export for the others.
func (n *node) lockPath(role, name string) string {
	if strings.HasPrefix(role, "mount") {
		return filepath.Join(n.mnt, name)
	}
	return filepath.Join(n.c.export, name)
}

// env is the environment of scripts run in n: $HOST, $MNT (n's nfslockfs
// mount), $EXPORT, $CHECK, $NFSLOCK and extra.
func (n *node) env(extra ...string) []string {
	return append(append(cliEnv(), "HOST="+n.name, "MNT="+n.mnt, "EXPORT="+n.c.export,
		"CHECK="+n.c.check, "NFSLOCK="+bin("nfslock")), extra...)
}

// shellTimeout bounds every short script run in a host.
const shellTimeout = 30 * time.Second

// sh runs a bash script in n to its end and returns its output (stdout and
// stderr) and exit status. A script still running after shellTimeout is
// killed and fails t.
func (n *node) sh(script string, extraEnv ...string) (string, int) {
	n.c.t.Helper()
	ctx, cancel := context.WithTimeout(n.c.ctx, shellTimeout)
	defer cancel()
	cmd := n.host.Command(ctx, "bash", "-c", script)
	cmd.Env = n.env(extraEnv...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		n.c.t.Fatalf("%s: script still running after %v, killed:\n%s\noutput:\n%s", n.name, shellTimeout, script, out)
	}
	if cmd.ProcessState == nil {
		n.c.t.Fatalf("%s: script did not run: %v", n.name, err)
	}
	if strings.Contains(string(out), "WARNING: DATA RACE") {
		n.c.t.Errorf("%s: data race reported:\n%s", n.name, out)
	}
	return string(out), exitStatus(cmd.ProcessState)
}

// A hostProc is a process running in a host in the background.
type hostProc struct {
	name   string // for messages
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // its output lines, as far as the buffer goes; closed at end of output
	out    *tailBuffer
	exited chan struct{} // closed once it has exited
}

// spawn starts argv in n with env. Its output goes to p.lines and p.out.
// It is killed (if still running) and waited for when t ends, and a data
// race it reported fails t.
func (n *node) spawn(name string, argv []string, env []string) *hostProc {
	t := n.c.t
	t.Helper()
	cmd := n.host.Command(n.c.ctx, argv[0], argv[1:]...)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, err := testutil.StartWithOutput(cmd)
	if err != nil {
		t.Fatalf("%s: start %s: %v", n.name, name, err)
	}
	p := &hostProc{name: n.name + "/" + name, cmd: cmd, stdin: stdin, lines: make(chan string, 256),
		out: new(tailBuffer), exited: make(chan struct{})}
	read := make(chan struct{})
	go func() { // ends when every process holding the pipe has exited, or at cleanup
		defer close(read)
		s := bufio.NewScanner(r)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			p.out.add(s.Text())
			select {
			case p.lines <- s.Text():
			default: // nobody listens: the tail buffer has it
			}
		}
		close(p.lines)
	}()
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		r.Close() // an orphan of the process may still hold the pipe open
		<-read
		if p.out.sawRace() {
			t.Errorf("%s reported a data race:\n%s", p.name, p.out)
		}
	})
	return p
}

// expect waits for an output line of p that contains want and returns it;
// it fails t if none comes within d.
func (p *hostProc) expect(t *testing.T, want string, d time.Duration) string {
	t.Helper()
	line, ok := p.next(want, d)
	if !ok {
		t.Fatalf("%s printed no %q within %v:\n%s", p.name, want, d, p.out)
	}
	return line
}

// next returns the next line of p that contains want, or false if p ends
// or d passes without one.
func (p *hostProc) next(want string, d time.Duration) (string, bool) {
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				return "", false
			}
			if strings.Contains(line, want) {
				return line, true
			}
		case <-timeout:
			return "", false
		}
	}
}

// expectQuiet fails t if p prints a line containing want within d.
func (p *hostProc) expectQuiet(t *testing.T, want string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-p.lines:
			if ok && strings.Contains(line, want) {
				t.Fatalf("%s printed %q too early:\n%s", p.name, line, p.out)
			}
			if !ok {
				<-timeout
				return
			}
		case <-timeout:
			return
		}
	}
}

// wait waits for p to exit, at most d, and returns its exit status as a
// shell reports it; it fails t if p is still running then.
func (p *hostProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return exitStatus(p.cmd.ProcessState)
	case <-time.After(d):
		t.Fatalf("%s still running after %v:\n%s", p.name, d, p.out)
		return -1
	}
}

// A hostDaemon is an nfslockfs running in a host.
type hostDaemon struct {
	proc *hostProc
	pid  string // in the host
}

// startDaemon runs nfslockfs over the export on n.mnt in n, and returns
// once it has mounted.
func (n *node) startDaemon() {
	n.c.t.Helper()
	n.daemon = n.startNfslockfs(n.c.export, n.mnt)
}

// startNfslockfs runs `nfslockfs [options] backing mnt` in n and returns
// once it has mounted. It is killed with the host.
func (n *node) startNfslockfs(backing, mnt string, options ...string) *hostDaemon {
	t := n.c.t
	t.Helper()
	p := n.spawn("nfslockfs", append([]string{"bash", "-c", `echo "pid $$"; exec "$@"`, "nfslockfs", bin("nfslockfs")}, append(options, backing, mnt)...),
		n.env())
	pid := strings.TrimPrefix(p.expect(t, "pid ", 10*time.Second), "pid ")
	p.expect(t, "msg=mounted", 15*time.Second)
	return &hostDaemon{proc: p, pid: pid}
}

// killDaemon kills n's nfslockfs with SIGKILL, as a crash would, and
// returns once it is dead. Its mount is left behind, dead, as after a
// crash.
func (n *node) killDaemon() {
	t := n.c.t
	t.Helper()
	if out, code := n.sh("kill -9 " + n.daemon.pid); code != 0 {
		t.Fatalf("%s: kill -9 nfslockfs: %s", n.name, out)
	}
	if code := n.daemon.proc.wait(t, 10*time.Second); code != 128+9 {
		t.Fatalf("%s: nfslockfs exited %d after kill -9, want %d", n.name, code, 128+9)
	}
	n.daemon = nil
}

// restartDaemon starts nfslockfs again on the dead mount of a crashed
// one, as systemd's Restart=on-failure would: the new daemon detaches it.
func (n *node) restartDaemon() {
	n.c.t.Helper()
	n.startDaemon()
}

// startWorkers starts in every node one worker of each of roles (see
// cluster_worker_test.go) taking the lock name cycles times. With
// supervise, each worker is restarted whenever it dies (as the chaos driver
// makes it) until CHECK/stop exists; then cycles is normally 0.
func (c *cluster) startWorkers(roles []string, name string, cycles int, supervise bool) []*hostProc {
	c.t.Helper()
	var procs []*hostProc
	for _, n := range c.nodes {
		for _, role := range roles {
			argv := workerCommand(role)
			if supervise {
				argv = append([]string{"bash", "-c", superviseScript, "supervise"}, argv...)
			}
			procs = append(procs, n.spawn(role, argv, n.workerEnv(role, name, cycles)))
		}
	}
	return procs
}

// workerHold is how long workers stay in the critical section unless the
// cluster's configuration says otherwise.
const workerHold = 2 * time.Millisecond

// workerEnv is the environment of a worker of role on n.
func (n *node) workerEnv(role, name string, cycles int) []string {
	shared := "0"
	if isShared(role) {
		shared = "1"
	}
	env := n.env("ROLE="+role, "SHARED="+shared, "LOCKPATH="+n.lockPath(role, name), fmt.Sprintf("CYCLES=%d", cycles),
		fmt.Sprintf("HOLD=%.3f", n.c.hold.Seconds()), "SECTION="+bashCommandSection)
	if isGoRole(role) {
		env = append(env, workerVar+"="+role)
	}
	return env
}

// superviseScript runs its arguments again and again until CHECK/stop
// exists. It fails if a run ended other than normally or by SIGKILL.
const superviseScript = `rc=0
while [ ! -e "$CHECK/stop" ]; do
	"$@"
	s=$?
	case $s in 0|137) ;; *) echo "worker exited $s"; rc=1;; esac
done
exit $rc`

// stopWorkers makes workers finish the cycle they are in and end, and fails
// t unless every one has ended within d, with status 0.
func (c *cluster) stopWorkers(procs []*hostProc, d time.Duration) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.check, checkStop), nil, 0o666); err != nil {
		c.t.Fatal(err)
	}
	c.awaitWorkers(procs, d)
}

// awaitWorkers fails t unless every worker ends within d with status 0.
func (c *cluster) awaitWorkers(procs []*hostProc, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for _, p := range procs {
		if code := p.wait(c.t, time.Until(deadline)); code != 0 {
			c.t.Errorf("%s exited %d:\n%s", p.name, code, p.out)
		}
	}
}

// sweep takes and releases the lock name once on every host at the same
// time, through the library (nfslock) and, where nfslockfs runs, through the
// mount, without help: a lock left by a dead process of a host is cleaned
// up by that host's attempt, and the others wait for it. It fails t if any
// attempt fails or takes longer than d.
func (c *cluster) sweep(name string, d time.Duration) {
	c.t.Helper()
	const script = `"$NFSLOCK" -w "$WAIT" "$EXPORT/$NAME" true || exit
if [ -n "$DAEMON" ]; then timeout "$WAIT" bash -c 'exec 9>"$MNT/$NAME"'; fi`
	var procs []*hostProc
	for _, n := range c.nodes {
		daemon := ""
		if n.daemon != nil {
			daemon = "yes"
		}
		env := n.env("NAME="+name, fmt.Sprintf("WAIT=%d", int(d.Seconds())), "DAEMON="+daemon)
		procs = append(procs, n.spawn("sweep", []string{"bash", "-c", script}, env))
	}
	deadline := time.Now().Add(d + 5*time.Second)
	for _, p := range procs {
		if code := p.wait(c.t, time.Until(deadline)); code != 0 {
			c.t.Errorf("%s: taking the lock %s after the run: exit %d:\n%s", p.name, name, code, p.out)
		}
	}
	// The kernel sends a mount's RELEASE after the last opener has exited:
	// give the daemons a moment to release before anyone looks.
	lock := filepath.Join(c.export, name+".nfs_lock")
	for released := time.Now().Add(5 * time.Second); time.Now().Before(released); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Lstat(lock); errors.Is(err, os.ErrNotExist) {
			return
		}
	}
}

// logOnFailure logs, if t failed, the checker's log around its first
// violations and at its end, and the end of every nfslockfs log.
func (c *cluster) logOnFailure() {
	if !c.t.Failed() {
		return
	}
	data, _ := os.ReadFile(filepath.Join(c.check, checkLog))
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	excerpt := func(from, to int) string {
		from, to = max(0, from), min(len(lines), to)
		return fmt.Sprintf("lines %d-%d of %d:\n%s", from+1, to, len(lines), strings.Join(lines[from:to], "\n"))
	}
	r := checkLines(lines)
	for _, n := range r.violationLines[:min(3, len(r.violationLines))] {
		c.t.Logf("the checker's log around a violation, %s", excerpt(n-15, n+3))
	}
	c.t.Logf("the checker's log, %s", excerpt(len(lines)-40, len(lines)))
	for _, n := range c.nodes {
		if n.daemon != nil {
			c.t.Logf("%s: nfslockfs log, last lines:\n%s", n.name, n.daemon.proc.out.last(30))
		}
	}
	entries, err := os.ReadDir(c.backing)
	c.t.Logf("the export's files: %v %v", entries, err)
	for _, e := range entries {
		if name := e.Name(); name == "lock.nfs_lock" || strings.HasSuffix(name, nfslock.ReaderSuffix) {
			rec, _ := os.ReadFile(filepath.Join(c.backing, name))
			c.t.Logf("%s: %s", name, rec)
		}
	}
}

// leftovers lists the export's files, sorted.
func (c *cluster) leftovers() []string {
	c.t.Helper()
	return testutil.Names(c.t, c.export) // os.ReadDir sorts them
}

// leftoversOnceReleased lists the export's files once it is empty, or after
// 5 s: a lock taken through a mount (by an open, or by flock(2) on its
// file) is released when the kernel's RELEASE of the open file reaches the
// daemon, which comes after the last process holding the file has exited.
func (c *cluster) leftoversOnceReleased() []string {
	c.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if left := c.leftovers(); len(left) == 0 || time.Now().After(deadline) {
			return left
		}
	}
}

// tailBuffer keeps the last lines written to it, and whether any line
// reported a data race.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
	size  int
	race  bool
}

const tailMax = 64 << 10

func (b *tailBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if strings.Contains(line, "WARNING: DATA RACE") {
		b.race = true
	}
	b.lines = append(b.lines, line)
	b.size += len(line) + 1
	for b.size > tailMax && len(b.lines) > 1 {
		b.size -= len(b.lines[0]) + 1
		b.lines = b.lines[1:]
	}
}

func (b *tailBuffer) sawRace() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.race
}

// last returns the last n lines.
func (b *tailBuffer) last(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines[max(0, len(b.lines)-n):], "\n")
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}
