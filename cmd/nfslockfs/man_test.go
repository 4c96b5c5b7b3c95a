//go:build linux

package main

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// manPage is the source of nfslockfs(8), rendered by make man.
const manPage = "../../docs/man/nfslockfs.8.md"

// TestManPageMatchesHelp: every option that --help lists is in the man
// page, every option the man page lists is one the daemon takes, and the
// man page lists every mount option of nfslockfs's own.
func TestManPageMatchesHelp(t *testing.T) {
	src, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatal(err)
	}
	man := string(src)
	var help strings.Builder
	parseArgs([]string{"--help"}, &help)

	inHelp := longOptions(help.String())
	inMan := longOptions(man)
	delete(inMan, "help") // flag's own -h/--help, which the help does not list
	if !maps.Equal(inHelp, inMan) {
		t.Errorf("options in --help: %v\noptions in %s: %v", slices.Sorted(maps.Keys(inHelp)), manPage, slices.Sorted(maps.Keys(inMan)))
	}
	for opt := range maps.Keys(mountSwitches) {
		if !strings.Contains(man, "**"+opt+"**") {
			t.Errorf("%s does not list the mount option %s", manPage, opt)
		}
	}
	for opt := range maps.Keys(mountValues) {
		if !strings.Contains(man, "**"+opt+"=**") {
			t.Errorf("%s does not list the mount option %s=", manPage, opt)
		}
	}
}

// longOptions returns the --options that text names.
func longOptions(text string) map[string]bool {
	opts := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:^|[^-\w])--([a-z][a-z-]*)`).FindAllStringSubmatch(text, -1) {
		opts[m[1]] = true
	}
	return opts
}
