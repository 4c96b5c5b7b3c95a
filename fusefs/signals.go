//go:build linux

package fusefs

import "syscall"

// A blocked open is told of a signal once (FUSE_INTERRUPT); what it does
// then follows what the signal will do to the caller, as a person would
// expect:
//
//   - a signal that kills the caller (SIGKILL, or a terminating signal
//     without a handler) fails the open with EINTR at once, so the process
//     dies promptly instead of waiting for the lock in uninterruptible sleep;
//   - a handled SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGUSR1 or SIGUSR2
//     fails it with EINTR, so that Ctrl-C handlers and alarm() timeouts of
//     legacy programs work;
//   - any other signal (SIGCHLD, SIGWINCH, SIGCONT, SIGURG, job control, a
//     handled SIGPIPE) lets the open keep waiting: most programs do not retry
//     an open that fails with EINTR, and a shell's SIGCHLD must not make
//     `exec 9>lock` fail.

// interruptsWhenCaught are the signals whose handler a person expects to
// run, and so to end the wait, even though the caller survives them.
var interruptsWhenCaught = sigsetOf(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGALRM, syscall.SIGUSR1, syscall.SIGUSR2)

// harmlessByDefault are the signals whose default action does not end the
// process: it ignores them, continues or stops.
var harmlessByDefault = sigsetOf(syscall.SIGCHLD, syscall.SIGCONT, syscall.SIGURG,
	syscall.SIGWINCH, syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU)

// interruptingSignal returns the pending signal that must end the thread's
// blocked open, or 0 if it should keep waiting.
func (st threadStatus) interruptingSignal() syscall.Signal {
	deliverable := st.pending &^ st.blocked
	if deliverable.has(syscall.SIGKILL) {
		return syscall.SIGKILL
	}
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if !deliverable.has(sig) {
			continue
		}
		switch {
		case st.caught.has(sig):
			if interruptsWhenCaught.has(sig) {
				return sig
			}
		case st.ignored.has(sig), harmlessByDefault.has(sig):
		default:
			return sig // its default action terminates the process
		}
	}
	return 0
}

func sigsetOf(sigs ...syscall.Signal) sigset {
	var s sigset
	for _, sig := range sigs {
		s |= 1 << (sig - 1)
	}
	return s
}
