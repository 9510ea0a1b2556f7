package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxWidth is the widest line of the default report, in columns: it reads
// in a 100-column terminal without wrapping. Every character the report
// prints is one column wide (ASCII, "§", "…"), so columns are runes.
const maxWidth = 100

// labelWidth caps the SCENARIO column; a longer label is cut with "…"
// (the -v report shows it whole).
const labelWidth = 40

// writeReport writes what the tour found and returns the counts. By
// default each scenario gets two lines that fit maxWidth: its verdict,
// label and outcome, and what it shows. verbose adds what the server asked
// and what reauth sent, without a width limit.
func writeReport(w io.Writer, url string, results []result, verbose bool) (summary, error) {
	var sum summary
	for _, r := range results {
		sum.total++
		switch {
		case r.pending:
			sum.pending++
		case len(r.differs) > 0:
			sum.differ++
		default:
			sum.asDesigned++
		}
	}
	out := &errWriter{w: w}
	intro := fmt.Sprintf("reauth tour: every scenario of the mock server (in-process at %s) through a "+
		"reauth.Transport, checked against the status table of DESIGN.md.", url)
	if verbose {
		out.printf("%s\n\n", wrap(intro+` "reauth did" is each request as the server saw it, `+
			`"credentials status"; "|" separates calls on the same Transport.`, maxWidth, ""))
		writeDetail(out, results)
	} else {
		out.printf("%s\n\n", wrap(intro+" Run with -v for what the server asked and what reauth sent.", maxWidth, ""))
		writeLines(out, results)
	}

	if sum.differ > 0 {
		out.printf("\n")
		for _, r := range results {
			for _, d := range r.differs {
				line := fmt.Sprintf("DIFFERS %s: %s", r.sc.label(), d)
				if !verbose {
					line = wrap(line, maxWidth, "    ")
				}
				out.printf("%s\n", line)
			}
		}
	}
	out.printf("\n%d scenarios: %d as DESIGN.md says, %d not yet supported, %d differ\n",
		sum.total, sum.asDesigned, sum.pending, sum.differ)
	return sum, out.err
}

// verdict is how a row compares with DESIGN.md.
func verdict(r result) string {
	switch {
	case r.pending:
		return "unsupported" // "needs …" says what is missing
	case len(r.differs) > 0:
		return "DIFFERS"
	}
	return "as designed"
}

// writeLines is the default report: per scenario a line of three columns
// and, indented below it, what the scenario shows.
func writeLines(out *errWriter, results []result) {
	type row struct{ verdict, label, outcome, shows string }
	rows := make([]row, len(results))
	vw, lw := utf8.RuneCountInString("DESIGN.md"), utf8.RuneCountInString("SCENARIO")
	for i, r := range results {
		rows[i] = row{verdict(r), cut(r.sc.label(), labelWidth), shortOutcome(r), r.sc.shows}
		vw = max(vw, utf8.RuneCountInString(rows[i].verdict))
		lw = max(lw, utf8.RuneCountInString(rows[i].label))
	}
	ow := maxWidth - vw - 2 - lw - 2 // the outcome is the last column: what is left
	out.printf("%-*s  %-*s  %s\n", vw, "DESIGN.md", lw, "SCENARIO", "OUTCOME")
	for _, r := range rows {
		out.printf("%-*s  %-*s  %s\n", vw, r.verdict, lw, r.label, cut(r.outcome, ow))
		if r.shows != "" {
			indent := strings.Repeat(" ", vw+4)
			out.printf("%s\n", wrap(indent+r.shows, maxWidth, indent))
		}
	}
}

// writeDetail is the -v report: a block per scenario with every detail.
func writeDetail(out *errWriter, results []result) {
	for i, r := range results {
		if i > 0 {
			out.printf("\n")
		}
		out.printf("%s: %s\n", r.sc.label(), verdict(r))
		for _, f := range []struct{ name, v string }{
			{"shows", r.sc.shows},
			{"server asked", asked(r)},
			{"reauth did", did(r)},
			{"outcome", outcome(r)},
		} {
			if f.v != "" {
				out.printf("  %-12s  %s\n", f.name, f.v)
			}
		}
	}
}

// cut shortens s to at most n runes, ending it with "…" when it was longer.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string([]rune(s)[:n-1]) + "…"
}

// wrap breaks s at spaces into lines of at most width runes. The first
// line keeps s's leading spaces; the others start with indent. A word longer
// than a line is cut across lines.
func wrap(s string, width int, indent string) string {
	if utf8.RuneCountInString(indent) >= width/2 {
		indent = "" // so that every line makes progress
	}
	rest := strings.TrimLeft(s, " ")
	line, empty := s[:len(s)-len(rest)], true
	var lines []string
	for _, word := range strings.Fields(rest) {
		if !empty && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width {
			lines = append(lines, line)
			line, empty = indent, true
		}
		if !empty {
			line += " "
		}
		line, empty = line+word, false
		for utf8.RuneCountInString(line) > width {
			r := []rune(line)
			lines = append(lines, string(r[:width]))
			line = indent + string(r[width:])
		}
	}
	return strings.Join(append(lines, line), "\n")
}

// errWriter keeps the first write error, so that the report is written
// without a check after every line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
