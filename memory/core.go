package memory

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
)

// ELF constants of a Linux core file (elf.h, linux/elfcore.h).
const (
	etCore     = 4
	emX86_64   = 62
	ptLoad     = 1
	ptNote     = 4
	pfX        = 1
	pfW        = 2
	pfR        = 4
	ntPrstatus = 1
	ntPrfpreg  = 2
	ntPrpsinfo = 3
	ntAuxv     = 6
	ntFile     = 0x46494c45
	ehdrSize   = 64
	phdrSize   = 56

	prstatusSize = 336 // struct elf_prstatus on x86-64
	prpsinfoSize = 136 // struct elf_prpsinfo on x86-64
	fpregsSize   = 512 // struct user_fpregs_struct
)

// CoreInfo says what WriteCore wrote.
type CoreInfo struct {
	PID     uint32 `json:"pid"`
	Threads int    `json:"threads"`
	Loads   int    `json:"loads"`
	// NotCaptured lists the mapped ranges the checkpoint did not capture.
	// The core has no PT_LOAD for them, so a debugger says it cannot
	// access them (a PT_LOAD with no file bytes would read as zeros in
	// gdb, and uncaptured is not zero).
	NotCaptured []Range `json:"not_captured,omitempty"`
	// Omitted are the zero ranges past CoreOptions.MaxHoles: PT_LOADs
	// with no file bytes, which gdb reads as the zeros they are; and the
	// ranges of content past CoreOptions.MaxData (reason past_max_data),
	// which have no PT_LOAD, so that gdb says it cannot access them
	// rather than show zeros.
	Omitted
	Size int64 `json:"size"`
}

// CoreOptions tune WriteCore: the bounds of DumpOptions, but for MaxHoles
// whose default is MaxHolesLimit (holes of a core cost no time, as they
// are not hashed). A zero range past the bound gets no file bytes, content
// past MaxData no PT_LOAD; both are listed in CoreInfo.Skipped.
type CoreOptions = DumpOptions

// What the file holds for one PT_LOAD.
const (
	loadBytes       = iota // the bytes (zero ranges as holes)
	loadNotCaptured        // nothing: the checkpoint did not capture them
	loadZeroSkipped        // nothing: zero, past CoreOptions.MaxHoles
	loadDataSkipped        // no PT_LOAD: content past CoreOptions.MaxData
)

type load struct {
	start, end uint64
	flags      uint32
	kind       int
	prov       Provenance // of a loadDataSkipped range
	off        int64
}

// WriteCore writes the space as an ELF core file (x86-64): a PT_LOAD per
// mapping, split where bytes are not captured (those have none), and
// the notes NT_PRSTATUS (and NT_PRFPREG) per thread from the core images'
// registers, NT_PRPSINFO, NT_AUXV and NT_FILE. Bytes are streamed to w;
// memory does not grow with the process. It stops with ctx.Err() when ctx
// is cancelled.
func (r *Reader) WriteCore(ctx context.Context, s *Space, w io.Writer, opt *CoreOptions) (*CoreInfo, error) {
	p := s.Process
	if p == nil {
		return nil, errors.New("no process")
	}
	var threads []*checkpoint.Registers
	for _, t := range p.Threads {
		regs, err := r.CP.Registers(t.TID)
		if err != nil {
			return nil, err
		}
		if regs.X86 == nil {
			return nil, fmt.Errorf("thread %d: %s registers; only x86-64 cores are written", t.TID, strings.ToUpper(regs.Arch))
		}
		threads = append(threads, regs)
	}
	if len(threads) == 0 {
		return nil, fmt.Errorf("task %d has no threads", p.PID)
	}
	// Notes.
	var notes []byte
	for _, t := range threads {
		notes = appendNote(notes, ntPrstatus, prstatus(p, t))
		if fp := fpregs(t.X86FP); fp != nil {
			notes = appendNote(notes, ntPrfpreg, fp)
		}
		if t == threads[0] { // the process-wide notes once, after the leader's status, as the kernel writes them
			notes = appendNote(notes, ntPrpsinfo, prpsinfo(p))
			if a := auxv(p.Auxv); len(a) > 0 {
				notes = appendNote(notes, ntAuxv, a)
			}
			notes = appendNote(notes, ntFile, ntFileDesc(s))
		}
	}
	// Loads.
	var loads []load
	holeBound, dataBound := opt.limits(MaxHolesLimit)
	budget, holes, dataLeft := uint64(holeBound), uint64(0), uint64(dataBound)
	for _, m := range s.Mappings {
		var fl uint32
		if m.Prot&1 != 0 {
			fl |= pfR
		}
		if m.Prot&2 != 0 {
			fl |= pfW
		}
		if m.Prot&4 != 0 {
			fl |= pfX
		}
		for _, rg := range s.Regions(m.Start, m.End) {
			k := loadBytes
			switch rg.Provenance {
			case NotCaptured:
				k = loadNotCaptured
			case Zero:
				if n := rg.End - rg.Start; n <= budget-holes {
					holes += n
				} else {
					k = loadZeroSkipped
				}
			default:
				if n := rg.End - rg.Start; n <= dataLeft {
					dataLeft -= n
				} else {
					k = loadDataSkipped
				}
			}
			if n := len(loads); n > 0 && loads[n-1].end == rg.Start && loads[n-1].kind == k && k != loadDataSkipped && loads[n-1].start >= m.Start {
				loads[n-1].end = rg.End
				continue
			}
			loads = append(loads, load{start: rg.Start, end: rg.End, flags: fl, kind: k, prov: rg.Provenance})
		}
	}
	info := &CoreInfo{PID: p.PID, Threads: len(threads)}
	kept := loads[:0]
	zeros := skipTally{what: "zero memory", fate: "have no file bytes (gdb reads them as the zeros they are)", of: "holes", bound: holeBound}
	data := skipTally{what: "content", fate: "have no PT_LOAD (gdb cannot access them)", of: "content", bound: dataBound}
	for _, l := range loads {
		switch l.kind {
		case loadNotCaptured:
			info.NotCaptured = append(info.NotCaptured, Range{Start: l.start, End: l.end, Provenance: NotCaptured})
			continue
		case loadDataSkipped:
			r := Range{Start: l.start, End: l.end, Provenance: l.prov, Reason: ReasonMaxData}
			info.Skipped = append(info.Skipped, r)
			data.add(r)
			continue
		case loadZeroSkipped: // a PT_LOAD with no file bytes
			r := Range{Start: l.start, End: l.end, Provenance: Zero}
			info.Skipped = append(info.Skipped, r)
			zeros.add(r)
		}
		kept = append(kept, l)
	}
	loads = kept
	if len(loads)+1 >= 0xffff {
		return nil, fmt.Errorf("%d program headers: too many for a core file", len(loads)+1)
	}
	info.Loads = len(loads)
	phnum := len(loads) + 1
	noteOff := int64(ehdrSize + phdrSize*phnum)
	dataOff := (noteOff + int64(len(notes)) + pageSize - 1) &^ (pageSize - 1)
	off := dataOff
	for i := range loads {
		l := &loads[i]
		l.off = off
		if l.kind == loadBytes {
			off += int64(l.end - l.start) // the bytes and holes: at most MaxData plus MaxHolesLimit
		}
	}
	info.Note = skipNote(&zeros, &data)
	info.Size = off

	bw := bufio.NewWriterSize(w, 1<<20)
	var hdr [ehdrSize]byte
	copy(hdr[:], "\x7fELF\x02\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(hdr[16:], etCore)
	le.PutUint16(hdr[18:], emX86_64)
	le.PutUint32(hdr[20:], 1)
	le.PutUint64(hdr[32:], ehdrSize) // e_phoff
	le.PutUint16(hdr[52:], ehdrSize)
	le.PutUint16(hdr[54:], phdrSize)
	le.PutUint16(hdr[56:], uint16(phnum))
	le.PutUint16(hdr[58:], 64) // e_shentsize
	bw.Write(hdr[:])
	ph := func(typ, flags uint32, off int64, vaddr, filesz, memsz, align uint64) {
		var b [phdrSize]byte
		le.PutUint32(b[0:], typ)
		le.PutUint32(b[4:], flags)
		le.PutUint64(b[8:], uint64(off))
		le.PutUint64(b[16:], vaddr)
		le.PutUint64(b[24:], vaddr)
		le.PutUint64(b[32:], filesz)
		le.PutUint64(b[40:], memsz)
		le.PutUint64(b[48:], align)
		bw.Write(b[:])
	}
	ph(ptNote, 0, noteOff, 0, uint64(len(notes)), 0, 0)
	for _, l := range loads {
		fs := uint64(0)
		if l.kind == loadBytes {
			fs = l.end - l.start
		}
		ph(ptLoad, l.flags, l.off, l.start, fs, l.end-l.start, pageSize)
	}
	bw.Write(notes)
	if _, err := bw.Write(zeroPage[:dataOff-noteOff-int64(len(notes))]); err != nil {
		return info, err
	}
	if err := bw.Flush(); err != nil {
		return info, err
	}
	// Zero fill is skipped over (a hole) when w can seek and truncate.
	ws, sparse := w.(interface {
		io.WriteSeeker
		Truncate(int64) error
	})
	buf := make([]byte, 1<<20)
	for _, l := range loads {
		if l.kind != loadBytes {
			continue
		}
		for _, rg := range s.Regions(l.start, l.end) {
			if rg.Provenance == Zero && sparse {
				if _, err := ws.Seek(int64(rg.End-rg.Start), io.SeekCurrent); err != nil {
					return info, err
				}
				continue
			}
			for a := rg.Start; a < rg.End; {
				if err := ctx.Err(); err != nil {
					return info, err
				}
				k := int(min(uint64(len(buf)), rg.End-a))
				if _, err := s.Read(buf[:k], a); err != nil {
					return info, err
				}
				if _, err := w.Write(buf[:k]); err != nil {
					return info, err
				}
				a += uint64(k)
			}
		}
	}
	if sparse {
		return info, ws.Truncate(info.Size)
	}
	return info, nil
}

func appendNote(b []byte, typ uint32, desc []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, 5) // "CORE\0"
	b = le.AppendUint32(b, uint32(len(desc)))
	b = le.AppendUint32(b, typ)
	b = append(b, "CORE\x00\x00\x00\x00"...)
	b = append(b, desc...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func prstatus(p *checkpoint.Process, t *checkpoint.Registers) []byte {
	b := make([]byte, prstatusSize)
	le := binary.LittleEndian
	le.PutUint64(b[16:], uint64(t.PendingSigs)) // pr_sigpend: a count is all CRIU keeps cheaply
	le.PutUint64(b[24:], t.BlockedSigs)
	le.PutUint32(b[32:], t.TID)
	le.PutUint32(b[36:], p.PPID)
	le.PutUint32(b[40:], p.PGID)
	le.PutUint32(b[44:], p.SID)
	g := t.X86
	regs := []uint64{g.R15, g.R14, g.R13, g.R12, g.BP, g.BX, g.R11, g.R10, g.R9, g.R8, g.AX, g.CX, g.DX, g.SI, g.DI,
		g.OrigAX, g.IP, g.CS, g.Flags, g.SP, g.SS, g.FSBase, g.GSBase, g.DS, g.ES, g.FS, g.GS}
	for i, v := range regs {
		le.PutUint64(b[112+8*i:], v)
	}
	if t.X86FP != nil {
		le.PutUint32(b[328:], 1) // pr_fpvalid
	}
	return b
}

func fpregs(f *checkpoint.X86FPRegs) []byte {
	if f == nil {
		return nil
	}
	b := make([]byte, fpregsSize)
	le := binary.LittleEndian
	le.PutUint16(b[0:], uint16(f.CWD))
	le.PutUint16(b[2:], uint16(f.SWD))
	le.PutUint16(b[4:], uint16(f.TWD))
	le.PutUint16(b[6:], uint16(f.FOP))
	le.PutUint64(b[8:], f.RIP)
	le.PutUint64(b[16:], f.RDP)
	le.PutUint32(b[24:], f.MXCSR)
	le.PutUint32(b[28:], f.MXCSRMask)
	for i, v := range f.ST {
		if i < 32 {
			le.PutUint32(b[32+4*i:], v)
		}
	}
	for i, v := range f.XMM {
		if i < 64 {
			le.PutUint32(b[160+4*i:], v)
		}
	}
	return b
}

func prpsinfo(p *checkpoint.Process) []byte {
	b := make([]byte, prpsinfoSize)
	le := binary.LittleEndian
	state, sname := byte(1), byte('S')
	switch p.State {
	case checkpoint.StateStopped:
		state, sname = 4, 'T'
	case checkpoint.StateZombie:
		state, sname = 16, 'Z'
	}
	b[0], b[1] = state, sname
	le.PutUint32(b[16:], p.UID)
	le.PutUint32(b[20:], p.GID)
	le.PutUint32(b[24:], p.PID)
	le.PutUint32(b[28:], p.PPID)
	le.PutUint32(b[32:], p.PGID)
	le.PutUint32(b[36:], p.SID)
	copy(b[40:55], p.Comm)
	copy(b[56:135], strings.Join(p.Cmdline, " "))
	return b
}

// auxv keeps the saved auxiliary vector up to its AT_NULL pair.
func auxv(v []uint64) []byte {
	var b []byte
	for i := 0; i+1 < len(v); i += 2 {
		b = binary.LittleEndian.AppendUint64(b, v[i])
		b = binary.LittleEndian.AppendUint64(b, v[i+1])
		if v[i] == 0 {
			break
		}
	}
	return b
}

// ntFileDesc lists the file mappings: count, page size, then (start, end,
// offset in pages) per mapping, then their NUL-terminated names.
func ntFileDesc(s *Space) []byte {
	le := binary.LittleEndian
	var ents, names []byte
	n := 0
	for _, m := range s.Mappings {
		if m.Path == "" || m.Status&(checkpoint.VMAFilePrivate|checkpoint.VMAFileShared) == 0 {
			continue
		}
		ents = le.AppendUint64(ents, m.Start)
		ents = le.AppendUint64(ents, m.End)
		ents = le.AppendUint64(ents, m.Pgoff/pageSize)
		names = append(names, m.Path...)
		names = append(names, 0)
		n++
	}
	b := le.AppendUint64(nil, uint64(n))
	b = le.AppendUint64(b, pageSize)
	return append(append(b, ents...), names...)
}
