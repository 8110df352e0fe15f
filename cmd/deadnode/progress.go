package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// isTerminal says whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progress draws a one-line progress bar on stderr, only when stderr is a
// terminal; elsewhere it is silent.
type progress struct {
	w     io.Writer
	label string
	total int64
	done  int64
	last  time.Time
}

func (a *app) newProgress(label string, total int64) *progress {
	p := &progress{label: label, total: total}
	if f, ok := a.stderr.(*os.File); ok && isTerminal(f) {
		p.w = f
	}
	return p
}

// Start sets the bar's label and total.
func (p *progress) Start(label string, total int64) {
	p.label, p.total, p.done = label, total, 0
}

// Set moves the bar to done of total units.
func (p *progress) Set(done, total int64) {
	p.done, p.total = done, total
	if p.w == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

// Add advances the bar by n units.
func (p *progress) Add(n int64) {
	p.done += n
	if p.w == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	if p.total > 0 {
		pct := float64(p.done) / float64(p.total)
		if pct > 1 {
			pct = 1
		}
		n := int(pct * 30)
		bar := make([]byte, 30)
		for i := range bar {
			bar[i] = ' '
			if i < n {
				bar[i] = '='
			}
		}
		fmt.Fprintf(p.w, "\r%s [%s] %3.0f%%", p.label, bar, pct*100)
		return
	}
	fmt.Fprintf(p.w, "\r%s %d", p.label, p.done)
}

// Done clears the bar.
func (p *progress) Done() {
	if p.w != nil {
		fmt.Fprintf(p.w, "\r\033[K")
	}
}
