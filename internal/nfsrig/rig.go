package nfsrig

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// guestScript is the guest's process 1 after the initramfs.
//
//go:embed guest.sh
var guestScript []byte

// CacheVar names the environment variable that overrides DefaultCache.
const CacheVar = "NFSLOCKFS_NFSRIG_CACHE"

// DefaultCache is where the kernel package is unpacked unless CacheVar
// says otherwise: outside /tmp, which is the guest's own, and kept across
// runs (about 400 MB).
const DefaultCache = "/var/tmp/nfslockfs-nfsrig"

// Cache returns the cache directory: $NFSLOCKFS_NFSRIG_CACHE or DefaultCache.
func Cache() string {
	if dir := os.Getenv(CacheVar); dir != "" {
		return dir
	}
	return DefaultCache
}

// tools are the programs the rig runs on the host, and the Debian package
// that has each.
var tools = [][2]string{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"apt-get", "apt"}, {"apt-cache", "apt"}, {"dpkg-deb", "dpkg"},
	{"depmod", "kmod"}, {"modprobe", "kmod"},
	{"busybox", "busybox-static"}, {"cpio", "cpio"},
	{"rpc.nfsd", "nfs-kernel-server"}, {"rpc.mountd", "nfs-kernel-server"}, {"exportfs", "nfs-kernel-server"},
	{"rpcbind", "rpcbind"}, {"rpcinfo", "rpcbind"}, {"mount.nfs", "nfs-common"},
	{"ip", "iproute2"}, {"ss", "iproute2"}, {"tc", "iproute2"}, {"nft", "nftables"},
}

// Unavailable says why the rig cannot run on this machine (not root, or a
// tool missing, with the package to install), or returns "" if it can.
func Unavailable() string {
	if os.Geteuid() != 0 {
		return "the real-NFS rig needs root"
	}
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t[0]); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", t[0], t[1]))
		}
	}
	if len(missing) > 0 {
		return "the real-NFS rig needs " + strings.Join(missing, ", ")
	}
	if _, err := staticBusybox(); err != nil {
		return err.Error()
	}
	return ""
}

// A Job is a program to run in the guest.
type Job struct {
	// Dir is the job's directory: an absolute path outside /tmp and /run
	// (the guest's own), created empty by the caller, who puts there what
	// the program needs. The guest sees it at the same path, writable.
	Dir     string
	Argv    []string // the program and its arguments, as paths the guest sees
	Env     []string // its whole environment, plus NFSLOCKFS_NFSRIG_GUEST=1
	WorkDir string   // its working directory; the host's / is the guest's, read-only
	// Console, if not nil, receives the guest's serial console: the
	// kernel's messages, the rig's, but not the program's output.
	Console io.Writer
}

// A Result is what a job's program did.
type Result struct {
	Exit   int    // its exit status, as a shell reports it
	Output string // its standard output and error
}

// guestVar is set in the environment of a job's program.
const guestVar = "NFSLOCKFS_NFSRIG_GUEST"

// Run boots a guest, starts the NFS server in it, runs the job's program to
// its end and returns what it did. It fails if the guest could not be
// prepared or booted, or ended (or ctx ended, killing it) before the
// program did; its error then ends with the console's last lines.
func Run(ctx context.Context, job Job) (Result, error) {
	if !filepath.IsAbs(job.Dir) || under(job.Dir, "/tmp") || under(job.Dir, "/run") {
		return Result{}, fmt.Errorf("nfsrig: job directory %q: must be absolute and outside /tmp and /run", job.Dir)
	}
	k, err := lockedKernel(Cache())
	if err != nil {
		return Result{}, err
	}
	initramfs := filepath.Join(job.Dir, "initramfs.cpio")
	if err := buildInitramfs(k, initramfs); err != nil {
		return Result{}, err
	}
	files := map[string]string{
		"guest.sh":   string(guestScript),
		"kernel.env": "KROOT=" + shellQuote(k.root) + "\n",
		"job.sh":     jobScript(job),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(job.Dir, name), []byte(text), 0o644); err != nil {
			return Result{}, err
		}
	}
	console := new(tail)
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64",
		"-accel", "tcg,thread=multi", "-smp", "2", "-m", "3072",
		"-nodefaults", "-no-reboot", "-display", "none", "-nic", "none", "-serial", "stdio",
		"-kernel", k.image(), "-initrd", initramfs,
		"-append", "console=ttyS0 quiet panic=-1 rdinit=/init nfsrig.job="+job.Dir,
		"-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
		"-fsdev", "local,id=job,path="+job.Dir+",security_model=none,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=job,mount_tag=job")
	qemu.Stdout = io.MultiWriter(console, orDiscard(job.Console))
	qemu.Stderr = qemu.Stdout
	runErr := qemu.Run()
	data, err := os.ReadFile(filepath.Join(job.Dir, "status"))
	if err != nil {
		return Result{}, fmt.Errorf("nfsrig: the guest ended before the job (qemu: %v); its console's last lines:\n%s", runErr, console.last())
	}
	exit, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return Result{}, fmt.Errorf("nfsrig: the guest's status file: %w", err)
	}
	out, err := os.ReadFile(filepath.Join(job.Dir, "out.log"))
	if err != nil {
		return Result{}, fmt.Errorf("nfsrig: the job's output: %w; the console's last lines:\n%s", err, console.last())
	}
	return Result{Exit: exit, Output: string(out)}, nil
}

// lockedKernel prepares the kernel in cache under an flock of cache/lock,
// so that test runs sharing the cache fetch it once.
func lockedKernel(cache string) (kernel, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return kernel{}, fmt.Errorf("nfsrig: cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return kernel{}, fmt.Errorf("nfsrig: cache: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return kernel{}, fmt.Errorf("nfsrig: lock the cache: %w", err)
	}
	return prepareKernel(cache)
}

// jobScript returns the shell script that guest.sh runs for job.
func jobScript(job Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s || exit 125\nexec env -i", shellQuote(job.WorkDir))
	for _, kv := range append(job.Env, guestVar+"=1") {
		b.WriteString(" " + shellQuote(kv))
	}
	for _, arg := range job.Argv {
		b.WriteString(" " + shellQuote(arg))
	}
	b.WriteString("\n")
	return b.String()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// tail keeps the console's last 8 KiB for error messages.
type tail struct{ buf []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 8<<10; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) last() string { return string(t.buf) }
