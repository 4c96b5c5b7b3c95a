package faultfs

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Op is a type of FUSE request, named as in the FUSE protocol (and in
// go-fuse's debug output).
type Op string

// The requests the gate counts and can fail. WRITE covers go-fuse's Write
// and Writev; RENAME covers RENAME2.
const (
	OpLookup        Op = "LOOKUP"
	OpGetattr       Op = "GETATTR"
	OpSetattr       Op = "SETATTR"
	OpStatx         Op = "STATX"
	OpAccess        Op = "ACCESS"
	OpReadlink      Op = "READLINK"
	OpSymlink       Op = "SYMLINK"
	OpMknod         Op = "MKNOD"
	OpMkdir         Op = "MKDIR"
	OpUnlink        Op = "UNLINK"
	OpRmdir         Op = "RMDIR"
	OpRename        Op = "RENAME"
	OpLink          Op = "LINK"
	OpCreate        Op = "CREATE"
	OpTmpfile       Op = "TMPFILE"
	OpOpen          Op = "OPEN"
	OpRead          Op = "READ"
	OpWrite         Op = "WRITE"
	OpLseek         Op = "LSEEK"
	OpFlush         Op = "FLUSH"
	OpFsync         Op = "FSYNC"
	OpFallocate     Op = "FALLOCATE"
	OpCopyFileRange Op = "COPY_FILE_RANGE"
	OpIoctl         Op = "IOCTL"
	OpRelease       Op = "RELEASE"
	OpOpendir       Op = "OPENDIR"
	OpReaddir       Op = "READDIR"
	OpReaddirplus   Op = "READDIRPLUS"
	OpFsyncdir      Op = "FSYNCDIR"
	OpReleasedir    Op = "RELEASEDIR"
	OpStatfs        Op = "STATFS"
)

// Counts holds a number of requests per type.
type Counts map[Op]int64

// Counts returns how many requests of each type have arrived since the
// mount or the last ResetCounts (types with none are absent).
func (f *FS) Counts() Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

// ResetCounts sets every count to zero.
func (f *FS) ResetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.counts)
}

// Total returns the number of requests of all types.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Sub returns the requests counted in c but not in earlier, an earlier
// snapshot of the same filesystem's counts.
func (c Counts) Sub(earlier Counts) Counts {
	d := Counts{}
	for op, n := range c {
		if n -= earlier[op]; n != 0 {
			d[op] = n
		}
	}
	return d
}

// String formats the counts for reports, by type in alphabetical order and
// then the total: "CREATE=1 LOOKUP=3 total=4".
func (c Counts) String() string {
	var b strings.Builder
	for _, op := range slices.Sorted(maps.Keys(c)) {
		fmt.Fprintf(&b, "%s=%d ", op, c[op])
	}
	fmt.Fprintf(&b, "total=%d", c.Total())
	return b.String()
}
