//go:build linux

package main

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"testing"
)

// manPage is the source of nfslock(1), rendered by make man.
const manPage = "../../docs/man/nfslock.1.md"

// TestManPageMatchesHelp: the options the help texts of nfslock and its
// commands list, long and short, are the options the man page lists.
func TestManPageMatchesHelp(t *testing.T) {
	src, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatal(err)
	}
	help := lockHelp + statusHelp + unlockHelp + breakHelp
	// In help, options stand as "-n, --nonblock"; in the man page, in bold.
	helpOpt := regexp.MustCompile(`(?:^|[\s,(])(--?[a-zA-Z][a-z-]*)`)
	manOpt := regexp.MustCompile(`\*\*(--?[a-zA-Z][a-z-]*)\*\*`)
	inHelp, inMan := map[string]bool{}, map[string]bool{}
	for _, m := range helpOpt.FindAllStringSubmatch(help, -1) {
		inHelp[m[1]] = true
	}
	for _, m := range manOpt.FindAllStringSubmatch(string(src), -1) {
		inMan[m[1]] = true
	}
	if !maps.Equal(inHelp, inMan) {
		t.Errorf("options in the help texts: %v\noptions in %s: %v", slices.Sorted(maps.Keys(inHelp)), manPage, slices.Sorted(maps.Keys(inMan)))
	}
	for _, opt := range lockOptions {
		if !inMan["-"+string(opt.short)] {
			t.Errorf("%s does not list -%c", manPage, opt.short)
		}
		for _, long := range opt.long {
			if long != "nb" && long != "wait" && !inMan["--"+long] { // flock(1)'s aliases, kept quiet
				t.Errorf("%s does not list --%s", manPage, long)
			}
		}
	}
}
