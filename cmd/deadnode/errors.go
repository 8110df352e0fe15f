package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/forensics"
)

// explain turns a library error into the one line an examiner reads, with
// a hint where a user most likely mixed things up.
func explain(a *app, err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrPermission) && errors.As(err, &pe):
		return fmt.Sprintf("permission denied reading %s in the evidence %s: deadnode cannot tell what it holds; run it as a user who may read the whole evidence (e.g. root), or copy the evidence keeping its permissions", pe.Path, a.root)
	case errors.Is(err, forensics.ErrNoRuntime):
		if looksLikeCheckpoint(a.root) {
			return err.Error() + "; " + a.root + " looks like a container checkpoint, not a node: use it without --root, as in 'deadnode checkpoint inspect " + a.root + "' or 'deadnode mem maps " + a.root + "'"
		}
	}
	return err.Error()
}

// looksLikeCheckpoint says whether a host path holds CRIU images (a
// checkpoint archive or images directory) rather than a node.
func looksLikeCheckpoint(p string) bool {
	if p == "" {
		return false
	}
	if _, err := os.Stat(p); err != nil {
		return false
	}
	src, _, err := forensics.OpenSource(p)
	if err != nil {
		return false
	}
	defer src.Close()
	return checkpoint.Holds(src)
}

// looksLikeNode says whether a host path holds a node's evidence (a
// filesystem root) rather than a checkpoint.
func looksLikeNode(p string) bool {
	src, _, err := forensics.OpenSource(p)
	if err != nil {
		return false
	}
	defer src.Close()
	return forensics.LooksLikeNode(src)
}

// sourceHint adds to a checkpoint SOURCE's error the likely mix-up: a
// node's evidence given where a checkpoint was expected.
func sourceHint(source string, err error) error {
	if err == nil || !looksLikeNode(source) {
		return err
	}
	return fmt.Errorf("%w; %s looks like a node's evidence, not a checkpoint: give it as --root and name one of its checkpoints (deadnode --root %s checkpoint ls)", err, source, source)
}
