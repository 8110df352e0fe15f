package memory

import "github.com/deadnode/deadnode/checkpoint"

// shmemObj is a shared memory object (anonymous shared mapping, memfd or
// SysV segment) whose pages CRIU saved once, in its own pagemap, with
// offsets in the object as addresses.
type shmemObj struct {
	pm    *checkpoint.Pagemap
	pages *pagesFile
	err   error
}

func (r *Reader) shmemObject(shmid uint64) *shmemObj {
	if o, ok := r.shmem[shmid]; ok {
		return o
	}
	o := &shmemObj{}
	r.shmem[shmid] = o
	pm, err := sorted(r.top.dir.ShmemPagemap(shmid))
	if err != nil {
		o.err = err
	}
	if pm == nil {
		return o
	}
	o.pm = pm
	if n := need(pm); n > 0 {
		o.pages = r.top.pagesImage(pm.PagesID, n)
		if o.pages.err != nil && o.err == nil {
			o.err = o.pages.err
		}
	}
	return o
}

// shmem fills [a,e) of a shared mapping from its object's pagemap: holes
// of the object read as zeros.
func (b *builder) shmem(v *Mapping, a, e uint64) {
	shmid := v.Shmid
	if v.Status&checkpoint.VMAAreaMemfd != 0 {
		sh, err := b.r.CP.MemfdShmid(uint32(v.Shmid))
		if err != nil {
			b.errorf("mapping %x-%x: %v", v.Start, v.End, err)
			v.Pages.Absent += pagesOf(a, e)
			b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonShmem})
			return
		}
		shmid = sh
	}
	o := b.r.shmemObject(shmid)
	if o.err != nil {
		b.errorf("mapping %x-%x (shmid %d): %v", v.Start, v.End, shmid, o.err)
	}
	if o.pm == nil {
		v.Pages.Absent += pagesOf(a, e)
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonShmem})
		return
	}
	// Object offsets of [a,e).
	oa := v.Pgoff + (a - v.Start)
	oe := oa + (e - a)
	if oa < v.Pgoff || oe < oa {
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonShmem})
		return
	}
	addr := func(off uint64) uint64 { return a + (off - oa) }
	pos := oa
	for x, in := range runsIn(o.pm.Entries, oa, oe) {
		xs, xe := in.Start, in.End
		if xs > pos {
			v.Pages.Absent += pagesOf(pos, xs)
			b.add(seg{start: addr(pos), end: addr(xs), prov: Zero})
		}
		// Pages of a shared object in a parent dump are not followed.
		b.run(x.Flags, addr(xs), addr(xe), o.pages, x.Offset+int64(xs-x.Vaddr), Dumped, &v.Pages, func(a, e uint64) {
			b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonShmemParent})
		})
		pos = xe
	}
	if pos < oe {
		v.Pages.Absent += pagesOf(pos, oe)
		b.add(seg{start: addr(pos), end: e, prov: Zero})
	}
}
