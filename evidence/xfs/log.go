package xfs

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"
)

// The XFS log (an internal log: sb_logblocks blocks from sb_logstart) is a
// ring of log records in 512-byte basic blocks (BB):
//
//	record:  header BB (+ extended header BBs) | data BBs
//	header:  magic 0xFEEDBABE, cycle, version, len, lsn (cycle<<32|BB),
//	         ..., h_cycle_data[64], fmt, uuid, size
//	data:    the first 4 bytes of every data BB are replaced by the cycle
//	         number; the originals are kept in the header(s)
//	ops:     {tid, len, clientid, flags} (big-endian) + len bytes
//	transactions: a TRAN header, then items: a format region whose second
//	         u16 is the item's region count, then its regions (host order)
//
// An inode item carries the inode core and, when logged, its data fork:
// older copies of inodes that the filesystem has since freed.
const (
	logMagic       = 0xFEEDBABE
	logHdrCycle    = 32768
	logCycleSlots  = logHdrCycle / 512
	logMaxRecord   = 256 << 10
	logHdrCycleOff = 44
	logHdrFmt      = 300
	logHdrUUID     = 304
	logHdrSize     = 320
	logFmtLE       = 1

	logClientTrans = 0x69
	logClientLog   = 0xaa
	logOpStart     = 0x01
	logOpCommit    = 0x02
	logOpContinue  = 0x04
	logOpWasCont   = 0x08
	logOpEnd       = 0x10
	logOpUnmount   = 0x20
	logTransMagic  = 0x5452414e // "TRAN"
	logTransHdr    = 16

	liInode    = 0x123b
	ilogCore   = 0x001
	ilogDData  = 0x002
	ilogDExt   = 0x004
	ilogDBroot = 0x008

	logMaxRegions   = 1024
	logMaxItemBytes = 1 << 20
	logMaxOpenTrans = 4096
	logMaxCopies    = 1 << 18
)

// logCopy is what the log says of one incarnation (inode number and
// generation) of a regular file.
type logCopy struct {
	ino64      uint64
	core       *inode // latest copy with data (mode set, blocks mapped)
	coreLSN    uint64
	firstLSN   uint64 // the first copy of this incarnation
	lastLSN    uint64 // the last
	fork       []byte // latest logged data fork (on-disk format)
	forkFormat uint8
	forkExtent uint64 // extent count of the core logged with it
	unlinked   time.Time
}

func newLogScan() *logScan {
	return &logScan{copies: map[[2]uint64]*logCopy{}, latest: map[uint64]*inode{}, names: map[uint64][]logName{}}
}

// maxNamesPerInode bounds the names kept for one inode number.
const maxNamesPerInode = 8

// addName records that directory dir named inode e name at lsn.
func (ls *logScan) addName(e, dir uint64, name string, lsn uint64) {
	l := ls.names[e]
	for i := range l {
		if l[i].dir == dir && l[i].name == name {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) >= maxNamesPerInode {
		l = l[1:]
	}
	if len(l) == 0 && len(ls.names) >= logMaxCopies {
		return
	}
	ls.names[e] = append(l, logName{dir: dir, name: name, lsn: lsn})
}

// logName is a directory entry seen in a logged shortform directory.
type logName struct {
	dir  uint64
	name string
	lsn  uint64
}

// logScan is what a pass over the log found.
type logScan struct {
	copies  map[[2]uint64]*logCopy // key: inode number, generation
	latest  map[uint64]*inode      // latest copy with a mode, any type
	names   map[uint64][]logName   // inode -> the names it had in shortform directories (latest last)
	records int
	torn    int
}

type logRec struct {
	bb    uint64
	lsn   uint64
	cycle uint32
	hblks uint64
	dlen  int
}

type logItem struct {
	regions [][]byte
	total   int
	bytes   int
	skip    bool
}

type logTrans struct {
	lsn     uint64 // of the record the transaction starts in: its items' time
	hdr     []byte
	hdrDone bool
	item    *logItem
}

// scanLog reads the internal log and collects the inode copies it holds.
// Records are taken in LSN order; a record whose data blocks do not all
// carry its cycle number (overwritten since) is left out.
func (f *FS) scanLog(ctx context.Context) (*logScan, error) {
	ls := newLogScan()
	if f.logStart == 0 || f.logBlocks == 0 {
		f.warnf("xfs log: external or absent log, not read")
		return ls, nil
	}
	base, ok := f.extentPos(f.logStart, f.logBlocks)
	if !ok {
		return ls, ferr(lc("xfs log"), -1, "log of %d blocks at block %d is outside the filesystem", f.logBlocks, f.logStart)
	}
	nbb := f.logBlocks << (f.blockLog - 9)
	lg := &logReader{f: f, base: base, nbb: nbb}
	var recs []logRec
	chunk := make([]byte, 1<<20)
	for bb := uint64(0); bb < nbb; {
		if err := ctx.Err(); err != nil {
			return ls, err
		}
		n := min(uint64(len(chunk)/512), nbb-bb)
		if err := f.readDev(chunk[:n*512], base+int64(bb*512), lc("xfs log")); err != nil {
			return ls, err
		}
		for i := uint64(0); i < n; i++ {
			h := chunk[i*512 : (i+1)*512]
			if be.Uint32(h) != logMagic {
				continue
			}
			if r, ok := f.logHeader(h, bb+i, nbb); ok {
				recs = append(recs, r)
			}
		}
		bb += n
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].lsn < recs[j].lsn })
	trans := map[uint32]*logTrans{}
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return ls, err
		}
		data, order, ok, err := lg.record(r)
		if err != nil {
			return ls, err
		}
		if !ok {
			ls.torn++
			continue
		}
		ls.records++
		ls.ops(data, order, r.lsn, trans, f)
	}
	return ls, nil
}

// logHeader checks a record header found at bb.
func (f *FS) logHeader(h []byte, bb, nbb uint64) (logRec, bool) {
	cycle := be.Uint32(h[4:])
	ver := be.Uint32(h[8:])
	dlen := int(be.Uint32(h[12:]))
	lsn := be.Uint64(h[16:])
	if ver != 1 && ver != 2 || cycle == 0 || lsn != uint64(cycle)<<32|bb {
		return logRec{}, false
	}
	if dlen <= 0 || dlen > logMaxRecord {
		return logRec{}, false
	}
	var uuid [16]byte
	copy(uuid[:], h[logHdrUUID:])
	if uuid != f.uuid {
		return logRec{}, false
	}
	hblks := uint64(1)
	if size := be.Uint32(h[logHdrSize:]); ver == 2 && size > logHdrCycle {
		if size > logMaxRecord {
			return logRec{}, false
		}
		hblks = (uint64(size) + logHdrCycle - 1) / logHdrCycle
	}
	if hblks+uint64(dlen+511)/512 > nbb {
		return logRec{}, false
	}
	return logRec{bb: bb, lsn: lsn, cycle: cycle, hblks: hblks, dlen: dlen}, true
}

type logReader struct {
	f    *FS
	base int64
	nbb  uint64
	buf  []byte
}

// read reads n BBs of the log from bb, wrapping at its end.
func (lg *logReader) read(bb, n uint64, p []byte) error {
	for n > 0 {
		bb %= lg.nbb
		run := min(n, lg.nbb-bb)
		if err := lg.f.readDev(p[:run*512], lg.base+int64(bb*512), lc("xfs log")); err != nil {
			return err
		}
		p, bb, n = p[run*512:], bb+run, n-run
	}
	return nil
}

// record returns the data of a record with the cycle stamps undone, and
// the byte order of its items; ok is false when the record was partly
// overwritten.
func (lg *logReader) record(r logRec) ([]byte, binary.ByteOrder, bool, error) {
	dbb := uint64(r.dlen+511) / 512
	need := int((r.hblks + dbb) * 512)
	if cap(lg.buf) < need {
		lg.buf = make([]byte, need)
	}
	b := lg.buf[:need]
	if err := lg.read(r.bb, r.hblks+dbb, b); err != nil {
		return nil, nil, false, err
	}
	hdr, data := b[:r.hblks*512], b[r.hblks*512:]
	for i := uint64(0); i < dbb; i++ {
		d := data[i*512:]
		if be.Uint32(d) != r.cycle {
			return nil, nil, false, nil
		}
		j, k := i/logCycleSlots, i%logCycleSlots
		var orig []byte
		if j == 0 {
			orig = hdr[logHdrCycleOff+4*k:]
		} else {
			if j >= r.hblks {
				return nil, nil, false, nil
			}
			orig = hdr[j*512+4+4*k:]
		}
		copy(d[:4], orig[:4])
	}
	var order binary.ByteOrder = binary.BigEndian
	if be.Uint32(hdr[logHdrFmt:]) == logFmtLE {
		order = binary.LittleEndian
	}
	return data[:r.dlen], order, true, nil
}

// ops replays the operations of one record into the open transactions.
func (ls *logScan) ops(d []byte, order binary.ByteOrder, lsn uint64, trans map[uint32]*logTrans, f *FS) {
	for p := 0; p+12 <= len(d); {
		tid := be.Uint32(d[p:])
		olen := int(be.Uint32(d[p+4:]))
		client, flags := d[p+8], d[p+9]
		p += 12
		if olen < 0 || olen > len(d)-p {
			return
		}
		payload := d[p : p+olen]
		p += olen
		if client != logClientTrans && client != logClientLog {
			return
		}
		t := trans[tid]
		if t == nil {
			if flags&logOpStart != 0 && len(trans) < logMaxOpenTrans {
				trans[tid] = &logTrans{lsn: lsn}
			}
			continue
		}
		flags &^= logOpEnd
		if flags&logOpWasCont != 0 {
			flags &^= logOpContinue
		}
		switch flags {
		case 0, logOpContinue:
			ls.addRegion(t, payload, order, f)
		case logOpWasCont:
			ls.contRegion(t, payload)
		case logOpCommit:
			ls.finishItem(t, order, f)
			delete(trans, tid)
		default:
			if flags&logOpUnmount != 0 {
				delete(trans, tid)
			}
		}
	}
}

func (ls *logScan) addRegion(t *logTrans, payload []byte, order binary.ByteOrder, f *FS) {
	if !t.hdrDone {
		t.hdr = append(t.hdr, payload...)
		if len(t.hdr) >= logTransHdr {
			t.hdrDone = true
		}
		return
	}
	if t.item == nil || len(t.item.regions) >= t.item.total {
		ls.finishItem(t, order, f)
		it := &logItem{}
		if len(payload) < 4 {
			it.skip, it.total = true, 1
		} else {
			it.total = int(order.Uint16(payload[2:]))
			if it.total < 1 || it.total > logMaxRegions {
				it.skip, it.total = true, logMaxRegions
			}
			if order.Uint16(payload) != liInode {
				it.skip = true
			}
		}
		t.item = it
	}
	it := t.item
	if it.skip {
		it.regions = append(it.regions, nil)
		return
	}
	it.bytes += len(payload)
	if it.bytes > logMaxItemBytes {
		it.skip = true
		return
	}
	it.regions = append(it.regions, append([]byte(nil), payload...))
}

func (ls *logScan) contRegion(t *logTrans, payload []byte) {
	if !t.hdrDone {
		t.hdr = append(t.hdr, payload...)
		t.hdrDone = len(t.hdr) >= logTransHdr
		return
	}
	it := t.item
	if it == nil || it.skip || len(it.regions) == 0 {
		return
	}
	it.bytes += len(payload)
	if it.bytes > logMaxItemBytes {
		it.skip = true
		return
	}
	last := len(it.regions) - 1
	it.regions[last] = append(it.regions[last], payload...)
}

// finishItem takes what matters from a complete inode item.
func (ls *logScan) finishItem(t *logTrans, order binary.ByteOrder, f *FS) {
	lsn := t.lsn
	it := t.item
	t.item = nil
	if it == nil || it.skip || len(it.regions) < 2 {
		return
	}
	fmtr, core := it.regions[0], it.regions[1]
	var fields uint32
	var ino uint64
	switch len(fmtr) {
	case 56:
		fields, ino = order.Uint32(fmtr[4:]), order.Uint64(fmtr[16:])
	case 52:
		fields, ino = order.Uint32(fmtr[4:]), order.Uint64(fmtr[12:])
	default:
		return
	}
	if fields&ilogCore == 0 || len(core) < dinodeV3Core || order.Uint16(core) != dinodeMagic || core[diVersion] != 3 {
		return
	}
	ip := &inode{ino: ino, pos: -1}
	parseCore(ip, core, order)
	if ip.dino != ino {
		return
	}
	var dfork []byte
	if fields&(ilogDData|ilogDExt|ilogDBroot) != 0 && len(it.regions) > 2 {
		dfork = it.regions[2]
	}
	if ip.mode != 0 && len(ls.latest) < logMaxCopies {
		ls.latest[ino] = ip
	}
	switch ip.typ() {
	case sIFREG:
		key := [2]uint64{ino, uint64(ip.gen)}
		c := ls.copies[key]
		if c == nil {
			if len(ls.copies) >= logMaxCopies {
				return
			}
			c = &logCopy{ino64: ino, firstLSN: lsn}
			ls.copies[key] = c
		}
		c.lastLSN = lsn
		if ip.mode != 0 && ip.size > 0 && (ip.nextents > 0 || ip.format == fmtBtree) {
			c.core, c.coreLSN = ip, lsn
		}
		if dfork != nil && fields&(ilogDExt|ilogDBroot) != 0 && (ip.format == fmtExtents || ip.format == fmtBtree) {
			c.fork, c.forkFormat, c.forkExtent = dfork, ip.format, ip.nextents
		}
		if ip.mode != 0 && ip.nlink == 0 {
			c.unlinked = ip.ctime
		}
	case sIFDIR:
		if ip.format != fmtLocal || dfork == nil || fields&ilogDData == 0 || ip.size > int64(len(dfork)) {
			return
		}
		dir := *ip
		dir.dfork = dfork
		f.sfEach(&dir, func(name []byte, e uint64, _ uint8) error {
			ls.addName(e, ino, string(name), lsn)
			return nil
		})
	}
}

// forkFromLog builds a block map from a logged data fork: extent records
// as on disk, or a btree root as the kernel keeps it in memory (a long
// btree block header, then keys and pointers sized to the buffer), turned
// into the on-disk root layout.
func (f *FS) forkFromLog(c *logCopy) (*fork, error) {
	ip := *c.core
	ip.pos = -1
	fk := &fork{f: f, ip: &ip, name: "logged data fork", base: -1, format: c.forkFormat}
	what := ip.what(fk.name)
	switch c.forkFormat {
	case fmtExtents:
		n := min(c.forkExtent, uint64(len(c.fork)/16))
		ext, err := fk.decodeRecs(c.fork[:n*16], -1, 0, maxFileOff)
		if err != nil {
			return nil, err
		}
		fk.ext = ext
	case fmtBtree:
		b := c.fork
		if len(b) < lblockCRCLen+16 || be.Uint32(b) != bmbtMagic {
			return nil, ferr(what, -1, "logged btree root without a bmbt header")
		}
		level, n := int(be.Uint16(b[4:])), int(be.Uint16(b[6:]))
		maxrecs := (len(b) - lblockCRCLen) / 16
		if level < 1 || level > maxBmbtLevels || n < 1 || n > maxrecs {
			return nil, ferr(what, -1, "logged btree root of level %d with %d records", level, n)
		}
		root := make([]byte, 4+16*n)
		be.PutUint16(root, uint16(level))
		be.PutUint16(root[2:], uint16(n))
		copy(root[4:], b[lblockCRCLen:lblockCRCLen+8*n])
		copy(root[4+8*n:], b[lblockCRCLen+8*maxrecs:lblockCRCLen+8*maxrecs+8*n])
		fk.root, fk.level = root, level
	default:
		return nil, ferr(what, -1, "format %d", c.forkFormat)
	}
	return fk, nil
}

func (r logRec) String() string {
	return fmt.Sprintf("log record at BB %d (lsn %d/%d)", r.bb, r.lsn>>32, uint32(r.lsn))
}
