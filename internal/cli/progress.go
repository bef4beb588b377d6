package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Progress shows how far a long job is: a redrawn bar when w is a
// terminal, otherwise one plain line when a phase starts and ends, so logs
// stay readable.
type Progress struct {
	w     io.Writer
	tty   bool
	label string
	done  int
	total int
}

// NewProgress writes to w, drawing a bar if w is a terminal.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, tty: IsTerminal(w)}
}

// IsTerminal reports whether w is a character device, such as a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Start begins a phase of total steps.
func (p *Progress) Start(label string, total int) {
	p.label, p.done, p.total = label, 0, total
	if p.tty {
		p.draw()
		return
	}
	fmt.Fprintf(p.w, "%s: %d to load\n", label, total)
}

// Step records one step done.
func (p *Progress) Step() {
	p.done++
	if p.tty {
		p.draw()
	}
}

// Finish ends the phase with a summary.
func (p *Progress) Finish(summary string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%-14s %s\n", p.label, summary)
		return
	}
	fmt.Fprintf(p.w, "%s: %s\n", p.label, summary)
}

func (p *Progress) draw() {
	const cells = 30
	filled := 0
	if p.total > 0 {
		filled = p.done * cells / p.total
	}
	fmt.Fprintf(p.w, "\r\033[K%-14s [%s%s] %d/%d", p.label,
		strings.Repeat("#", filled), strings.Repeat(".", cells-filled), p.done, p.total)
}
