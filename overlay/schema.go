package overlay

import "github.com/deadnode/deadnode/evidence"

// On-disk schema of overlay layers: the xattr names the kernel's overlayfs
// reads from its layers (fs/overlayfs/overlayfs.h, Documentation/filesystems/
// overlayfs.rst) and the whiteout names of OCI image layers
// (image-spec layer.md).
//
//	layer dir (snapshots/N/fs)            OCI layer tar
//	  name       char 0:0  = whiteout        .wh.name      = whiteout of name
//	  name       reg, size 0, xattr          dir/.wh..wh..opq = dir is opaque
//	             overlay.whiteout = whiteout  (only in a dir with overlay.opaque=x)
//	  dir/       overlay.opaque=y  = opaque
//	  dir/       overlay.redirect  = renamed dir ("/abs/path" or "name")
//	  file       overlay.metacopy  = metadata only, data in a lower layer
const (
	// XattrTrustedPrefix and XattrUserPrefix are the two namespaces the
	// kernel reads overlay attributes from (user.* with -o userxattr).
	XattrTrustedPrefix = "trusted.overlay."
	XattrUserPrefix    = "user.overlay."

	// Suffixes after the prefix.
	XattrOpaque    = "opaque"   // "y": opaque dir; "x": dir holding xattr whiteouts (not opaque)
	XattrRedirect  = "redirect" // renamed dir or metacopy origin
	XattrMetacopy  = "metacopy" // metadata-only copy-up
	XattrWhiteout  = "whiteout" // on a zero-size regular file: xattr whiteout
	XattrOrigin    = "origin"   // file handle of the copy-up origin
	XattrImpure    = "impure"
	XattrNlink     = "nlink"
	XattrUpper     = "upper"
	XattrUUID      = "uuid"
	XattrProtattr  = "protattr"
	xattrEscapeSub = "overlay." // trusted.overlay.overlay.X is the escaped, user-visible trusted.overlay.X

	// OpaqueYes marks an opaque directory, OpaqueXWhiteouts a directory
	// that holds xattr whiteouts.
	OpaqueYes        = 'y'
	OpaqueXWhiteouts = 'x'

	// OCI layer whiteouts.
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh." // AUFS metadata names (.wh..wh.plnk, .wh..wh.aufs): never content

	// MaxRedirect bounds a redirect value (the kernel's PATH_MAX).
	MaxRedirect = 4096
	// MetacopyMinSize and MetacopyMaxSize bound a non-empty metacopy
	// value: struct ovl_metacopy {version, len, flags, digest_algo,
	// digest[64]}.
	MetacopyMinSize = 4
	MetacopyMaxSize = 4 + 64

	// MaxSymlinkHops is the kernel's MAXSYMLINKS.
	MaxSymlinkHops = 40
	// DefaultMaxDepth bounds directory nesting in walks and lookups: the
	// one bound of every walk, evidence.DefaultMaxDepth.
	DefaultMaxDepth = evidence.DefaultMaxDepth
)
