// Package xfs reads an XFS version 5 filesystem from an io.ReaderAt.
package xfs
