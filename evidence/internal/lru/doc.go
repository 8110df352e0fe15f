// Package lru is the bounded least-recently-used cache the evidence readers
// (ext4, XFS, disk images) keep their blocks, inodes, directories and tables
// in. Each value has a cost (bytes, entries, or 1); the cache drops the
// oldest values while the total cost exceeds its budget, so its memory does
// not grow with the evidence. A Cache is safe for concurrent use; values are
// shared between callers, who must not modify them once stored.
package lru
