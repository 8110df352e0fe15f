package checkpoint

import (
	"bytes"
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fsnotify"
	remap "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
)

// A task's open files (fdinfo-<files_id>.img entries resolved through
// files.img) and the sockets among them.

func (b *builder) readFDs(p *Process, filesID uint32) {
	l, ok := b.fdinfos[filesID]
	if !ok {
		name := fmt.Sprintf(imgFdinfoFmt, filesID)
		ir, c, err := b.im.open(name)
		if err != nil {
			p.addError(err)
			return
		}
		l, err = decodeFdinfo(ir)
		c.Close()
		if err != nil {
			p.addError(err)
		}
		b.fdinfos[filesID] = l
	}
	for _, fi := range l {
		fd := FD{FD: fi.GetFd(), ID: fi.GetId(), CloExec: fi.GetFlags()&1 != 0}
		f := b.files[fi.GetId()]
		t := fi.GetType()
		fd.Type = strings.ToLower(t.String())
		if f == nil && t != fdinfo.FdTypes_CTL_TTY {
			p.errorf("", "fd %d: file id %d (%s) is not in %s", fd.FD, fd.ID, t, imgFiles)
			p.FDs = append(p.FDs, fd)
			continue
		}
		switch t {
		case fdinfo.FdTypes_REG:
			r := f.GetReg()
			fd.Type = "reg"
			fd.Path, fd.Pos, fd.Size, fd.Mode = r.GetName(), r.GetPos(), r.GetSize(), r.GetMode()
			fd.Flags = OpenFlags(r.GetFlags())
			if rt, ok := b.remaps[fd.ID]; ok {
				fd.Deleted = rt == remap.RemapType_GHOST || rt == remap.RemapType_LINKED
				fd.Ghost = rt == remap.RemapType_GHOST
			}
		case fdinfo.FdTypes_PIPE:
			fd.PipeID = f.GetPipe().GetPipeId()
			fd.Path = fmt.Sprintf("pipe:[%d]", fd.PipeID)
			fd.Flags = OpenFlags(f.GetPipe().GetFlags())
		case fdinfo.FdTypes_FIFO:
			fd.PipeID = f.GetFifo().GetPipeId()
			fd.Path = b.regName(f.GetFifo().GetRegfId())
		case fdinfo.FdTypes_INETSK:
			s := inetSocket(fd.FD, f)
			fd.Type, fd.Path, fd.Inode, fd.Detail = "inet", fmt.Sprintf("socket:[%d]", s.Inode), s.Inode, s.summary()
			fd.Flags = OpenFlags(f.GetIsk().GetFlags())
			p.Sockets = append(p.Sockets, s)
		case fdinfo.FdTypes_UNIXSK:
			s := unixSocket(fd.FD, f)
			fd.Type, fd.Path, fd.Inode, fd.Detail = "unix", fmt.Sprintf("socket:[%d]", s.Inode), s.Inode, s.summary()
			fd.Flags = OpenFlags(f.GetUsk().GetFlags())
			p.Sockets = append(p.Sockets, s)
		case fdinfo.FdTypes_PACKETSK:
			fd.Type, fd.Path = "packet", fmt.Sprintf("socket:[%d]", f.GetPsk().GetId())
			p.Sockets = append(p.Sockets, Socket{FD: fd.FD, Family: "packet", Type: sockTypes.name(f.GetPsk().GetType()), Protocol: fmt.Sprintf("0x%04x", f.GetPsk().GetProtocol())})
		case fdinfo.FdTypes_NETLINKSK:
			nl := f.GetNlsk()
			fd.Type, fd.Inode = "netlink", nl.GetIno()
			fd.Path = fmt.Sprintf("socket:[%d]", nl.GetIno())
			p.Sockets = append(p.Sockets, Socket{FD: fd.FD, Family: "netlink", Type: "raw", Protocol: strconv.Itoa(int(nl.GetProtocol())), State: tcpStates.name(nl.GetState()), Inode: nl.GetIno()})
		case fdinfo.FdTypes_EVENTFD:
			fd.Path = "anon_inode:[eventfd]"
			fd.Detail = fmt.Sprintf("counter=%d", f.GetEfd().GetCounter())
			fd.Flags = OpenFlags(f.GetEfd().GetFlags())
		case fdinfo.FdTypes_EVENTPOLL:
			fd.Path = "anon_inode:[eventpoll]"
			fd.Detail = "watches fds " + strings.Join(upTo64(f.GetEpfd().GetTfd(), func(t *eventpoll.EventpollTfdEntry) string {
				return strconv.Itoa(int(t.GetTfd()))
			}), ",")
		case fdinfo.FdTypes_SIGNALFD:
			fd.Path = "anon_inode:[signalfd]"
			fd.Detail = fmt.Sprintf("sigmask=0x%x", f.GetSgfd().GetSigmask())
		case fdinfo.FdTypes_INOTIFY:
			fd.Path = "anon_inode:inotify"
			fd.Detail = strings.Join(upTo64(f.GetIfy().GetWd(), func(wd *fsnotify.InotifyWdEntry) string {
				return fmt.Sprintf("ino=%d mask=0x%x", wd.GetIIno(), wd.GetMask())
			}), "; ")
		case fdinfo.FdTypes_FANOTIFY:
			fd.Path = "anon_inode:[fanotify]"
			fd.Detail = fmt.Sprintf("%d marks", len(f.GetFfy().GetMark()))
		case fdinfo.FdTypes_TIMERFD:
			fd.Path = "anon_inode:[timerfd]"
			fd.Detail = fmt.Sprintf("clockid=%d", f.GetTfd().GetClockid())
		case fdinfo.FdTypes_MEMFD:
			fd.Path = b.memfdName(f.GetMemfd().GetInodeId())
			fd.Pos = f.GetMemfd().GetPos()
			fd.Flags = OpenFlags(f.GetMemfd().GetFlags())
		case fdinfo.FdTypes_TTY:
			tf := f.GetTty()
			fd.Flags = OpenFlags(tf.GetFlags())
			if info := b.ttys[tf.GetTtyInfoId()]; info != nil {
				switch info.GetType() {
				case tty.TtyType_PTY:
					fd.Path = fmt.Sprintf("/dev/pts/%d", info.GetPty().GetIndex())
				default:
					fd.Path = "tty:" + strings.ToLower(info.GetType().String())
				}
				fd.Detail = fmt.Sprintf("sid=%d pgrp=%d", info.GetSid(), info.GetPgrp())
			}
			if fd.Path == "" {
				fd.Path = b.regName(tf.GetRegfId())
			}
		case fdinfo.FdTypes_NS:
			fd.Path = fmt.Sprintf("ns:[%d]", f.GetNsf().GetNsId())
		case fdinfo.FdTypes_TUNF:
			fd.Path = "/dev/net/tun"
			fd.Detail = f.GetTunf().GetNetdev()
		case fdinfo.FdTypes_PIDFD:
			fd.Path = "anon_inode:[pidfd]"
			fd.Detail = fmt.Sprintf("pid=%d", f.GetPidfd().GetNspid())
		case fdinfo.FdTypes_BPFMAP:
			fd.Path = "anon_inode:bpf-map"
		case fdinfo.FdTypes_EXT:
			fd.Path = "external"
		}
		p.FDs = append(p.FDs, fd)
	}
	sort.Slice(p.FDs, func(i, j int) bool { return p.FDs[i].FD < p.FDs[j].FD })
	sort.SliceStable(p.Sockets, func(i, j int) bool { return p.Sockets[i].FD < p.Sockets[j].FD })
}

func inetSocket(fd uint32, f *fdinfo.FileEntry) Socket {
	sk := f.GetIsk()
	s := Socket{FD: fd, Family: families.name(sk.GetFamily()), Type: sockTypes.name(sk.GetType()), Protocol: protocols.name(sk.GetProto()),
		State: tcpStates.name(sk.GetState()), SrcPort: sk.GetSrcPort(), DstPort: sk.GetDstPort(), Backlog: sk.GetBacklog(), Inode: sk.GetIno()}
	if s.Type == "dgram" && s.State == "CLOSE" {
		s.State = "UNCONN"
	}
	if a, ok := sockAddr(sk.GetFamily(), sk.GetSrcAddr()); ok {
		s.SrcAddr = a.String()
		s.Src = netip.AddrPortFrom(a, uint16(s.SrcPort)).String()
	}
	if a, ok := sockAddr(sk.GetFamily(), sk.GetDstAddr()); ok {
		s.DstAddr = a.String()
		if !a.IsUnspecified() || s.DstPort != 0 {
			s.Dst = netip.AddrPortFrom(a, uint16(s.DstPort)).String()
		}
	}
	return s
}

func unixSocket(fd uint32, f *fdinfo.FileEntry) Socket {
	sk := f.GetUsk()
	s := Socket{FD: fd, Family: "unix", Type: sockTypes.name(sk.GetType()), State: tcpStates.name(sk.GetState()), Backlog: sk.GetBacklog(), Inode: sk.GetIno(), Peer: sk.GetPeer()}
	name := sk.GetName()
	switch {
	case len(name) == 0:
	case name[0] == 0:
		s.Src = "@" + strings.ToValidUTF8(string(bytes.TrimRight(name[1:], "\x00")), "\uFFFD")
	default:
		n := strings.ToValidUTF8(string(bytes.TrimRight(name, "\x00")), "\uFFFD")
		if d := sk.GetNameDir(); d != "" && !strings.HasPrefix(n, "/") {
			n = path.Join(d, n)
		}
		s.Src = n
	}
	if sk.GetDeleted() && s.Src != "" {
		s.Src += " (deleted)"
	}
	return s
}

func (s Socket) summary() string {
	switch s.Family {
	case "unix":
		out := s.Type + " " + s.State
		if s.Src != "" {
			out += " " + s.Src
		}
		if s.Peer != 0 {
			out += fmt.Sprintf(" peer=%d", s.Peer)
		}
		return out
	}
	out := s.Protocol + " " + s.State + " " + s.Src
	if s.Dst != "" {
		out += " -> " + s.Dst
	}
	return out
}

// upTo64 renders the first 64 items of a list, then "…".
func upTo64[T any](l []T, str func(T) string) []string {
	var out []string
	for i, x := range l {
		if i >= 64 {
			return append(out, "…")
		}
		out = append(out, str(x))
	}
	return out
}
