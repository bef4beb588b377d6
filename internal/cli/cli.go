// Package cli holds what carbondesk's client commands share to talk to
// people and to scripts: aligned tables whose columns stay aligned with
// Chinese text in them, protojson output, readable gRPC errors and a
// progress display. It knows nothing of the services; cmd/carbondesk
// builds the commands.
package cli

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/width"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Width is how many terminal cells s takes: two for East Asian wide and
// fullwidth characters (Chinese text), one for the rest.
func Width(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// Truncate cuts s to at most max cells, marking a cut with "…".
func Truncate(s string, max int) string {
	if max <= 0 || Width(s) <= max {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		w := Width(string(r))
		if n+w > max-1 {
			break
		}
		b.WriteRune(r)
		n += w
	}
	return b.String() + "…"
}

// Table collects rows and writes them with aligned columns.
type Table struct {
	rows [][]string
}

// NewTable starts a table with its header.
func NewTable(header ...string) *Table {
	return &Table{rows: [][]string{header}}
}

// Row adds a row; values are formatted with %v.
func (t *Table) Row(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = strings.ReplaceAll(fmt.Sprint(c), "\n", " ")
	}
	t.rows = append(t.rows, row)
}

// Len is the number of rows, the header left out.
func (t *Table) Len() int { return len(t.rows) - 1 }

// Write prints the table to w, columns separated by two spaces and padded
// by display width, the last column unpadded.
func (t *Table) Write(w io.Writer) error {
	var widths []int
	for _, row := range t.rows {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], Width(c))
		}
	}
	var b strings.Builder
	for _, row := range t.rows {
		for i, c := range row {
			b.WriteString(c)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-Width(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	out := strings.ReplaceAll(b.String(), " \n", "\n")
	for strings.Contains(out, " \n") {
		out = strings.ReplaceAll(out, " \n", "\n")
	}
	_, err := io.WriteString(w, out)
	return err
}

// JSON writes m as indented protojson: one object, for scripts.
func JSON(w io.Writer, m proto.Message) error {
	data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// JSONLine writes m as protojson on one line: a line of NDJSON.
func JSONLine(w io.Writer, m proto.Message) error {
	data, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}
