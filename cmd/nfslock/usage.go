//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nfslockfs/nfslockfs/internal/buildinfo"
)

// A usageError is a command line nfslock cannot make sense of. It is
// reported in one line and gives exit status 2.
type usageError struct {
	cmd string // "nfslock" or "nfslock status", ...: whose --help to suggest
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// errHelp is what parsers return for -h/--help; errVersion for
// -V/--version.
var (
	errHelp    = flag.ErrHelp
	errVersion = errors.New("version asked for")
)

// reportParseError prints help (for errHelp, on stdout, exit 0), the
// version (for errVersion, likewise) or the one-line reason of a usage
// error (exit 2).
func reportParseError(err error, help string) int {
	if errors.Is(err, errHelp) {
		fmt.Print(help)
		return 0
	}
	if errors.Is(err, errVersion) {
		fmt.Println(buildinfo.Read().String("nfslock"))
		return 0
	}
	var u *usageError
	if !errors.As(err, &u) {
		u = &usageError{cmd: "nfslock", msg: err.Error()}
	}
	fmt.Fprintf(os.Stderr, "%s: %s (see '%s --help')\n", u.cmd, u.msg, u.cmd)
	return exitUsage
}

// newFlagSet returns a FlagSet for a subcommand that reports errors instead
// of printing them, so that they can be shown in nfslock's one-line style.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseSubcommand parses a subcommand's flags and returns its operands,
// turning flag's errors into usage errors of cmd.
func parseSubcommand(fs *flag.FlagSet, cmd string, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, usageErrorf(cmd, "%v", err)
	}
	return fs.Args(), nil
}
