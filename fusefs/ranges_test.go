//go:build linux

package fusefs

import "testing"

func TestByteRangesReleaseOnlyWhenAllUnlocked(t *testing.T) {
	var r byteRanges
	r.add(0, 99)
	r.add(200, offsetMax)
	r.add(100, 149) // adjacent: merges with [0, 99]
	if r.remove(50, 120) {
		t.Fatalf("a partial unlock emptied %v", r)
	}
	if r.remove(0, 49) || r.remove(121, 149) {
		t.Fatalf("unlocking part of what is left emptied %v", r)
	}
	if !r.remove(0, offsetMax) {
		t.Fatalf("unlocking the whole file left %v", r)
	}
	r.add(10, 20)
	if !r.remove(0, offsetMax) {
		t.Fatalf("unlocking the whole file left %v", r)
	}
}
