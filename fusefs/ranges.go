//go:build linux

package fusefs

import (
	"cmp"
	"slices"
)

// byteRanges is the set of byte ranges a POSIX lock owner has locked in a
// file, as closed intervals [start, end] (end is the kernel's OFFSET_MAX
// for "to end of file"), sorted and disjoint. The cluster lock covers the
// whole file; the ranges only decide when an owner has unlocked all it
// locked, so that a partial unlock never releases a lock whose owner still
// believes it holds a part of the file.
type byteRanges [][2]uint64

// add merges [start, end] into the set.
func (r *byteRanges) add(start, end uint64) {
	merged := byteRanges{}
	for _, x := range *r {
		if x[1] < start && x[1]+1 != start || end < x[0] && end+1 != x[0] {
			merged = append(merged, x) // apart and not adjacent
			continue
		}
		start, end = min(start, x[0]), max(end, x[1])
	}
	merged = append(merged, [2]uint64{start, end})
	slices.SortFunc(merged, func(a, b [2]uint64) int {
		return cmp.Compare(a[0], b[0])
	})
	*r = merged
}

// remove takes [start, end] out of the set and reports whether it is
// empty now.
func (r *byteRanges) remove(start, end uint64) bool {
	left := byteRanges{}
	for _, x := range *r {
		if x[1] < start || end < x[0] {
			left = append(left, x)
			continue
		}
		if x[0] < start {
			left = append(left, [2]uint64{x[0], start - 1})
		}
		if end < x[1] {
			left = append(left, [2]uint64{end + 1, x[1]})
		}
	}
	*r = left
	return len(left) == 0
}
