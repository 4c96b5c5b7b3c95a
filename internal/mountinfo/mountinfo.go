//go:build linux

// Package mountinfo reads this process's mount table, /proc/self/mountinfo.
package mountinfo

import (
	"os"
	"slices"
	"strconv"
	"strings"
)

// NFSLockFSType is the type the table shows for an nfslockfs mount (the
// FUSE filesystem's name is "nfslockfs").
const NFSLockFSType = "fuse.nfslockfs"

// IsFUSE reports whether fstype, as the table shows it, is a FUSE
// filesystem's ("fuse", "fuseblk" or "fuse.NAME").
func IsFUSE(fstype string) bool {
	return fstype == "fuse" || fstype == "fuseblk" || strings.HasPrefix(fstype, "fuse.")
}

// A Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Root       string // the path inside the mounted filesystem that is mounted here
	Mountpoint string
	FSType     string // "fuse.NAME" for a FUSE filesystem
	Source     string
}

// Read returns this process's mounts in the table's order: a mount stacked
// on another comes after it. Errors are those of reading the file.
func Read() ([]Mount, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parse(string(data)), nil
}

func parse(table string) []Mount {
	var mounts []Mount
	for line := range strings.Lines(table) {
		// id parent dev ROOT MOUNTPOINT options [optional...] - TYPE SOURCE superoptions
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if sep < 6 || sep+2 >= len(fields) {
			continue
		}
		mounts = append(mounts, Mount{
			Root:       unescape(fields[3]),
			Mountpoint: unescape(fields[4]),
			FSType:     fields[sep+1],
			Source:     unescape(fields[sep+2]),
		})
	}
	return mounts
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
