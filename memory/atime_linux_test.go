package memory

import (
	"os"
	"syscall"
	"time"
)

func statAtime(st os.FileInfo) time.Time {
	s := st.Sys().(*syscall.Stat_t)
	return time.Unix(s.Atim.Sec, s.Atim.Nsec).UTC()
}
