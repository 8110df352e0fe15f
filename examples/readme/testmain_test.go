package main

import (
	"os"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// TestMain keeps the tests' decompressed collections out of the user's
// cache.
func TestMain(m *testing.M) {
	testfix.PrivateCache()
	os.Exit(m.Run())
}
