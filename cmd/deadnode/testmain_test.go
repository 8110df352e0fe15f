package main

import (
	"os"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// TestMain keeps the tests' decompressed collections out of the user's
// cache; with DEADNODE_AS_CLI=1 the test binary is the CLI (tests run it
// as another user).
func TestMain(m *testing.M) {
	if os.Getenv("DEADNODE_AS_CLI") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	testfix.PrivateCache()
	os.Exit(m.Run())
}
