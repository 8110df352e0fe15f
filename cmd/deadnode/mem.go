package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/memory"
	"github.com/deadnode/deadnode/render"
)

const memSourceArgs = "SOURCE | --root EVIDENCE CHECKPOINT"

func init() {
	register(&command{
		name:    "mem maps",
		args:    memSourceArgs,
		summary: "the mappings of checkpointed processes with their pages dumped/parent/lazy/absent (SOURCE: a checkpoint archive or CRIU images dir; CHECKPOINT: a containerd checkpoint image name or digest)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var pids []uint
			var ranges bool
			fs.UintSliceVar(&pids, "pid", nil, "only these pids (repeatable)")
			fs.BoolVar(&ranges, "ranges", false, "also list each mapping's byte ranges with their provenance (dumped, parent, file, zero, not_captured) and source")
			return func(a *app, args []string) error { return runMemMaps(a, args, pids, ranges) }
		},
	})
	register(&command{
		name:    "mem search",
		args:    memSourceArgs + " (--string S | --regex RE | --hex BYTES | --utf16 S)",
		summary: "search the memory of checkpointed processes; every hit says where its bytes come from (dumped, parent, file)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o memSearchFlags
			fs.UintSliceVar(&o.pids, "pid", nil, "only these pids (repeatable; default all)")
			fs.StringVar(&o.str, "string", "", "look for these bytes (UTF-8)")
			fs.StringVar(&o.re, "regex", "", "look for a Go regular expression (RE2)")
			fs.StringVar(&o.hex, "hex", "", "look for bytes written in hex (\"de ad be ef\")")
			fs.StringVar(&o.utf16, "utf16", "", "look for a string encoded as UTF-16LE")
			fs.IntVar(&o.context, "context", 32, "bytes of context either side of a hit")
			fs.IntVar(&o.maxMatch, "max-match", memory.DefaultMaxMatch, "longest regex match (bytes)")
			fs.BoolVar(&o.zero, "include-zero", false, "also search zero-filled ranges")
			return func(a *app, args []string) error { return runMemSearch(a, args, o) }
		},
	})
	register(&command{
		name:    "mem strings",
		args:    memSourceArgs + " --pid N",
		summary: "printable strings of a checkpointed process's memory, with address and provenance",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var pid uint
			var minLen int
			var u16 bool
			pidVar(fs, &pid)
			fs.IntVar(&minLen, "min", 6, "shortest string, in characters")
			fs.BoolVar(&u16, "utf16", false, "UTF-16LE strings instead of ASCII")
			return func(a *app, args []string) error { return runMemStrings(a, args, pid, minLen, u16) }
		},
	})
	register(&command{
		name:    "mem dump",
		args:    memSourceArgs + " --pid N (--all | --vma ADDR | --range START-END) -d OUTDIR",
		summary: "write memory regions to files named by address, with manifest.json (sha256 and provenance of every range)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o memDumpFlags
			pidVar(fs, &o.pid)
			fs.BoolVar(&o.all, "all", false, "every mapping")
			fs.StringVar(&o.vma, "vma", "", "the mapping holding this address (hex)")
			fs.StringVar(&o.rng, "range", "", "an address range START-END (hex)")
			fs.StringVarP(&o.dir, "dir", "d", "", "output directory (created; existing files are not overwritten)")
			fs.BoolVar(&o.uncaptured, "include-uncaptured", false, fmt.Sprintf("cover zero and not-captured ranges of any size as holes of the files (up to %d GiB; by default past %d GiB in all they are listed as skipped, not written)", memory.MaxHolesLimit>>30, memory.DefaultMaxHoles>>30))
			maxDataVar(fs, &o.maxData, "the files hold; the rest is listed as skipped, not written")
			return func(a *app, args []string) error { return runMemDump(a, args, o) }
		},
	})
	register(&command{
		name:    "mem core",
		args:    memSourceArgs + " --pid N -f CORE",
		summary: "write an ELF core file of a checkpointed process (x86-64) for gdb; uncaptured ranges are left out (gdb cannot access them)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var pid uint
			var file string
			var force bool
			var maxData string
			pidVar(fs, &pid)
			fs.StringVarP(&file, "file", "f", "", "the core file to write (must not exist, unless --force)")
			fs.BoolVar(&force, "force", false, "overwrite CORE if it exists")
			maxDataVar(fs, &maxData, "the core holds; the rest has no PT_LOAD and is listed as skipped")
			return func(a *app, args []string) error { return runMemCore(a, args, pid, file, force, maxData) }
		},
	})
}

// openMem opens the checkpoint named by the arguments and its memory: a
// host archive or images dir, or with --root a checkpoint of the node.
// Without pages, a compressed archive keeps none of its pages images (the
// mappings and provenance are still known, dumped bytes cannot be read).
func openMem(a *app, args []string, pages bool) (*memory.Reader, func(), error) {
	if len(args) != 1 {
		return nil, nil, usagef("takes one SOURCE (or, with --root, one CHECKPOINT)")
	}
	if a.root == "" {
		r, err := memory.OpenPath(context.Background(), args[0], &memory.Options{NoPageData: !pages})
		if err != nil {
			return nil, nil, sourceHint(args[0], err)
		}
		for _, w := range r.CP.Warnings {
			a.warn(w.String())
		}
		return r, func() { r.Close() }, nil
	}
	opt := checkpoint.Options{Pages: pages}
	if !pages {
		opt.Skip = checkpoint.PartCmdlines // they would need a pass over the pages
	}
	cp, closeEvidence, err := openNodeCheckpoint(a, args[0], opt)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range cp.Warnings {
		a.warn(w.String())
	}
	// Unmodified file-backed pages come from the checkpointed container's
	// own filesystem on the node, when it is still there.
	var mopt memory.Options
	if n, err := a.node(); err == nil && cp.Container.ID != "" {
		if c, err := n.FindContainer(cp.Container.ID); err == nil && c.ID == cp.Container.ID {
			if v, err := n.MergedView(c); err == nil {
				mopt.FS = v
			}
		}
	}
	r, err := memory.Open(cp, &mopt)
	if err != nil {
		cp.Close()
		closeEvidence()
		return nil, nil, err
	}
	return r, func() { r.Close(); cp.Close(); closeEvidence() }, nil
}

func hexAddr(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

func parseAddr(s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), 16, 64)
	if err != nil {
		return 0, usagef("address %q is not hex", s)
	}
	return v, nil
}

func pidList(r *memory.Reader, pids []uint) ([]uint32, error) {
	if len(pids) == 0 {
		out := make([]uint32, 0, len(r.CP.Processes))
		for _, p := range r.CP.Processes {
			out = append(out, p.PID)
		}
		return out, nil
	}
	out := make([]uint32, 0, len(pids))
	for _, p := range pids {
		if r.CP.Process(uint32(p)) == nil {
			return nil, fmt.Errorf("pid %d is not a task of the checkpoint", p)
		}
		out = append(out, uint32(p))
	}
	return out, nil
}

// memMap is one mapping as mem maps prints it.
type memMap struct {
	PID    uint32            `json:"pid"`
	Comm   string            `json:"comm"`
	Start  string            `json:"start"`
	End    string            `json:"end"`
	Pgoff  uint64            `json:"pgoff"`
	Perms  string            `json:"perms"`
	Kind   string            `json:"kind"`
	Path   string            `json:"path,omitempty"`
	Shmid  uint64            `json:"shmid,omitempty"`
	Pages  memory.PageCounts `json:"pages"`
	Ranges []memRange        `json:"ranges,omitempty"`
}

// memRange is a byte range of a mapping with its provenance.
type memRange struct {
	Start      string `json:"start"`
	End        string `json:"end"`
	Provenance string `json:"provenance"`
	Source     string `json:"source,omitempty"`
	Offset     int64  `json:"offset,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

func runMemMaps(a *app, args []string, pidFlags []uint, ranges bool) error {
	r, closeFn, err := openMem(a, args, false)
	if err != nil {
		return err
	}
	defer closeFn()
	pids, err := pidList(r, pidFlags)
	if err != nil {
		return err
	}
	out := []memMap{}
	for _, pid := range pids {
		s, err := r.Space(pid)
		if err != nil {
			a.warn(err.Error())
			continue
		}
		for _, e := range s.Errors {
			a.warn(fmt.Sprintf("pid %d: %s", pid, e))
		}
		for _, m := range s.Mappings {
			mm := memMap{PID: pid, Comm: s.Comm, Start: hexAddr(m.Start), End: hexAddr(m.End), Pgoff: m.Pgoff,
				Perms: m.Perms, Kind: m.Kind, Path: m.Path, Shmid: m.Shmid, Pages: m.Pages}
			if ranges {
				for _, r := range s.Regions(m.Start, m.End) {
					mm.Ranges = append(mm.Ranges, memRange{hexAddr(r.Start), hexAddr(r.End), string(r.Provenance), r.Source, r.Offset, r.Reason})
				}
			}
			out = append(out, mm)
		}
	}
	return a.render(out, func(w io.Writer) {
		row(w, "PID", "COMM", "START-END", "PERMS", "KIND", "PATH", "DUMPED", "PARENT", "LAZY", "ABSENT")
		for _, m := range out {
			p := m.Path
			if p != "" && m.Pgoff != 0 {
				p += fmt.Sprintf(" +0x%x", m.Pgoff)
			}
			row(w, m.PID, m.Comm, strings.TrimPrefix(m.Start, "0x")+"-"+strings.TrimPrefix(m.End, "0x"), m.Perms, m.Kind, p,
				m.Pages.Dumped, m.Pages.Parent, m.Pages.Lazy, m.Pages.Absent)
			for _, r := range m.Ranges {
				src := r.Source
				if r.Source != "" {
					src += fmt.Sprintf(" @%d", r.Offset)
				}
				row(w, "", "", "  "+strings.TrimPrefix(r.Start, "0x")+"-"+strings.TrimPrefix(r.End, "0x"), "", r.Provenance, firstNonEmpty(src, r.Reason), "", "", "", "")
			}
		}
	})
}

type memSearchFlags struct {
	pids                []uint
	str, re, hex, utf16 string
	context, maxMatch   int
	zero                bool
}

// memHit is one hit as mem search prints it.
type memHit struct {
	PID         uint32 `json:"pid"`
	Comm        string `json:"comm"`
	Address     string `json:"address"`
	Length      int    `json:"length"`
	VMAStart    string `json:"vma_start"`
	VMAEnd      string `json:"vma_end"`
	VMAKind     string `json:"vma_kind"`
	Path        string `json:"path,omitempty"`
	Provenance  string `json:"provenance"`
	ContextAddr string `json:"context_address,omitempty"`
	ContextHex  string `json:"context_hex"`
	ContextText string `json:"context_text"`
}

// printableText shows bytes as text: printable ASCII as is, others as '.'.
func printableText(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 0x20 && c < 0x7f {
			out[i] = c
		} else {
			out[i] = '.'
		}
	}
	return string(out)
}

func runMemSearch(a *app, args []string, o memSearchFlags) error {
	var pat *memory.Pattern
	n := 0
	for _, s := range []string{o.str, o.re, o.hex, o.utf16} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return usagef("give exactly one of --string, --regex, --hex, --utf16")
	}
	var err error
	switch {
	case o.str != "":
		pat = memory.String(o.str)
	case o.utf16 != "":
		pat = memory.UTF16(o.utf16)
	case o.hex != "":
		if pat, err = memory.Hex(o.hex); err != nil {
			return usagef("%v", err)
		}
	default:
		if pat, err = memory.Regex(o.re, o.maxMatch); err != nil {
			return usagef("--regex: %v", err)
		}
	}
	if o.context < 0 {
		return usagef("--context must not be negative")
	}
	opt := &memory.SearchOptions{Context: o.context}
	if o.zero {
		opt.Provenances = []memory.Provenance{memory.Dumped, memory.Parent, memory.File, memory.Zero}
	}
	var hits iter.Seq2[memory.Hit, error]
	if a.root == "" {
		// One pass over the archive: compressed pages are streamed, never spilled.
		if len(args) != 1 {
			return usagef("takes one SOURCE (or, with --root, one CHECKPOINT)")
		}
		for _, p := range o.pids {
			opt.PIDs = append(opt.PIDs, uint32(p))
		}
		hits = memory.SearchPath(context.Background(), args[0], pat, opt, nil)
	} else {
		r, closeFn, err := openMem(a, args, true)
		if err != nil {
			return err
		}
		defer closeFn()
		if opt.PIDs, err = pidList(r, o.pids); err != nil {
			return err
		}
		hits = r.Search(context.Background(), pat, opt)
	}
	out := []memHit{}
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	for h, err := range hits {
		if err != nil {
			if h.PID == 0 { // the source itself failed
				if a.root == "" {
					return sourceHint(args[0], err)
				}
				return err
			} else {
				a.warn(fmt.Sprintf("pid %d: %v", h.PID, err))
			}
			continue
		}
		mh := memHit{PID: h.PID, Comm: h.Comm, Address: hexAddr(h.Address), Length: h.Length, VMAStart: hexAddr(h.VMAStart),
			VMAEnd: hexAddr(h.VMAEnd), VMAKind: h.VMAKind, Path: h.Path, Provenance: string(h.Provenance),
			ContextHex: hex.EncodeToString(h.Context), ContextText: printableText(h.Context)}
		if len(h.Context) > 0 {
			mh.ContextAddr = hexAddr(h.ContextStart)
		}
		if a.output == "jsonl" { // stream: hits may be many
			if err := enc.Encode(mh); err != nil {
				return err
			}
			continue
		}
		out = append(out, mh)
	}
	if a.output == "jsonl" {
		return nil
	}
	return a.render(out, func(w io.Writer) {
		row(w, "PID", "COMM", "ADDRESS", "VMA", "KIND", "PATH", "PROVENANCE", "CONTEXT")
		for _, h := range out {
			row(w, h.PID, h.Comm, h.Address, strings.TrimPrefix(h.VMAStart, "0x")+"-"+strings.TrimPrefix(h.VMAEnd, "0x"),
				h.VMAKind, h.Path, h.Provenance, h.ContextText)
		}
	})
}

// pidVar defines the --pid flag of the commands that read one process.
func pidVar(fs *pflag.FlagSet, pid *uint) {
	fs.UintVar(pid, "pid", 0, "the process (required)")
}

// openSpace opens the checkpoint's memory, pages included, and the address
// space of the process --pid names.
func openSpace(a *app, args []string, pid uint) (*memory.Reader, *memory.Space, func(), error) {
	if pid == 0 {
		return nil, nil, nil, usagef("--pid N is required")
	}
	if pid > math.MaxUint32 {
		return nil, nil, nil, usagef("--pid %d is not a pid", pid)
	}
	r, closeFn, err := openMem(a, args, true)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := r.Space(uint32(pid))
	if err != nil {
		closeFn()
		return nil, nil, nil, err
	}
	return r, s, closeFn, nil
}

func runMemStrings(a *app, args []string, pid uint, minLen int, u16 bool) error {
	if minLen < 1 {
		return usagef("--min must be at least 1")
	}
	_, s, closeFn, err := openSpace(a, args, pid)
	if err != nil {
		return err
	}
	defer closeFn()
	type str struct {
		Address    string `json:"address"`
		Encoding   string `json:"encoding"`
		Provenance string `json:"provenance"`
		Text       string `json:"text"`
		Truncated  bool   `json:"truncated,omitempty"`
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	out := []str{}
	for t, err := range s.Strings(context.Background(), &memory.StringsOptions{Min: minLen, UTF16: u16}) {
		if err != nil {
			a.warn(err.Error())
			continue
		}
		v := str{hexAddr(t.Address), t.Encoding, string(t.Provenance), t.Text, t.Truncated}
		switch a.output {
		case "jsonl":
			if err := enc.Encode(v); err != nil {
				return err
			}
		case "table": // stream
			fmt.Fprintf(a.stdout, "%s\t%s\t%s\n", v.Address, v.Provenance, cleanCell(v.Text))
		default:
			out = append(out, v)
		}
	}
	if a.output == "json" {
		return a.render(out, nil)
	}
	return nil
}

type memDumpFlags struct {
	pid                    uint
	all, uncaptured        bool
	vma, rng, dir, maxData string
}

// maxDataVar defines --max-data, the bound on the content (dumped, parent
// and file bytes) a dump or core writes: a hostile checkpoint can map one
// object at many addresses.
func maxDataVar(fs *pflag.FlagSet, v *string, what string) {
	fs.StringVar(v, "max-data", fmt.Sprintf("%dG", memory.DefaultMaxData>>30), "SIZE (bytes, or with K, M, G or T) of content (dumped, parent and file bytes) "+what)
}

// maxDataBytes reads --max-data: a whole number of bytes, or of KiB, MiB,
// GiB or TiB with the suffix K, M, G or T; from 1 byte to 1 EiB.
func maxDataBytes(v string) (int64, error) {
	num, shift := v, 0
	if i := strings.IndexAny(v, "KMGTkmgt"); i >= 0 && i == len(v)-1 {
		num, shift = v[:i], 10*(1+strings.IndexByte("KMGT", v[i]&^0x20))
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 || n > (1<<60)>>shift {
		return 0, usagef("--max-data takes a size from 1 byte to 1 EiB (64G, 512M, 1048576), not %q", v)
	}
	return int64(n) << shift, nil
}

func runMemDump(a *app, args []string, o memDumpFlags) error {
	n := 0
	if o.all {
		n++
	}
	if o.vma != "" {
		n++
	}
	if o.rng != "" {
		n++
	}
	if n != 1 {
		return usagef("give exactly one of --all, --vma ADDR, --range START-END")
	}
	if o.dir == "" {
		return usagef("-d OUTDIR is required")
	}
	maxData, err := maxDataBytes(o.maxData)
	if err != nil {
		return err
	}
	var rs []memory.Range
	var vmaAddr uint64
	switch {
	case o.vma != "":
		if vmaAddr, err = parseAddr(o.vma); err != nil {
			return err
		}
	case o.rng != "":
		se := strings.SplitN(o.rng, "-", 2)
		if len(se) != 2 {
			return usagef("--range wants START-END")
		}
		st, err := parseAddr(se[0])
		if err != nil {
			return err
		}
		en, err := parseAddr(se[1])
		if err != nil {
			return err
		}
		if en <= st {
			return usagef("--range: END must be above START")
		}
		rs = []memory.Range{{Start: st, End: en}}
	}
	r, s, closeFn, err := openSpace(a, args, o.pid)
	if err != nil {
		return err
	}
	defer closeFn()
	switch {
	case o.all:
		for _, m := range s.Mappings {
			rs = append(rs, memory.Range{Start: m.Start, End: m.End})
		}
	case o.vma != "":
		m := s.Mapping(vmaAddr)
		if m == nil {
			return fmt.Errorf("pid %d has no mapping at 0x%x", o.pid, vmaAddr)
		}
		rs = []memory.Range{{Start: m.Start, End: m.End}}
	}
	if err := a.checkOutput(o.dir, args...); err != nil {
		return err
	}
	dopt := &memory.DumpOptions{MaxData: maxData}
	if o.uncaptured {
		dopt.MaxHoles = memory.MaxHolesLimit
	}
	man, err := s.Dump(context.Background(), o.dir, r.CP.Source, rs, dopt)
	if err != nil {
		return err
	}
	if man.Note != "" {
		render.Line(a.stderr, "note: ", man.Note)
	}
	type dumpOut struct {
		Tool forensics.ToolInfo `json:"tool"`
		*memory.Manifest
	}
	return a.render(dumpOut{forensics.ToolVersion(), man}, func(w io.Writer) {
		row(w, "FILE", "SIZE", "KIND", "PATH", "PROVENANCE", "SHA256")
		for _, d := range man.Regions {
			var provs []string
			for _, x := range d.Ranges {
				p := string(x.Provenance)
				if len(provs) == 0 || provs[len(provs)-1] != p {
					provs = append(provs, p)
				}
			}
			row(w, d.File, d.Size, d.Kind, d.Path, strings.Join(provs, ","), d.SHA256)
		}
	})
}

func runMemCore(a *app, args []string, pid uint, file string, force bool, maxData string) error {
	if file == "" {
		return usagef("-f CORE is required")
	}
	copt := &memory.CoreOptions{}
	var err error
	if copt.MaxData, err = maxDataBytes(maxData); err != nil {
		return err
	}
	r, s, closeFn, err := openSpace(a, args, pid)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := a.checkOutput(file, args...); err != nil {
		return err
	}
	f, err := a.createOut(file, force, args...)
	if err != nil {
		return err
	}
	info, err := r.WriteCore(context.Background(), s, f, copt)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(err, os.Remove(file))
	}
	type coreOut struct {
		Tool forensics.ToolInfo `json:"tool"`
		File string             `json:"file"`
		*memory.CoreInfo
	}
	out := coreOut{forensics.ToolVersion(), file, info}
	return a.render(out, func(w io.Writer) {
		fmt.Fprintf(w, "wrote %s: pid %d, %d threads, %d loads, %d bytes\n", file, info.PID, info.Threads, info.Loads, info.Size)
		for _, nc := range info.NotCaptured {
			fmt.Fprintf(w, "not captured (not in the core):\t0x%x-0x%x\n", nc.Start, nc.End)
		}
		for _, sk := range info.Skipped {
			if sk.Reason == memory.ReasonMaxData {
				fmt.Fprintf(w, "%s, past --max-data (not in the core):\t0x%x-0x%x\n", sk.Provenance, sk.Start, sk.End)
				continue
			}
			fmt.Fprintf(w, "zero, past the bound (no file bytes):\t0x%x-0x%x\n", sk.Start, sk.End)
		}
		if info.Note != "" {
			fmt.Fprintf(w, "note: %s\n", info.Note)
		}
	})
}
