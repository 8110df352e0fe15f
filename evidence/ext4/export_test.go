package ext4

// Exported for the tests of package ext4_test, which compare with the
// kernel and e2fsprogs.

// DirHash is the htree hash of a name.
func DirHash(name []byte, version int, seed [4]uint32) (uint32, bool) {
	return dirHash(name, version, seed)
}

// DxLookup looks a name up through a directory's htree index only.
func (f *FS) DxLookup(dir, name string) (uint64, bool, error) {
	in, _, err := f.resolve("dxlookup", dir)
	if err != nil {
		return 0, false, err
	}
	e, ok, err := f.dxLookup(in, name)
	return uint64(e.ino), ok, err
}
