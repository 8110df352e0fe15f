package checkpoint

import (
	"context"

	"github.com/deadnode/deadnode/evidence"
)

// openArchive decodes the checkpoint archive f (a host file, a kubelet
// archive of a node or a containerd CRIU tar blob; label names it in
// messages): the archive is indexed once (compressed ones spill what
// needs random access) and the images are decoded in place. col, when not
// nil, is a command-line collector already reading a second stream of f.
// On success the Checkpoint owns f; on error the caller closes it.
func openArchive(ctx context.Context, f evidence.File, label string, col *argCollector, opt *Options) (*Checkpoint, error) {
	a, err := evidence.NewArchive(ctx, f, f.Size(), label, archiveOptions(opt))
	if err != nil {
		col.abandon()
		return nil, err
	}
	cp, err := Open(ctx, a, "", opt)
	if err != nil {
		col.abandon()
		a.Close()
		return nil, err
	}
	cp.Warnings = append(archiveWarnings(a), cp.Warnings...)
	cp.closer = func() error { a.Close(); return f.Close() }
	if a.Compression() != evidence.CompressionNone && !opt.pages() && !opt.skips(PartCmdlines) {
		// The pages were not kept: the command lines come from the
		// collector, and what it missed from one more pass.
		done := col.apply(cp)
		if err := cp.streamArgs(ctx, f, label, done); err != nil {
			if ctx.Err() != nil {
				a.Close()
				return nil, ctx.Err()
			}
			cp.warn(err)
		}
	}
	return cp, nil
}

// archiveWarnings are the archive index's warnings (refused names,
// damage) as typed warnings.
func archiveWarnings(a *evidence.Archive) []evidence.Warning {
	return append([]evidence.Warning(nil), a.Warnings()...)
}

// warningOf turns err into a Warning that prints as err did.
func warningOf(err error) evidence.Warning {
	if w := evidence.WarningOf(err); w.String() == err.Error() {
		return w
	}
	return evidence.Warning{Offset: -1, Msg: err.Error()}
}

// warn adds a warning about the checkpoint, up to maxWarnings.
func (cp *Checkpoint) warn(err error) {
	cp.addWarning(warningOf(err))
}

func (cp *Checkpoint) addWarning(w evidence.Warning) {
	if len(cp.Warnings) < maxWarnings {
		cp.Warnings = append(cp.Warnings, w)
	}
}
