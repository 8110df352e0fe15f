// Package disk opens a disk image as the disk it holds: an io.ReaderAt over
// the virtual disk's bytes, whatever container the examiner was given — a
// raw image, a raw image split into name.001, name.002…, a qcow2 image (v2
// and v3: L1/L2 tables, zlib and zstd compressed clusters, zero clusters,
// a backing file through an opener the caller gives), or a VMDK (a
// monolithicSparse or streamOptimized sparse extent — grain directory and
// tables, deflate-compressed grains with markers, the grain directory in the
// footer — and text descriptors naming FLAT, SPARSE and ZERO extents).
//
// The format is detected by content, never by name; the only exception is a
// split raw image, which only its name can tell (foo.001 with a sibling
// foo.002). Formats known but not read (EWF/E01, VHD, VHDX, VDI, qcow v1,
// VMware COWD, encrypted qcow2, qcow2 extended L2 entries or external data
// files) are refused with an *UnsupportedError saying what to do instead.
//
// Promises: the evidence is opened read-only and never written or locked.
// Every offset, size and count read from a header or table is checked
// against the file's size and against fixed maxima before it is used; a
// malformed structure gives a *vfs.FormatError naming the structure ("qcow2
// L2 table", "vmdk grain directory") and its byte offset in the file, never
// a panic or a hang, and reading a range whose data the file lacks is an
// error rather than zeros. Extent files named by a VMDK descriptor and the
// siblings of a split image are opened through an os.Root on the
// descriptor's directory: an absolute name, a ".." that climbs out or a
// symlink that leads out is refused. Decompressed clusters and grains and
// the L2/grain tables are kept in one LRU cache per image bounded in bytes
// (Options.CacheBytes, 8 MiB by default), so memory stays flat in the
// image's size while sequential reads hit the cache. ReadAt is safe for
// concurrent use.
//
// The lead's pipeline is
//
//	img, err := disk.Open(path, nil)         // Image: io.ReaderAt + Size
//	layout, err := volume.Scan(img, img.Size(), nil)
//	// pick a layout.Volumes[i], then ext4.Open / xfs.Open on its reader
//
// Info describes an image for `disk ls`: its format, virtual size, the host
// files read, cluster or grain size, compression and backing chain.
package disk
