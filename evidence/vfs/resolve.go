package vfs

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
)

// MaxSymlinkHops is the number of symbolic links Resolve and FollowLinks
// follow, as the kernel's MAXSYMLINKS.
const MaxSymlinkHops = 40

// maxResolve bounds what FollowLinks has left to resolve, in components
// and in the bytes of one link target.
const maxResolve = 1 << 16

// MaxResolveSteps bounds the components one FollowLinks call looks up in
// all, links' targets included: every step may cost a walk from the
// root, so 40 hops of 64 KiB targets must not each be followed whole. A
// real path (PATH_MAX 4096 bytes) has far fewer.
const MaxResolveSteps = 4096

var errLexical = errors.New("resolve: the rest does not exist")

// Resolve follows the symbolic links of name inside src's own namespace:
// absolute targets restart at the source root, and ".." never climbs
// above it (as under chroot). When followLast is false a final symlink is
// left as it is. The result names an entry free of links in its
// intermediate components; it may not exist (the part that does not is
// kept lexically, ".." applied).
func Resolve(src Source, name string, followLast bool) (string, error) {
	stack, rest, err := FollowLinks(strings.Trim(name, "/"), "", func(stack []string, c string, more bool) (string, string, bool, error) {
		cand := strings.Join(append(stack[1:len(stack):len(stack)], c), "/")
		st, err := src.Lstat(cand)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", "", false, errLexical
			}
			return "", "", false, err
		}
		if st.Mode&fs.ModeSymlink == 0 || (!more && !followLast) {
			return c, "", false, nil
		}
		target, err := src.Readlink(cand)
		return "", target, true, err
	})
	switch {
	case err == errLexical:
		// The rest cannot exist either; return the lexical remainder.
		out := stack[1:]
		for _, r := range rest {
			if r == ".." && len(out) > 0 {
				out = out[:len(out)-1]
			} else if r != "" && r != "." && r != ".." {
				out = append(out, r)
			}
		}
		return joinOrDot(out), nil
	case errors.Is(err, ErrTooManyLinks), errors.Is(err, syscall.ENAMETOOLONG):
		return "", &fs.PathError{Op: "resolve", Path: name, Err: err}
	case err != nil:
		return "", err
	}
	return joinOrDot(stack[1:]), nil
}

// FollowLinks resolves name one component at a time in a namespace whose
// entries are N, following symbolic links as the kernel does but inside
// the namespace: "" and "." are skipped, ".." goes up (never above root),
// an absolute link target restarts at root, at most MaxSymlinkHops links
// are followed (then ErrTooManyLinks), and what is left to resolve and the
// components looked up in all stay bounded (then ENAMETOOLONG). step looks c up below the last entry of
// stack (more says whether components follow c) and returns the child, or
// a link target to follow instead. It returns the entries from root to
// the result; on an error, the stack so far and what was left, c first.
func FollowLinks[N any](name string, root N, step func(stack []N, c string, more bool) (child N, target string, follow bool, err error)) ([]N, []string, error) {
	rest := strings.Split(name, "/")
	stack := []N{root}
	hops, steps := 0, 0
	for len(rest) > 0 {
		if steps++; steps > MaxResolveSteps {
			return stack, rest, syscall.ENAMETOOLONG
		}
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		child, target, follow, err := step(stack, c, len(rest) > 0)
		if err == nil && follow {
			hops++
			switch {
			case hops > MaxSymlinkHops:
				err = ErrTooManyLinks
			case len(target) > maxResolve || len(rest)+strings.Count(target, "/") > maxResolve:
				err = syscall.ENAMETOOLONG
			}
		}
		if err != nil {
			return stack, append([]string{c}, rest...), err
		}
		if !follow {
			stack = append(stack, child)
			continue
		}
		if strings.HasPrefix(target, "/") {
			stack = stack[:1]
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return stack, nil, nil
}

func joinOrDot(parts []string) string {
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}
