package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// checkLockDir tells a free lock from a mistyped path: the library calls a
// lock free whenever PATH.nfs_lock does not exist, missing directory
// included, and an operator who is told "free" for a typo is misled.
func checkLockDir(path string) error {
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
