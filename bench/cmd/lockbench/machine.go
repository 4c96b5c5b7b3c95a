package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// What the doc says about where and with what the numbers were taken.

func machineSummary(dir string) string {
	var uts syscall.Utsname
	syscall.Uname(&uts)
	return fmt.Sprintf("%s, %d CPUs, %.1f GiB RAM, Linux %s; lock directories on %s",
		cpuModel(), runtime.NumCPU(), float64(numberField("/proc/meminfo", "MemTotal:"))/(1<<20), cString(uts.Release[:]), fsType(dir))
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

// procStatus returns the number in a field of /proc/PID/status.
func procStatus(pid int, field string) int64 {
	return numberField(fmt.Sprintf("/proc/%d/status", pid), field)
}

// numberField returns the number after field in a "Field: N ..." file of /proc.
func numberField(name, field string) int64 {
	data, _ := os.ReadFile(name)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "?"
	}
	names := map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
		0x794C7630: "overlayfs", 0x65735546: "FUSE", 0x6969: "NFS"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("filesystem type %#x", st.Type)
}

func cString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// version returns the installed version of a Debian package ("linux": the
// kernel; "": this repository's commit).
func version(pkg string) string {
	var cmd *exec.Cmd
	switch pkg {
	case "linux":
		var uts syscall.Utsname
		syscall.Uname(&uts)
		return "Linux " + cString(uts.Release[:])
	case "":
		cmd = exec.Command("git", "describe", "--always", "--dirty")
	default:
		cmd = exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg)
	}
	out, err := cmd.Output()
	if err != nil {
		return "?"
	}
	v := string(bytes.TrimSpace(out))
	if pkg == "" {
		return "this tree, " + v
	}
	return pkg + " " + v
}
