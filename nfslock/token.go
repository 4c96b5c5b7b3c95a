//go:build linux

package nfslock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// In a lease directory every acquisition of P gets a fencing token, and
// declares its lease, in the token file P.nfslock-token, which outlives the
// lock (it is never removed: the next holder's token is one more than the
// last one it holds). It is a file of its own, not a field of the record,
// because Core's reader rejects records with unknown fields. Only a holder
// writes it, right after taking the lock and before it returns, as
// "key value" lines:
//
//	token 42
//	inode 1234567
//	held-since 2026-12-01T10:00:00.123456789Z
//	lease 30s
//
// inode is P.nfs_lock's inode number when the holder wrote the file: the
// file describes the current holder only if the lock file still has it
// (Core's holders, which write none, leave an older holder's file behind).
// held-since is the server's time of the acquisition, which P.nfs_lock's
// mtime no longer says once the lease has been renewed.
const TokenSuffix = ".nfslock-token"

func tokenFile(p string) string { return p + TokenSuffix }

// tokenInfo is the contents of a token file.
type tokenInfo struct {
	token     uint64
	ino       uint64
	heldSince time.Time
	lease     time.Duration
}

func (t tokenInfo) encode() []byte {
	return fmt.Appendf(nil, "token %d\ninode %d\nheld-since %s\nlease %s\n",
		t.token, t.ino, t.heldSince.UTC().Format(time.RFC3339Nano), t.lease)
}

func parseTokenFile(data []byte) (tokenInfo, error) {
	var t tokenInfo
	seen := map[string]bool{}
	for line := range bytes.Lines(data) {
		key, value, ok := strings.Cut(strings.TrimSuffix(string(line), "\n"), " ")
		if !ok || seen[key] {
			return tokenInfo{}, fmt.Errorf("line %q: %w", line, ErrCorrupt)
		}
		seen[key] = true
		var err error
		switch key {
		case "token":
			t.token, err = strconv.ParseUint(value, 10, 64)
		case "inode":
			t.ino, err = strconv.ParseUint(value, 10, 64)
		case "held-since":
			t.heldSince, err = time.Parse(time.RFC3339Nano, value)
		case "lease":
			t.lease, err = time.ParseDuration(value)
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return tokenInfo{}, fmt.Errorf("line %q: %v: %w", line, err, ErrCorrupt)
		}
	}
	if len(seen) != 4 {
		return tokenInfo{}, fmt.Errorf("want the keys token, inode, held-since and lease: %w", ErrCorrupt)
	}
	return t, nil
}

// readTokenFile reads P's token file. A missing one gives the zero
// tokenInfo and no error: no holder has had a token yet.
func readTokenFile(p string) (tokenInfo, error) {
	data, err := os.ReadFile(tokenFile(p))
	if errors.Is(err, os.ErrNotExist) {
		return tokenInfo{}, nil
	}
	if err == nil && len(data) > MaxRecordSize {
		err = fmt.Errorf("%d bytes: %w", len(data), ErrCorrupt)
	}
	if err == nil {
		var t tokenInfo
		if t, err = parseTokenFile(data); err == nil {
			return t, nil
		}
	}
	return tokenInfo{}, fmt.Errorf("nfslock: %s: token file %s: %w", p, tokenFile(p), err)
}

// writeTokenFile replaces P's token file atomically (an attempt file
// renamed over it), so that a reader sees the old file or the new one.
func writeTokenFile(p string, t tokenInfo) error {
	a, err := writeAttempt(p, t.encode())
	if err != nil {
		return pathError(p, err)
	}
	if err := rename(a.name, tokenFile(p)); err != nil {
		os.Remove(a.name)
		return pathError(p, err)
	}
	return nil
}

// leaseOf returns what a lease directory adds to h, the holder of p that
// one read of P.nfs_lock (of inode ino) found, or nil outside one.
func leaseOf(p string, h Holder, ino uint64) *Lease {
	dur, err := dirLease(p)
	if err != nil || dur == 0 {
		return nil
	}
	ls := &Lease{Duration: dur, Renewed: h.Since}
	if t, err := readTokenFile(p); err == nil && t.ino == ino && t.token > 0 {
		ls.Duration, ls.Token, ls.HeldSince = t.lease, t.token, t.heldSince
	}
	return ls
}

// pathIno is the inode number of a lock file's attributes.
func pathIno(fi os.FileInfo) uint64 { return fi.Sys().(*syscall.Stat_t).Ino }
