package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// verdict is one target of the issue, met or not, with the figure that
// decides it.
type verdict struct {
	section int
	target  string
	result  string
	met     bool
}

// paired runs a and b n times each, in pairs run one right after the
// other, and returns what each run measured, pair by pair. Every other pair
// runs B first (A B, B A, A B, …), so that neither side is always the one
// that runs after the other: a drift of a shared, noisy machine falls on
// both alike.
func paired(n int, a, b func() (float64, error)) (as, bs []float64, err error) {
	for i := range n {
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		v1, err := first()
		if err != nil {
			return nil, nil, err
		}
		v2, err := second()
		if err != nil {
			return nil, nil, err
		}
		if i%2 == 1 {
			v1, v2 = v2, v1
		}
		as, bs = append(as, v1), append(bs, v2)
	}
	return as, bs, nil
}

// ratios returns b[i]/a[i] for each pair.
func ratios(as, bs []float64) []float64 {
	out := make([]float64, len(as))
	for i := range as {
		out[i] = bs[i] / as[i]
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// percentile returns the p-th percentile (0..100) of xs, nearest rank.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func fmtRatio(r float64) string { return fmt.Sprintf("%.3f×", r) }

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d.Nanoseconds())/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d.Nanoseconds())/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtNs(ns float64) string { return fmtDur(time.Duration(ns)) }

// table is one printed table: aligned text, or markdown with -md.
type table struct {
	title  string
	header []string
	rows   [][]string
	notes  []string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

func heading(w io.Writer, md bool, s string) {
	if md {
		fmt.Fprintf(w, "\n### %s\n\n", s)
		return
	}
	fmt.Fprintf(w, "\n== %s\n\n", s)
}

func (t *table) print(w io.Writer, md bool) {
	if t.title != "" {
		if md {
			fmt.Fprintf(w, "%s\n\n", t.title)
		} else {
			fmt.Fprintf(w, "%s\n", t.title)
		}
	}
	if md {
		fmt.Fprintf(w, "| %s |\n", strings.Join(t.header, " | "))
		seps := make([]string, len(t.header))
		for i := range seps {
			seps[i] = "---"
		}
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, r := range t.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
		if len(t.notes) > 0 {
			fmt.Fprintln(w)
			for _, n := range t.notes {
				fmt.Fprintf(w, "%s\n", n)
			}
		}
		fmt.Fprintln(w)
		return
	}
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = runeLen(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], runeLen(c))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-runeLen(c)))
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.header)
	rule := make([]string, len(t.header))
	for i := range rule {
		rule[i] = strings.Repeat("-", widths[i])
	}
	line(rule)
	for _, r := range t.rows {
		line(r)
	}
	for _, n := range t.notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
	fmt.Fprintln(w)
}

func runeLen(s string) int { return len([]rune(s)) }
