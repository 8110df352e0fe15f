package ext4

import (
	"fmt"
	"sort"
	"time"
)

// journal is the internal jbd2 journal of the filesystem: a circular log,
// kept in an inode, of transactions that each copy whole metadata blocks.
// A descriptor block lists (in tags) the filesystem blocks whose copies
// follow it; a commit block seals the transaction; a revoke block cancels
// older copies of blocks freed since.
type journal struct {
	f        *FS
	in       *inode
	maxlen   uint32 // journal blocks
	first    uint32 // first log block
	last     uint32 // one past the last log block (before any fast-commit area)
	seq      uint32 // s_sequence: the first transaction expected in the log
	start    uint32 // s_start: the first log block of it, 0 when the log is empty
	incompat uint32
	compat   uint32
	uuid     [16]byte
	tagSize  int
	csum     int // 0, 2 or 3: the tag checksum version
	seed     uint32
	jsbOff   int64
}

// maxJournalBlocks bounds the journal length read (jbd2 journals are at
// most 2^30 bytes with 1 KiB blocks or 2^32 with 4 KiB ones in practice).
const maxJournalBlocks = 1 << 22

func (f *FS) openJournal() (*journal, error) {
	if f.sb.journalInum == 0 {
		return nil, formatErr("journal", 0, -1, "the filesystem has no internal journal")
	}
	in, err := f.inode(f.sb.journalInum)
	if err != nil {
		return nil, err
	}
	if !in.isReg() || in.has(flagInlineData) {
		return nil, formatErr("journal", in.ino, in.off, fmt.Sprintf("journal inode has mode %#o, flags %#x", in.mode, in.flags))
	}
	j := &journal{f: f, in: in}
	b, off, err := j.rawBlock(0)
	if err != nil {
		return nil, err
	}
	j.jsbOff = off
	bad := func(o int, format string, args ...any) error {
		return formatErr("journal superblock", in.ino, off+int64(o), fmt.Sprintf(format, args...))
	}
	if m := be.Uint32(b); m != jbdMagic {
		return nil, bad(0, "bad magic %#x", m)
	}
	typ := be.Uint32(b[4:])
	if typ != jbdSuperV1 && typ != jbdSuperV2 {
		return nil, bad(4, "block type %d is not a journal superblock", typ)
	}
	if bs := be.Uint32(b[0xC:]); int64(bs) != f.bs {
		return nil, bad(0xC, "journal block size %d differs from the filesystem's %d", bs, f.bs)
	}
	j.maxlen = be.Uint32(b[0x10:])
	j.first = be.Uint32(b[0x14:])
	j.seq = be.Uint32(b[0x18:])
	j.start = be.Uint32(b[0x1C:])
	fileBlocks := in.size / uint64(f.bs)
	if j.maxlen < 2 || uint64(j.maxlen) > fileBlocks || j.maxlen > maxJournalBlocks || uint64(j.maxlen) > f.sb.blocksCount || uint64(j.maxlen) > f.deviceBlocks() {
		return nil, bad(0x10, "journal of %d blocks (the inode holds %d; at most %d read)", j.maxlen, fileBlocks, maxJournalBlocks)
	}
	if j.first == 0 || j.first >= j.maxlen {
		return nil, bad(0x14, "first log block %d of %d", j.first, j.maxlen)
	}
	if j.start != 0 && (j.start < j.first || j.start >= j.maxlen) {
		return nil, bad(0x1C, "log start %d outside %d..%d", j.start, j.first, j.maxlen)
	}
	j.last = j.maxlen
	if typ == jbdSuperV2 {
		j.compat = be.Uint32(b[0x24:])
		j.incompat = be.Uint32(b[0x28:])
		copy(j.uuid[:], b[0x30:0x40])
		if j.incompat&jbdIncompatFC != 0 {
			fc := be.Uint32(b[0x54:])
			if fc == 0 {
				fc = 256 // JBD2_DEFAULT_FAST_COMMIT_BLOCKS
			}
			if fc < j.maxlen-j.first {
				j.last = j.maxlen - fc
			}
		}
	}
	switch {
	case j.incompat&jbdIncompatCsumV3 != 0:
		j.tagSize, j.csum = 16, 3
	default:
		j.tagSize = 12
		if j.incompat&jbdIncompatCsumV2 != 0 {
			j.tagSize += 2
			j.csum = 2
		}
		if j.incompat&jbdIncompat64bit == 0 {
			j.tagSize -= 4
		}
	}
	if j.csum != 0 {
		j.seed = crc32c(^uint32(0), j.uuid[:])
	}
	return j, nil
}

// rawBlock reads journal block n (not through the block cache: a log scan
// reads each block once) and returns it with its byte offset.
func (j *journal) rawBlock(n uint32) ([]byte, int64, error) {
	r, err := j.f.mapBlock(j.in, uint64(n), nil)
	if err != nil {
		return nil, -1, err
	}
	if r.phys == 0 || r.uninit {
		return nil, -1, formatErr("journal", j.in.ino, -1, fmt.Sprintf("journal block %d is not mapped", n))
	}
	b := make([]byte, j.f.bs)
	off := int64(r.phys) * j.f.bs
	if err := j.f.readDevice(b, off, j.in.ino); err != nil {
		return nil, off, err
	}
	return b, off, nil
}

// physOf returns the physical block holding journal block n.
func (j *journal) physOf(n uint32) (uint64, error) {
	r, err := j.f.mapBlock(j.in, uint64(n), nil)
	if err != nil {
		return 0, err
	}
	if r.phys == 0 || r.uninit {
		return 0, formatErr("journal", j.in.ino, -1, fmt.Sprintf("journal block %d is not mapped", n))
	}
	return r.phys, nil
}

// next returns the log block after n, wrapping at the end of the log.
func (j *journal) next(n uint32) uint32 {
	n++
	if n >= j.last {
		n = j.first
	}
	return n
}

// jtag is one tag of a descriptor block: the filesystem block whose copy
// sits in the log, and how it was written.
type jtag struct {
	fsblk   uint64
	flags   uint32
	csum    uint32
	hasCsum bool
}

// parseTags reads the tags of a descriptor block.
func (j *journal) parseTags(b []byte) []jtag {
	end := len(b)
	if j.csum != 0 {
		end -= 4 // jbd2_journal_block_tail
	}
	var out []jtag
	for p := 12; p+j.tagSize <= end; {
		t := b[p:]
		var tg jtag
		tg.fsblk = uint64(be.Uint32(t))
		if j.csum == 3 {
			tg.flags = be.Uint32(t[4:])
			if j.incompat&jbdIncompat64bit != 0 {
				tg.fsblk |= uint64(be.Uint32(t[8:])) << 32
			}
			tg.csum, tg.hasCsum = be.Uint32(t[12:]), true
		} else {
			tg.flags = uint32(be.Uint16(t[6:]))
			if j.incompat&jbdIncompat64bit != 0 {
				tg.fsblk |= uint64(be.Uint32(t[8:])) << 32
			}
			if j.csum == 2 {
				tg.csum, tg.hasCsum = uint32(be.Uint16(t[4:])), true
			}
		}
		out = append(out, tg)
		p += j.tagSize
		if tg.flags&jbdFlagSameUUID == 0 {
			p += 16
		}
		if tg.flags&jbdFlagLastTag != 0 {
			break
		}
	}
	return out
}

// tagCsumOK verifies a tag's checksum against the logged block (as it is
// in the log, escaped or not).
func (j *journal) tagCsumOK(tg jtag, seq uint32, data []byte) bool {
	if !tg.hasCsum {
		return true
	}
	var s [4]byte
	be.PutUint32(s[:], seq)
	c := crc32c(j.seed, s[:])
	c = crc32c(c, data)
	if j.csum == 2 {
		return c&0xFFFF == tg.csum
	}
	return c == tg.csum
}

func (j *journal) header(b []byte) (typ, seq uint32, ok bool) {
	if len(b) < 12 || be.Uint32(b) != jbdMagic {
		return 0, 0, false
	}
	return be.Uint32(b[4:]), be.Uint32(b[8:]), true
}

// replayEntry is where the newest committed copy of a block is.
type replayEntry struct {
	phys    uint64
	escaped bool // the copy's first four bytes were the journal magic, zeroed in the log
}

// replayJournal reads the log as jbd2 recovery does — from s_start,
// transaction s_sequence on, while each block carries the expected
// sequence — and maps every block of each committed transaction to its
// newest copy, leaving out revoked ones. Nothing is written: reads go
// through the map (readBlock, readData).
func (f *FS) replayJournal() error {
	j, err := f.openJournal()
	if err != nil {
		return err
	}
	if j.start == 0 {
		return nil
	}
	if j.incompat&jbdIncompatFC != 0 {
		f.warnf("ext4 journal: fast-commit blocks are not replayed; changes made through fast commits since the last full commit are not shown")
	}
	type pending struct {
		tag jtag
		pos uint32
		seq uint32
	}
	var (
		txn      []pending
		commits  []pending
		revoked  = map[uint64]uint32{} // block -> newest committed revoking transaction
		txnRev   = map[uint64]uint32{} // the revokes of the transaction being read
		seq      = j.seq
		pos      = j.start
		steps    uint32
		nTxn     int
		badCsums int
	)
	for steps < j.last-j.first {
		b, _, err := j.rawBlock(pos)
		if err != nil {
			return err
		}
		typ, s, ok := j.header(b)
		if !ok || s != seq {
			break
		}
		steps++
		switch typ {
		case jbdDescriptor:
			for _, tg := range j.parseTags(b) {
				pos = j.next(pos)
				steps++
				if tg.hasCsum {
					d, _, err := j.rawBlock(pos)
					if err != nil {
						return err
					}
					if !j.tagCsumOK(tg, seq, d) {
						badCsums++
						continue
					}
				}
				txn = append(txn, pending{tag: tg, pos: pos, seq: seq})
			}
		case jbdCommit:
			commits = append(commits, txn...)
			txn = txn[:0]
			// A transaction's revokes count once it commits, as jbd2's
			// recovery takes them only from committed transactions.
			for blk, s := range txnRev {
				if old, ok := revoked[blk]; !ok || int32(s-old) > 0 {
					revoked[blk] = s
				}
			}
			clear(txnRev)
			seq++
			nTxn++
		case jbdRevoke:
			used := int(be.Uint32(b[12:]))
			rsize := 4
			if j.incompat&jbdIncompat64bit != 0 {
				rsize = 8
			}
			if used > len(b) {
				used = len(b)
			}
			for p := 16; p+rsize <= used; p += rsize {
				var blk uint64
				if rsize == 8 {
					blk = be.Uint64(b[p:])
				} else {
					blk = uint64(be.Uint32(b[p:]))
				}
				txnRev[blk] = seq
			}
		default:
			steps = j.last // an unknown block type ends the log
		}
		pos = j.next(pos)
	}
	if len(commits) == 0 {
		return nil
	}
	// What was read to find the journal predates the replay.
	f.blocks.Reset()
	f.inodes.Reset()
	f.groups.Reset()
	f.replay = map[uint64]uint64{}
	f.escaped = map[uint64]bool{}
	for _, c := range commits {
		if r, ok := revoked[c.tag.fsblk]; ok && int32(r-c.seq) >= 0 {
			continue
		}
		if c.tag.fsblk >= f.sb.blocksCount {
			continue
		}
		phys, err := j.physOf(c.pos)
		if err != nil {
			return err
		}
		f.replay[c.tag.fsblk] = phys
		if c.tag.flags&jbdFlagEscape != 0 {
			f.escaped[c.tag.fsblk] = true
		} else {
			delete(f.escaped, c.tag.fsblk)
		}
	}
	// A logged superblock is newer (free counts, times); keep the
	// geometry read from disk.
	sbBlk := uint64(superblockOffset) / uint64(f.bs)
	if _, ok := f.replay[sbBlk]; ok {
		if b, err := f.readBlock(sbBlk, "superblock", 0); err == nil {
			o := superblockOffset % f.bs
			if nsb, err := parseSuperblock(b[o:o+superblockSize], f.size); err == nil &&
				nsb.blocksCount == f.sb.blocksCount && nsb.inodesCount == f.sb.inodesCount && nsb.blockSize == f.sb.blockSize &&
				nsb.incompat == f.sb.incompat && nsb.descSize == f.sb.descSize {
				f.sb = nsb
			}
		}
	}
	f.warnf("ext4 journal: the filesystem was not cleanly unmounted; %d committed transactions (%d blocks) from the journal are applied in memory, as the kernel would on mount", nTxn, len(f.replay))
	if badCsums > 0 {
		f.warnf("ext4 journal: %d logged blocks failed their checksum and were not applied", badCsums)
	}
	return nil
}

// jcopy is an older copy of a filesystem block found in the journal.
type jcopy struct {
	pos     uint32 // log block holding it
	phys    uint64 // its physical block
	seq     uint32 // transaction
	escaped bool
}

// journalScan is the index of every block copy the log still holds,
// whatever its age: the material for recovering deleted files.
type journalScan struct {
	j       *journal
	copies  map[uint64][]jcopy   // filesystem block -> copies, oldest transaction first
	commits map[uint32]time.Time // transaction -> commit time
	descs   int
	stale   int // copies overwritten by a later transaction, left out
	badCsum int
}

// maxJournalCopies bounds the copies indexed.
const maxJournalCopies = 1 << 22

// scanJournal reads the whole log area, block by block, and indexes every
// descriptor's copies. A copy is kept only while no later transaction's
// descriptor claims its log block (the log wraps and restarts) and, where
// the journal has checksums, while its checksum matches.
func (f *FS) scanJournal() (*journalScan, error) {
	f.jmu.Lock()
	defer f.jmu.Unlock()
	if f.journal != nil || f.jerr != nil {
		return f.journal, f.jerr
	}
	f.journal, f.jerr = f.scanJournalLocked()
	return f.journal, f.jerr
}

func (f *FS) scanJournalLocked() (*journalScan, error) {
	j, err := f.openJournal()
	if err != nil {
		return nil, err
	}
	js := &journalScan{j: j, copies: map[uint64][]jcopy{}, commits: map[uint32]time.Time{}}
	type claim struct {
		seq  uint32
		tag  jtag
		desc uint32
	}
	owner := map[uint32]claim{} // log block -> the newest descriptor claiming it
	headers := map[uint32]bool{}
	for pos := j.first; pos < j.last; pos++ {
		b, _, err := j.rawBlock(pos)
		if err != nil {
			f.warnf("ext4 journal: log block %d: %v", pos, err)
			continue
		}
		typ, seq, ok := j.header(b)
		if !ok {
			continue
		}
		headers[pos] = true
		switch typ {
		case jbdDescriptor:
			js.descs++
			p := pos
			for _, tg := range j.parseTags(b) {
				p = j.next(p)
				if c, ok := owner[p]; !ok || int32(seq-c.seq) > 0 {
					owner[p] = claim{seq: seq, tag: tg, desc: pos}
				}
			}
		case jbdCommit:
			if len(b) >= 0x3C {
				sec := int64(be.Uint64(b[0x30:]))
				nsec := int64(be.Uint32(b[0x38:]))
				if sec > 0 && nsec < 1e9 {
					js.commits[seq] = time.Unix(sec, nsec).UTC()
				}
			}
		}
	}
	positions := make([]uint32, 0, len(owner))
	for p := range owner {
		positions = append(positions, p)
	}
	sort.Slice(positions, func(a, b int) bool { return positions[a] < positions[b] })
	n := 0
	for _, p := range positions {
		c := owner[p]
		if headers[p] {
			js.stale++ // a header sits where this descriptor's data was: overwritten
			continue
		}
		if c.tag.fsblk == 0 || c.tag.fsblk >= f.sb.blocksCount {
			continue
		}
		if c.tag.hasCsum {
			d, _, err := j.rawBlock(p)
			if err != nil || !j.tagCsumOK(c.tag, c.seq, d) {
				js.badCsum++
				continue
			}
		}
		phys, err := j.physOf(p)
		if err != nil {
			continue
		}
		if n >= maxJournalCopies {
			break
		}
		js.copies[c.tag.fsblk] = append(js.copies[c.tag.fsblk], jcopy{pos: p, phys: phys, seq: c.seq, escaped: c.tag.flags&jbdFlagEscape != 0})
		n++
	}
	for b, cs := range js.copies {
		sort.Slice(cs, func(x, y int) bool { return int32(cs[x].seq-cs[y].seq) < 0 })
		js.copies[b] = cs
	}
	return js, nil
}

// readCopy returns the content of a journal copy, its magic restored when
// it was escaped.
func (js *journalScan) readCopy(c jcopy) ([]byte, error) {
	f := js.j.f
	b := make([]byte, f.bs)
	if err := f.readDevice(b, int64(c.phys)*f.bs, js.j.in.ino); err != nil {
		return nil, err
	}
	if c.escaped {
		be.PutUint32(b, jbdMagic)
	}
	return b, nil
}

// reader returns a block reader that, for each block, prefers the newest
// journal copy from transaction seq or before, and falls back to the
// block on disk: the view of metadata as of that transaction, as far as
// the journal kept it.
func (js *journalScan) reader(seq uint32) blockReader {
	f := js.j.f
	return func(b uint64, what string, ino uint32) ([]byte, error) {
		cs := js.copies[b]
		for i := len(cs) - 1; i >= 0; i-- {
			if int32(cs[i].seq-seq) <= 0 {
				return js.readCopy(cs[i])
			}
		}
		return f.readBlock(b, what, ino)
	}
}
