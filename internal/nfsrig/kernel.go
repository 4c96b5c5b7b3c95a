package nfsrig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// A kernel is an unpacked kernel package in the cache.
type kernel struct {
	root    string // where the package is unpacked: root/boot, root/lib/modules
	version string // its release, as uname -r says
}

func (k kernel) image() string { return filepath.Join(k.root, "boot", "vmlinuz-"+k.version) }

// prepareKernel returns the kernel package that linux-image-amd64 depends
// on, unpacked in cache (fetched and unpacked first if not already there).
// The caller holds the cache's lock.
func prepareKernel(cache string) (kernel, error) {
	pkg, err := kernelPackage()
	if err != nil {
		return kernel{}, err
	}
	k := kernel{root: filepath.Join(cache, pkg), version: strings.TrimPrefix(pkg, "linux-image-")}
	if _, err := os.Stat(filepath.Join(k.root, "ready")); err == nil {
		return k, nil
	}
	tmp := k.root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return kernel{}, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return kernel{}, err
	}
	if err := run(tmp, "apt-get", "download", pkg); err != nil {
		return kernel{}, err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return kernel{}, fmt.Errorf("nfsrig: apt-get download %s left %d packages in %s", pkg, len(debs), tmp)
	}
	if err := run(tmp, "dpkg-deb", "-x", debs[0], "."); err != nil {
		return kernel{}, err
	}
	if err := os.Remove(debs[0]); err != nil {
		return kernel{}, err
	}
	if err := run(tmp, "depmod", "-b", tmp, k.version); err != nil {
		return kernel{}, err
	}
	if _, err := os.Stat(filepath.Join(tmp, "boot", "vmlinuz-"+k.version)); err != nil {
		return kernel{}, fmt.Errorf("nfsrig: package %s has no kernel image: %w", pkg, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "ready"), nil, 0o644); err != nil {
		return kernel{}, err
	}
	if err := os.RemoveAll(k.root); err != nil {
		return kernel{}, err
	}
	return k, os.Rename(tmp, k.root)
}

// kernelPackage returns the name of the kernel package that
// linux-image-amd64 depends on (linux-image-6.1.0-57-amd64, say).
func kernelPackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", fmt.Errorf("nfsrig: apt-cache depends linux-image-amd64 (has apt-get update run?): %w", exitError(err))
	}
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		if pkg, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "Depends: "); ok && strings.HasPrefix(pkg, "linux-image-") {
			return pkg, nil
		}
	}
	return "", fmt.Errorf("nfsrig: apt-cache depends linux-image-amd64 names no kernel package:\n%s", out)
}

// moduleFiles returns the files of the kernel's modules names and of the
// modules they depend on, each once, in the order they must be loaded.
func (k kernel) moduleFiles(names ...string) ([]string, error) {
	args := append([]string{"-a", "--show-depends", "-d", k.root, "-S", k.version}, names...)
	out, err := exec.Command("modprobe", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("nfsrig: modprobe %s: %w", strings.Join(args, " "), exitError(err))
	}
	var files []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "insmod":
			if !slices.Contains(files, f[1]) {
				files = append(files, f[1])
			}
		case len(f) >= 1 && f[0] == "builtin":
		default:
			return nil, fmt.Errorf("nfsrig: modprobe --show-depends: unexpected line %q", line)
		}
	}
	return files, nil
}

// run runs a command in dir and returns an error with its output if it fails.
func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nfsrig: %s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// exitError adds a failed command's standard error to err.
func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return err
}
