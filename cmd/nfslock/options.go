//go:build linux

package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// lockConfig is what the command line asks of nfslock's main mode.
type lockConfig struct {
	path         string
	argv         []string // COMMAND and its arguments; $SHELL -c CMD for -c
	nonblock     bool
	timeout      time.Duration // 0: wait for ever
	conflictCode int
	message      string
	hasMessage   bool // -m given, even as ""
	verbose      bool
	shared       bool // -s: a shared lock
}

// An option is one of the main mode's options, as flock(1) spells it.
type option struct {
	short byte
	long  []string
	arg   string // the value's name in messages; "" for a switch
	set   func(c *lockConfig, value string) error
}

var lockOptions = []option{
	{'n', []string{"nonblock", "nb"}, "", func(c *lockConfig, _ string) error { c.nonblock = true; return nil }},
	{'w', []string{"timeout", "wait"}, "DURATION", func(c *lockConfig, v string) (err error) {
		if c.timeout, err = parseTimeout(v); err == nil && c.timeout == 0 {
			c.nonblock = true // as flock(1) has it
		}
		return err
	}},
	{'E', []string{"conflict-exit-code"}, "N", func(c *lockConfig, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 255 {
			return fmt.Errorf("conflict exit code %q is not a number from 0 to 255", v)
		}
		c.conflictCode = n
		return nil
	}},
	{'m', []string{"message"}, "TEXT", func(c *lockConfig, v string) error {
		if len(v) > nfslock.MaxMessageLen {
			return fmt.Errorf("message is %d bytes; at most %d are allowed", len(v), nfslock.MaxMessageLen)
		}
		c.message, c.hasMessage = v, true
		return nil
	}},
	{'v', []string{"verbose"}, "", func(c *lockConfig, _ string) error { c.verbose = true; return nil }},
	// Locks are exclusive unless -s, as flock's are by default.
	{'s', []string{"shared"}, "", func(c *lockConfig, _ string) error { c.shared = true; return nil }},
	{'x', []string{"exclusive"}, "", func(c *lockConfig, _ string) error { c.shared = false; return nil }},
	{'e', nil, "", func(c *lockConfig, _ string) error { c.shared = false; return nil }},
	{'h', []string{"help"}, "", func(*lockConfig, string) error { return errHelp }},
	{'V', []string{"version"}, "", func(*lockConfig, string) error { return errVersion }},
}

// parseLockArgs parses "[options] PATH COMMAND [ARG...]" and
// "[options] PATH -c CMD" with flock(1)'s manners: short options may be
// bundled (-nw 5) and take their value attached or as the next word; long
// ones as --opt=value or --opt value; options end at PATH or after "--";
// everything after PATH belongs to COMMAND.
func parseLockArgs(args []string) (lockConfig, error) {
	c := lockConfig{conflictCode: 1}
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
		word := args[0]
		args = args[1:]
		if word == "--" {
			break
		}
		var err error
		if long, ok := strings.CutPrefix(word, "--"); ok {
			args, err = parseLong(&c, long, args)
		} else {
			args, err = parseShorts(&c, word[1:], args)
		}
		if err != nil {
			return c, err
		}
	}
	switch {
	case len(args) == 0:
		return c, usageErrorf("nfslock", "missing PATH and COMMAND")
	case len(args) == 1:
		return c, usageErrorf("nfslock", "missing COMMAND after PATH %s", args[0])
	}
	if err := checkLockPaths("nfslock", args[0]); err != nil {
		return c, err
	}
	c.path, args = args[0], args[1:]
	message := commandLine(args)
	if args[0] == "-c" || args[0] == "--command" {
		if len(args) != 2 {
			return c, usageErrorf("nfslock", "%s takes exactly one argument, the shell command", args[0])
		}
		c.argv = []string{shell(), "-c", args[1]}
		message = args[1]
	} else {
		c.argv = args
	}
	if !c.hasMessage {
		c.message = nfslock.CutMessage(message)
	}
	return c, nil
}

func parseLong(c *lockConfig, word string, rest []string) ([]string, error) {
	name, value, hasValue := strings.Cut(word, "=")
	o := findOption(func(o option) bool { return slices.Contains(o.long, name) })
	switch {
	case o == nil:
		return rest, usageErrorf("nfslock", "unknown option --%s", name)
	case o.arg == "" && hasValue:
		return rest, usageErrorf("nfslock", "option --%s takes no value", name)
	case o.arg != "" && !hasValue:
		if len(rest) == 0 {
			return rest, usageErrorf("nfslock", "option --%s needs a value (%s)", name, o.arg)
		}
		value, rest = rest[0], rest[1:]
	}
	return rest, apply(c, o, "--"+name, value)
}

func parseShorts(c *lockConfig, letters string, rest []string) ([]string, error) {
	for i := 0; i < len(letters); i++ {
		o := findOption(func(o option) bool { return o.short == letters[i] })
		if o == nil {
			return rest, usageErrorf("nfslock", "unknown option -%c", letters[i])
		}
		if o.arg == "" {
			if err := apply(c, o, "-"+letters[i:i+1], ""); err != nil {
				return rest, err
			}
			continue
		}
		value := letters[i+1:]
		if value == "" {
			if len(rest) == 0 {
				return rest, usageErrorf("nfslock", "option -%c needs a value (%s)", o.short, o.arg)
			}
			value, rest = rest[0], rest[1:]
		}
		return rest, apply(c, o, "-"+letters[i:i+1], value)
	}
	return rest, nil
}

func apply(c *lockConfig, o *option, spelled, value string) error {
	err := o.set(c, value)
	if err != nil && !errors.Is(err, errHelp) && !errors.Is(err, errVersion) {
		return usageErrorf("nfslock", "%s: %v", spelled, err)
	}
	return err
}

func findOption(match func(option) bool) *option {
	for i := range lockOptions {
		if match(lockOptions[i]) {
			return &lockOptions[i]
		}
	}
	return nil
}

// parseTimeout reads -w's value: plain seconds as flock(1) takes them
// ("10", "0.5", ".007") or a Go duration ("1m30s", "500ms").
func parseTimeout(s string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs < 0 || math.IsNaN(secs) || secs > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("timeout %q is out of range", s)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("timeout %q is neither seconds (0.5) nor a duration (1m30s)", s)
	}
	return d, nil
}

// shell is the shell that runs -c's command: $SHELL, else /bin/sh, as
// flock(1) has it.
func shell() string {
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return "/bin/sh"
}
