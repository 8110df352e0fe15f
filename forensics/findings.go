package forensics

import (
	"fmt"
	"path"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
)

// Analyzer names of the findings this package makes.
const (
	AnalyzerDrift       = "drift"
	AnalyzerImageVerify = "image_verify"
	AnalyzerCheckpoint  = "checkpoint"
)

func (e *DriftEntry) has(flag string) bool {
	for _, f := range e.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Finding judges a drift entry: what an examiner would make of a file
// that appeared, changed or disappeared in a container after it started.
// The severity is explained in Why; the entry rides along in Details.
func (e DriftEntry) Finding() model.Finding {
	sev, why := e.judge()
	if e.Volume != "" {
		why += "; it lies in volume " + e.Volume + ": node storage the container wrote through a mount, outside its writable layer"
	}
	f := model.Finding{
		Severity: sev, Analyzer: AnalyzerDrift, Kind: e.Change, Why: why,
		Runtime: e.Runtime, ContainerID: e.ContainerID, Pod: e.Pod, Path: e.Path,
		EvidencePath: e.EvidencePath, Details: e,
	}
	if e.ExecKind != "" {
		f.Kind = e.Change + "_" + e.ExecKind
	}
	what := e.Type
	if e.ExecKind != "" {
		what = strings.ReplaceAll(e.ExecKind, "_", " ")
	}
	f.Summary = fmt.Sprintf("%s %s %s", strings.ReplaceAll(e.Change, "_", " "), what, e.Path)
	if e.IdenticalTo != "" {
		f.Summary += " (a copy of " + e.IdenticalTo + ")"
	}
	if len(e.Flags) > 0 {
		f.Summary += " [" + strings.Join(e.Flags, ",") + "]"
	}
	if e.SHA256 != "" {
		f.Refs = append(f.Refs, "sha256:"+e.SHA256)
	}
	if e.IdenticalTo != "" {
		f.Refs = append(f.Refs, "identical_to:"+e.IdenticalTo)
	}
	if e.has(classify.FlagPersistence) {
		f.Refs = append(f.Refs, "attack:T1546")
	}
	if e.ExecKind == classify.ExecELF || e.ExecKind == classify.ExecLibrary {
		f.Refs = append(f.Refs, "attack:T1105")
	}
	return f
}

func (e *DriftEntry) judge() (model.Severity, string) {
	privileged := e.has(classify.FlagSetuid) || e.has(classify.FlagSetgid) || e.has(classify.FlagCapability)
	hiddenOrVolatile := e.has(classify.FlagHidden) || e.has(classify.FlagVolatile)
	switch {
	case e.has(classify.FlagBenign):
		return model.SeverityInfo, "a mount point runc or the kubelet creates in every container (0 bytes in the upper layer): expected"
	case e.Change == ChangeDeleted || e.Change == ChangeDeletedDir || e.Change == ChangeOpaqueDir:
		if e.has(classify.FlagPersistence) || strings.HasPrefix(e.Path, "/var/log/") || path.Base(e.Path) == ".bash_history" {
			return model.SeverityMedium, "an image file of a security-relevant place was removed at run time (logs, history or boot/login configuration): possible clean-up of traces"
		}
		return model.SeverityLow, "an image file was removed at run time"
	case e.Change == ChangeMetadataOnly:
		if privileged {
			return model.SeverityHigh, "an image file gained setuid/setgid or file capabilities at run time: a privilege-escalation foothold"
		}
		return model.SeverityLow, "an image file was copied up with its content unchanged (mode, owner, times or xattrs changed)"
	}
	// added, modified, added_or_modified, type_changed
	modified := e.Change == ChangeModified || e.Change == ChangeTypeChanged
	switch e.ExecKind {
	case classify.ExecELF, classify.ExecLibrary:
		kind := "an ELF executable"
		if e.ExecKind == classify.ExecLibrary {
			kind = "a shared library"
		}
		switch {
		case privileged:
			return model.SeverityCritical, kind + " with setuid/setgid or file capabilities was written into the container after it started: a planted privileged binary"
		case e.IdenticalTo != "":
			return model.SeverityHigh, kind + " identical to the image's " + e.IdenticalTo + " was written under another name: a renamed copy of a system binary, a common way to hide a tool"
		case modified:
			return model.SeverityHigh, kind + " of the image was replaced at run time: containers run what their image holds, so a changed binary is tampering"
		case hiddenOrVolatile:
			return model.SeverityHigh, kind + " was dropped into a hidden or volatile directory after the container started: typical of downloaded tools and miners"
		}
		return model.SeverityHigh, kind + " was written into the container after it started: containers run what their image holds, so a new binary is a dropped tool"
	case classify.ExecScript:
		switch {
		case privileged:
			return model.SeverityCritical, "a script with setuid/setgid was written into the container"
		case e.has(classify.FlagPersistence):
			return model.SeverityHigh, "a script was written where the system runs it at boot, login or on a schedule: persistence"
		case modified:
			return model.SeverityHigh, "a script of the image was changed at run time"
		case hiddenOrVolatile:
			return model.SeverityMedium, "a script was dropped into a hidden or volatile directory"
		}
		return model.SeverityMedium, "a script was written into the container after it started"
	case classify.ExecBit:
		if privileged {
			return model.SeverityHigh, "a file with setuid/setgid or file capabilities was written into the container"
		}
		if hiddenOrVolatile {
			return model.SeverityMedium, "an executable-marked file was dropped into a hidden or volatile directory"
		}
		return model.SeverityLow, "a file with an exec bit was written into the container"
	}
	switch {
	case privileged:
		return model.SeverityHigh, "a file with setuid/setgid or file capabilities was written into the container"
	case e.has(classify.FlagPersistence):
		return model.SeverityHigh, "a file the system trusts at boot, login or on a schedule (accounts, cron, shell profiles, keys) was written or changed: persistence or account tampering"
	case e.has(classify.FlagHidden):
		return model.SeverityLow, "a file was written under a hidden name"
	case e.has(classify.FlagWorldWrite):
		return model.SeverityLow, "a world-writable file was written"
	}
	return model.SeverityInfo, "a file was written into the container after it started (application data, caches, logs)"
}

// VerificationFindings judges an image verification: a layer on disk that
// is not the image's is tampering with every container that uses it.
func VerificationFindings(v image.Verification) []model.Finding {
	var out []model.Finding
	base := model.Finding{Analyzer: AnalyzerImageVerify, Runtime: v.Runtime, Refs: []string{v.Digest}}
	name := v.Name
	if v.Namespace != "" {
		name = v.Namespace + "/" + v.Name
	}
	for _, l := range v.Layers {
		if l.Status != image.StatusTampered {
			continue
		}
		f := base
		f.Severity, f.Kind = model.SeverityCritical, "tampered_layer"
		f.Why = "the unpacked layer on disk differs from the image's layer: every container built on it runs the changed files, and no container log shows it"
		f.EvidencePath = l.SnapshotDir
		f.Summary = fmt.Sprintf("image %s layer %d (%s): %d differences", name, l.Index, l.DiffID, len(l.Differences)+l.Omitted)
		f.Refs = append(append([]string{}, base.Refs...), l.DiffID)
		for i, d := range l.Differences {
			if i == 20 {
				break
			}
			if d.Path != "" {
				f.Refs = append(f.Refs, d.What+":"+d.Path)
			}
		}
		if len(l.Differences) > 0 {
			f.Path = l.Differences[0].Path
		}
		f.Details = l
		out = append(out, f)
	}
	if len(v.Corrupt) > 0 {
		f := base
		f.Severity, f.Kind = model.SeverityHigh, "corrupt_blob"
		f.Why = "blobs of the content store do not match their digests: the store was altered or damaged"
		f.Summary = fmt.Sprintf("image %s: %d blobs do not match their digest", name, len(v.Corrupt))
		f.Refs = append(f.Refs, v.Corrupt...)
		out = append(out, f)
	}
	if v.Status == image.StatusUnverifiable && len(out) == 0 {
		f := base
		f.Severity, f.Kind = model.SeverityInfo, "unverifiable"
		f.Why = "the image could not be verified (a blob or a record is missing); nothing is known against it"
		f.Summary = fmt.Sprintf("image %s could not be verified: %s", name, firstOf(v.Error, unverifiableReason(v)))
		out = append(out, f)
	}
	return out
}

func unverifiableReason(v image.Verification) string {
	for _, l := range v.Layers {
		if l.Status == image.StatusUnverifiable && l.Reason != "" {
			return l.Reason
		}
	}
	return "see its layers"
}

// CheckpointFindings judges a checkpoint's processes: what ran from files
// the container wrote itself, or from deleted files, and what those
// processes were talking to.
func CheckpointFindings(cp *checkpoint.Checkpoint, runtime string) []model.Finding {
	var out []model.Finding
	ctr := cp.Container.ID
	pod := ""
	if cp.Container.Pod != "" {
		pod = cp.Container.Namespace + "/" + cp.Container.Pod
	}
	for _, p := range cp.Processes {
		var sev model.Severity
		var kind, why string
		switch p.ExeOrigin {
		case checkpoint.OriginContainerDiff:
			sev, kind = model.SeverityHigh, "process_from_container_diff"
			why = "a running process's executable exists only in what the container wrote itself, not in its image: a dropped tool was running"
		case checkpoint.OriginDeleted:
			sev, kind = model.SeverityHigh, "process_exe_deleted"
			why = "a running process's executable had been deleted: a common way to hide a running tool"
		default:
			continue
		}
		var conns []string
		established, listening := 0, 0
		for _, s := range p.Sockets {
			switch s.State {
			case "ESTABLISHED", "SYN_SENT":
				established++
				conns = append(conns, "connection:"+s.Src+"->"+s.Dst)
			case "LISTEN":
				listening++
				conns = append(conns, "listening:"+s.Src)
			}
		}
		if established > 0 {
			sev = model.SeverityCritical
			why += "; it held an established network connection"
		} else if listening > 0 {
			sev = model.SeverityCritical
			why += "; it was listening on the network"
		}
		f := model.Finding{Severity: sev, Analyzer: AnalyzerCheckpoint, Kind: kind, Why: why, Runtime: runtime, ContainerID: ctr, Pod: pod,
			Path: p.Exe, Pid: model.PidPtr(int(p.PID)), Refs: conns,
			Summary: fmt.Sprintf("pid %d %s runs %s (%s)", p.PID, p.Comm, p.Exe, strings.ReplaceAll(p.ExeOrigin, "_", " "))}
		if len(p.Cmdline) > 0 {
			f.Summary += ": " + strings.Join(p.Cmdline, " ")
		}
		f.Details = p
		out = append(out, f)
	}
	return out
}
