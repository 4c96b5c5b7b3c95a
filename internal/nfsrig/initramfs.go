package nfsrig

import (
	"debug/elf"
	_ "embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// initScript is the initramfs's /init.
//
//go:embed init.sh
var initScript []byte

// bootModules are the modules /init loads to mount the host's / over
// virtio-9p (modprobe adds what they depend on).
var bootModules = []string{"virtio_pci", "9pnet_virtio", "9p"}

// buildInitramfs writes to dst an initramfs (a newc cpio archive) holding a
// static busybox, init.sh as /init and the modules of k that it loads, with
// their load order in /modules/order.
func buildInitramfs(k kernel, dst string) error {
	busybox, err := staticBusybox()
	if err != nil {
		return err
	}
	mods, err := k.moduleFiles(bootModules...)
	if err != nil {
		return err
	}
	stage, err := os.MkdirTemp(filepath.Dir(dst), "initramfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	for _, dir := range []string{"bin", "dev", "proc", "sys", "modules"} {
		if err := os.Mkdir(filepath.Join(stage, dir), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(busybox, filepath.Join(stage, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stage, "init"), initScript, 0o755); err != nil {
		return err
	}
	var order strings.Builder
	for _, m := range mods {
		if err := copyFile(m, filepath.Join(stage, "modules", filepath.Base(m)), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(&order, filepath.Base(m))
	}
	if err := os.WriteFile(filepath.Join(stage, "modules", "order"), []byte(order.String()), 0o644); err != nil {
		return err
	}
	var list strings.Builder
	err = filepath.WalkDir(stage, func(path string, _ fs.DirEntry, err error) error {
		if err == nil && path != stage {
			rel, _ := filepath.Rel(stage, path)
			fmt.Fprintln(&list, rel)
		}
		return err
	})
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	cpio := exec.Command("cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0")
	var msg strings.Builder
	cpio.Dir, cpio.Stdin, cpio.Stdout, cpio.Stderr = stage, strings.NewReader(list.String()), out, &msg
	if err := cpio.Run(); err != nil {
		return fmt.Errorf("nfsrig: cpio: %w: %s", err, msg.String())
	}
	return out.Close()
}

// staticBusybox returns the path of a statically linked busybox
// (busybox-static installs one as /bin/busybox); a dynamically linked one
// would need its libraries in the initramfs.
func staticBusybox() (string, error) {
	path, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("nfsrig: %w (install busybox-static)", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("nfsrig: %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("nfsrig: %s is dynamically linked (install busybox-static)", path)
		}
	}
	return path, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}
