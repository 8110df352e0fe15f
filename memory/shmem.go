package memory

import (
	"fmt"
	"sort"

	"github.com/deadnode/deadnode/checkpoint"
)

// shmemObj is a shared memory object (anonymous shared mapping, memfd or
// SysV segment) whose pages CRIU saved once, in pagemap-shmem-<shmid>.img,
// with offsets in the object as addresses.
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
	name := fmt.Sprintf(imgPagemapShmemFmt, shmid)
	pm, err := decodePagemapFile(r.top, name)
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

// memfdShmidOf maps a memfd's file id (the shmid of its VMA) to the shmid
// of its inode (files.img -> memfd.img).
func (r *Reader) memfdShmidOf(fileID uint64) (uint64, error) {
	if r.memfdShmid == nil && r.memfdErr == nil {
		r.memfdShmid = map[uint32]uint64{}
		inodes := map[uint32]uint64{}
		if ir, c, err := r.CP.Image(imgMemfd); err == nil {
			l, err := checkpoint.DecodeMemfdInodes(ir)
			c.Close()
			if err != nil {
				r.memfdErr = err
			}
			for _, m := range l {
				inodes[uint32(m.GetInodeId())] = uint64(m.GetShmid())
			}
		} else {
			r.memfdErr = err
		}
		if ir, c, err := r.CP.Image(imgFiles); err == nil {
			l, err := checkpoint.DecodeFiles(ir)
			c.Close()
			if err != nil && r.memfdErr == nil {
				r.memfdErr = err
			}
			for _, f := range l {
				if m := f.GetMemfd(); m != nil {
					if sh, ok := inodes[m.GetInodeId()]; ok {
						r.memfdShmid[f.GetId()] = sh
					}
				}
			}
		}
	}
	if sh, ok := r.memfdShmid[uint32(fileID)]; ok {
		return sh, nil
	}
	if r.memfdErr != nil {
		return 0, r.memfdErr
	}
	return 0, fmt.Errorf("memfd file id %d has no inode in %s", fileID, imgMemfd)
}

// shmem fills [a,e) of a shared mapping from its object's pagemap: holes
// of the object read as zeros.
func (b *builder) shmem(v *Mapping, a, e uint64) {
	shmid := v.Shmid
	if v.Status&checkpoint.VMAAreaMemfd != 0 {
		sh, err := b.r.memfdShmidOf(v.Shmid)
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
	ents := o.pm.Entries
	k := sort.Search(len(ents), func(i int) bool { return runEnd(ents[i]) > oa })
	pos := oa
	for ; k < len(ents) && ents[k].Vaddr < oe; k++ {
		x := ents[k]
		xs, xe := max(x.Vaddr, oa), min(runEnd(x), oe)
		if xs > pos {
			v.Pages.Absent += pagesOf(pos, xs)
			b.add(seg{start: addr(pos), end: addr(xs), prov: Zero})
		}
		switch {
		case x.Flags&^peKnown != 0:
			v.Pages.Absent += pagesOf(xs, xe)
			b.add(seg{start: addr(xs), end: addr(xe), prov: NotCaptured, reason: ReasonFlags})
		case x.Flags&checkpoint.PagePresent != 0:
			v.Pages.Dumped += pagesOf(xs, xe)
			b.present(o.pages, addr(xs), addr(xe), x.Offset+int64(xs-x.Vaddr), Dumped)
		case x.Flags&checkpoint.PageParent != 0:
			v.Pages.Parent += pagesOf(xs, xe)
			b.add(seg{start: addr(xs), end: addr(xe), prov: NotCaptured, reason: ReasonShmemParent})
		case x.Flags&checkpoint.PageLazy != 0:
			v.Pages.Lazy += pagesOf(xs, xe)
			b.add(seg{start: addr(xs), end: addr(xe), prov: NotCaptured, reason: ReasonLazy})
		default:
			v.Pages.Absent += pagesOf(xs, xe)
			b.add(seg{start: addr(xs), end: addr(xe), prov: NotCaptured, reason: ReasonNoData})
		}
		pos = xe
	}
	if pos < oe {
		v.Pages.Absent += pagesOf(pos, oe)
		b.add(seg{start: addr(pos), end: e, prov: Zero})
	}
}
