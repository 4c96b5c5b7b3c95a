//go:build linux

package main

import (
	"io"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/nfslockfs/nfslockfs/nfslock/lockview"
)

// A lockView is one lock as status and break show it: package lockview's
// text or JSON, to which the CLI adds only the lock's path, its state and,
// in text, how long it has been held.
type lockView struct {
	path   string
	holder *nfslock.Holder // nil: the lock is free
	// serverNow is the time of the server that stores the lock, read for
	// a lease (zero: not read), to show its age by the server's clock.
	serverNow time.Time
}

// writeText writes path and state, the holder's lines and held-for.
func (v lockView) writeText(w io.Writer) error {
	b := lockview.AppendLine(nil, "path", v.path)
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
func (v lockView) writeJSON(w io.Writer) error {
	o := lockview.NewObject(v.holder).WithPath(v.path)
	if h := v.holder; h != nil && h.Lease != nil && !v.serverNow.IsZero() {
		o = o.WithServerTime(h.Lease, v.serverNow)
	}
	_, err := w.Write(o.AppendJSON(nil))
	return err
}
