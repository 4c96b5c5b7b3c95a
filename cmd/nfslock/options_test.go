//go:build linux

package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// TestParseLockArgs covers every row of README.md's option table, the
// bundling and "--" rules, and the usage errors.
func TestParseLockArgs(t *testing.T) {
	t.Setenv("SHELL", "/bin/zsh")
	// cfg is the configuration of "PATH cmd arg" with the changes made by f.
	cfg := func(f func(c *lockConfig)) lockConfig {
		c := lockConfig{path: "P", argv: []string{"cmd", "arg"}, conflictCode: 1, message: "cmd arg"}
		if f != nil {
			f(&c)
		}
		return c
	}
	nonblock := func(c *lockConfig) { c.nonblock = true }
	timeout := func(d time.Duration) func(*lockConfig) { return func(c *lockConfig) { c.timeout = d } }
	code := func(n int) func(*lockConfig) { return func(c *lockConfig) { c.conflictCode = n } }
	message := func(m string) func(*lockConfig) { return func(c *lockConfig) { c.message, c.hasMessage = m, true } }
	verbose := func(c *lockConfig) { c.verbose = true }
	shared := func(c *lockConfig) { c.shared = true }
	all := func(fs ...func(*lockConfig)) func(*lockConfig) {
		return func(c *lockConfig) {
			for _, f := range fs {
				f(c)
			}
		}
	}
	long := strings.Repeat("x", nfslock.MaxMessageLen)

	for _, tc := range []struct {
		args string // split on spaces; "_" stands for an empty word
		want lockConfig
	}{
		{"P cmd arg", cfg(nil)},
		// -n, --nonblock (--nb)
		{"-n P cmd arg", cfg(nonblock)},
		{"--nonblock P cmd arg", cfg(nonblock)},
		{"--nb P cmd arg", cfg(nonblock)},
		// -w, --timeout DURATION (--wait): flock's seconds or a Go duration; 0 is -n
		{"-w 5 P cmd arg", cfg(timeout(5 * time.Second))},
		{"-w5 P cmd arg", cfg(timeout(5 * time.Second))},
		{"--timeout 5 P cmd arg", cfg(timeout(5 * time.Second))},
		{"--timeout=5 P cmd arg", cfg(timeout(5 * time.Second))},
		{"--wait=0.5 P cmd arg", cfg(timeout(500 * time.Millisecond))},
		{"-w .007 P cmd arg", cfg(timeout(7 * time.Millisecond))},
		{"-w 1m30s P cmd arg", cfg(timeout(90 * time.Second))},
		{"-w 500ms P cmd arg", cfg(timeout(500 * time.Millisecond))},
		{"-w 0 P cmd arg", cfg(nonblock)},
		{"--timeout=0s P cmd arg", cfg(nonblock)},
		// -E, --conflict-exit-code N
		{"-E 3 P cmd arg", cfg(code(3))},
		{"-E3 P cmd arg", cfg(code(3))},
		{"--conflict-exit-code 0 P cmd arg", cfg(code(0))},
		{"--conflict-exit-code=255 P cmd arg", cfg(code(255))},
		// -m, --message TEXT (default: the command line, shell-quoted)
		{"-m hi P cmd arg", cfg(message("hi"))},
		{"-mhi P cmd arg", cfg(message("hi"))},
		{"--message hi P cmd arg", cfg(message("hi"))},
		{"--message=hi P cmd arg", cfg(message("hi"))},
		{"-m _ P cmd arg", cfg(message(""))},
		{"--message= P cmd arg", cfg(message(""))},
		{"-m " + long + " P cmd arg", cfg(message(long))},
		{"P echo it's", lockConfig{path: "P", argv: []string{"echo", "it's"}, conflictCode: 1, message: `echo 'it'\''s'`}},
		// -v, --verbose
		{"-v P cmd arg", cfg(verbose)},
		{"--verbose P cmd arg", cfg(verbose)},
		// -c, --command CMD, right after PATH
		{"P -c echo", lockConfig{path: "P", argv: []string{"/bin/zsh", "-c", "echo"}, conflictCode: 1, message: "echo"}},
		{"-m m P --command echo", lockConfig{path: "P", argv: []string{"/bin/zsh", "-c", "echo"}, conflictCode: 1, message: "m", hasMessage: true}},
		// -s, --shared; -x, -e, --exclusive (the default), the last one wins
		{"-s P cmd arg", cfg(shared)},
		{"--shared P cmd arg", cfg(shared)},
		{"-x -s P cmd arg", cfg(shared)},
		{"-s -x P cmd arg", cfg(nil)},
		{"-x P cmd arg", cfg(nil)},
		{"-e P cmd arg", cfg(nil)},
		{"--exclusive P cmd arg", cfg(nil)},
		// Bundles: switches, then at most one option with a value, attached
		// or as the next word.
		{"-nw5 P cmd arg", cfg(all(nonblock, timeout(5*time.Second)))},
		{"-nE 3 P cmd arg", cfg(all(nonblock, code(3)))},
		{"-vxnm hi P cmd arg", cfg(all(verbose, nonblock, message("hi")))},
		{"-n -v -E7 P cmd arg", cfg(all(nonblock, verbose, code(7)))},
		{"-w 5 -w 1 P cmd arg", cfg(timeout(time.Second))}, // the last one counts
		// "--" ends the options; so does PATH; "-" is a PATH.
		{"-n -- -P cmd arg", cfg(all(nonblock, func(c *lockConfig) { c.path = "-P" }))},
		{"-- status cmd arg", cfg(func(c *lockConfig) { c.path = "status" })},
		{"- cmd arg", cfg(func(c *lockConfig) { c.path = "-" })},
		{"P cmd -n --", lockConfig{path: "P", argv: []string{"cmd", "-n", "--"}, conflictCode: 1, message: "cmd -n --"}},
		{"P -n", lockConfig{path: "P", argv: []string{"-n"}, conflictCode: 1, message: "-n"}},
	} {
		got, err := parseLockArgs(words(tc.args))
		if err != nil {
			t.Errorf("nfslock %s: %v", short(tc.args), err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("nfslock %s:\n got %+v\nwant %+v", short(tc.args), got, tc.want)
		}
	}
}

func TestParseLockArgsDefaultMessageIsCut(t *testing.T) {
	c, err := parseLockArgs([]string{"P", "echo", strings.Repeat("é", nfslock.MaxMessageLen)})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.message) > nfslock.MaxMessageLen || !utf8.ValidString(c.message) || !strings.HasPrefix(c.message, "echo 'éé") || !strings.HasSuffix(c.message, "é...") {
		t.Errorf("default message of a long command line: %d bytes, %q...%q; want at most %d, cut between characters, with ...",
			len(c.message), c.message[:10], c.message[len(c.message)-10:], nfslock.MaxMessageLen)
	}
}

func TestParseLockArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args string // split on spaces; "_" stands for an empty word
		want string // in the message
	}{
		{"", "missing PATH and COMMAND"},
		{"-n", "missing PATH and COMMAND"},
		{"P", "missing COMMAND after PATH P"},
		{"-q P cmd", "unknown option -q"},
		{"-nq P cmd", "unknown option -q"},
		{"--quiet P cmd", "unknown option --quiet"},
		{"--time=5 P cmd", "unknown option --time"},
		{"--nonblock=1 P cmd", "option --nonblock takes no value"},
		{"--exclusive= P cmd", "option --exclusive takes no value"},
		{"-w", "option -w needs a value (DURATION)"},
		{"-nw", "option -w needs a value (DURATION)"},
		{"--timeout", "option --timeout needs a value (DURATION)"},
		{"-w abc P cmd", `-w: timeout "abc" is neither seconds (0.5) nor a duration (1m30s)`},
		{"-w5n P cmd", `-w: timeout "5n" is neither seconds`},
		{"--timeout= P cmd", `--timeout: timeout "" is neither seconds`},
		{"-w -1 P cmd", `-w: timeout "-1" is out of range`},
		{"-w -1s P cmd", `-w: timeout "-1s" is neither seconds`},
		{"-w NaN P cmd", `timeout "NaN" is out of range`},
		{"-w inf P cmd", `timeout "inf" is out of range`},
		{"-w 1e300 P cmd", `timeout "1e300" is out of range`},
		{"-E 256 P cmd", `-E: conflict exit code "256" is not a number from 0 to 255`},
		{"-E -1 P cmd", `conflict exit code "-1" is not a number`},
		{"--conflict-exit-code=x P cmd", `--conflict-exit-code: conflict exit code "x" is not a number`},
		{"-m", "option -m needs a value (TEXT)"},
		{"-m " + strings.Repeat("x", nfslock.MaxMessageLen+1) + " P cmd", "-m: message is 4097 bytes; at most 4096 are allowed"},
		{"P -c", "-c takes exactly one argument, the shell command"},
		{"P -c echo hi", "-c takes exactly one argument"},
		{"P --command", "--command takes exactly one argument"},
		{"_ cmd", `"" is not a lock path: the path is empty`},
	} {
		_, err := parseLockArgs(words(tc.args))
		var usage *usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("nfslock %s: %v; want a usage error containing %q", short(tc.args), err, tc.want)
		}
	}
}

func TestParseLockArgsHelp(t *testing.T) {
	for _, args := range []string{"-h", "--help", "-nh P cmd", "-n --help P cmd", "-w 5 -h"} {
		if _, err := parseLockArgs(words(args)); !errors.Is(err, errHelp) {
			t.Errorf("nfslock %s: %v, want help", args, err)
		}
	}
	// After PATH, or after "--", -h is COMMAND's.
	for _, args := range []string{"P cmd -h", "-- -h cmd"} {
		if _, err := parseLockArgs(words(args)); err != nil {
			t.Errorf("nfslock %s: %v, want -h left to COMMAND or taken as PATH", args, err)
		}
	}
}

// words splits s on spaces, with "_" for an empty word.
func words(s string) []string {
	w := strings.Fields(s)
	for i := range w {
		if w[i] == "_" {
			w[i] = ""
		}
	}
	return w
}

// short is args for a message, long words cut.
func short(args string) string {
	if len(args) > 60 {
		return args[:60] + "..."
	}
	return args
}
