package overlay

import (
	"errors"
	"fmt"
	"os"

	"github.com/deadnode/deadnode/internal/ptr"
	"golang.org/x/sys/unix"
)

// MountOptions tune Mount.
type MountOptions struct {
	// Userxattr reads user.overlay.* instead of trusted.overlay.* (and
	// then the kernel refuses redirect_dir and metacopy).
	Userxattr bool
}

// Mount mounts the host directories lowers (upper first; for a read-only
// view a container's upper layer is simply the first lower) as a
// read-only kernel overlay at target. Each layer is handed to the kernel
// on its own ("lowerdir+", Linux 6.8+) through the new mount API, so the
// page-size limit of the one-string lowerdir option never applies: a
// container of several hundred layers mounts. Needs CAP_SYS_ADMIN. The mount is nosuid,
// nodev, noexec and read-only, and follows redirects and metacopy as the
// pure-Go view does.
func Mount(target string, lowers []string, opt *MountOptions) error {
	ls := make([]mountLayer, len(lowers))
	for i, l := range lowers {
		ls[i].path = l
	}
	return mount(target, ls, opt)
}

// MountFDs is Mount with each layer given as a directory descriptor (an
// O_PATH descriptor opened inside the evidence, see
// evidence.Dir.OpenDirFD), so that no layer path is resolved by the kernel
// from the host's namespace: a layer that is a link to the host's /etc
// can never be mounted. The target is the caller's to check.
func MountFDs(target string, lowers []*os.File, opt *MountOptions) error {
	ls := make([]mountLayer, len(lowers))
	for i, l := range lowers {
		ls[i].fd = l
	}
	return mount(target, ls, opt)
}

type mountLayer struct {
	path string
	fd   *os.File
}

func mount(target string, lowers []mountLayer, opt *MountOptions) error {
	if len(lowers) == 0 {
		return errors.New("overlay mount: no layers")
	}
	o := ptr.Value(opt)
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("overlay mount: fsopen: %w", err)
	}
	defer unix.Close(fsfd)
	set := func(k, v string) error {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
			return fmt.Errorf("overlay mount: %s=%s: %w", k, v, err)
		}
		return nil
	}
	for _, l := range lowers {
		if l.fd != nil {
			// The layer as a descriptor opened inside the evidence: the
			// kernel takes it as it is, following no path (Linux 6.13+;
			// older kernels resolve the descriptor's /proc magic link,
			// which names the same directory).
			if err := unix.FsconfigSetFd(fsfd, "lowerdir+", int(l.fd.Fd())); err != nil {
				if err := set("lowerdir+", fmt.Sprintf("/proc/self/fd/%d", l.fd.Fd())); err != nil {
					return err
				}
			}
			continue
		}
		if err := set("lowerdir+", l.path); err != nil {
			return err
		}
	}
	if o.Userxattr {
		if err := unix.FsconfigSetFlag(fsfd, "userxattr"); err != nil {
			return fmt.Errorf("overlay mount: userxattr: %w", err)
		}
	} else {
		if err := set("redirect_dir", "follow"); err != nil {
			return err
		}
		if err := set("metacopy", "on"); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("overlay mount: create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("overlay mount: fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("overlay mount: move_mount to %s: %w", target, err)
	}
	return nil
}
