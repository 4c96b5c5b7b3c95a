//go:build linux

package main

import (
	"io"
	"strconv"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/nfslockfs/nfslockfs/nfslock/lockview"
)

// A lockView is one lock as status and break show it: package lockview's
// text or JSON, to which the CLI adds only the lock's path, its state and,
// in text, how long it has been held.
type lockView struct {
	path   string
	holder *nfslock.Holder  // nil: the lock is free, or held shared only
	shared []nfslock.Holder // the shared holders of a lock without an exclusive one
	// serverNow is the time of the server that stores the lock, read for
	// a lease (zero: not read), to show its age by the server's clock.
	serverNow time.Time
}

// writeText writes path and state, the holder's lines and held-for.
func (v lockView) writeText(w io.Writer) error {
	b := lockview.AppendLine(nil, "path", v.path)
	if len(v.shared) > 0 {
		b = lockview.AppendLine(b, "state", "shared")
		b = lockview.AppendLine(b, "shared-by", strconv.Itoa(len(v.shared)))
		for _, h := range v.shared {
			b = append(b, '\n')
			b = lockview.AppendText(b, h)
		}
		_, err := w.Write(b)
		return err
	}
	b = lockview.AppendLine(b, "state", lockview.State(v.holder))
	if h := v.holder; h != nil {
		b = lockview.AppendText(b, *h)
		if !h.Since.IsZero() {
			b = lockview.AppendLine(b, "held-for", time.Since(h.Since).Round(time.Second).String())
		}
		if h.Lease != nil && !v.serverNow.IsZero() {
			b = lockview.AppendServerTime(b, h.Lease, v.serverNow)
		}
	}
	_, err := w.Write(b)
	return err
}

// writeJSON writes the lock's JSON object, with its path, on one line.
//
// A lock held shared only writes one object per shared holder, each naming
// the holder (so that no reader takes it for free).
func (v lockView) writeJSON(w io.Writer) error {
	if len(v.shared) > 0 {
		var b []byte
		for i := range v.shared {
			b = lockview.NewObject(&v.shared[i]).WithPath(v.path).AppendJSON(b)
		}
		_, err := w.Write(b)
		return err
	}
	o := lockview.NewObject(v.holder).WithPath(v.path)
	if h := v.holder; h != nil && h.Lease != nil && !v.serverNow.IsZero() {
		o = o.WithServerTime(h.Lease, v.serverNow)
	}
	_, err := w.Write(o.AppendJSON(nil))
	return err
}
