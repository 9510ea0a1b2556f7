// Command bench measures what reauth costs against what Go users write by
// hand (bare net/http, oauth2.Transport, go-retryablehttp) and against the
// challenge and digest code they use today, side by side in one run on one
// machine.
//
// Every figure is a median over repeated paired runs (A B A B …) and is
// reported as a ratio to its baseline measured in the same run, with
// absolute figures beside it. See BENCHMARKS.md at the root of the
// repository for what each section measures and its target.
//
//	cd bench && go run .                 # everything, about three minutes
//	cd bench && go run . -quick          # a smoke run for CI, about twenty seconds
//	cd bench && go run . -sections 1,4   # some sections only
//	cd bench && go run . -md             # markdown tables, for BENCHMARKS.md
//
// Everything runs on 127.0.0.1 and stops by itself.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// config is the command line.
type config struct {
	duration    time.Duration // one measured run of a throughput pair member
	pairs       int           // paired runs per figure of section 1
	benchPairs  int           // paired runs per figure of sections 2, 4, 5 (6: at most 3)
	concurrency []int         // client goroutines for section 1
	storm       []int         // concurrent requests for section 4
	benchtime   time.Duration // testing.Benchmark run time (sections 2 and 5)
	uploadMiB   int           // section 6 body size
	sections    map[int]bool
	quick       bool
	markdown    bool
	cpuProfile  string
	memProfile  string

	// child mode: the process is a client of section 6 whose peak RSS the
	// parent reads.
	child     string
	childURL  string
	childSize int64
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if cfg.child != "" {
		if err := runUploadChild(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := &config{}
	var conc, storm, sections string
	fs.DurationVar(&cfg.duration, "duration", 100*time.Millisecond, "length of one measured throughput run (section 1)")
	fs.IntVar(&cfg.pairs, "pairs", 15, "paired runs (A B) per figure of section 1; the median is reported")
	fs.IntVar(&cfg.benchPairs, "bench-pairs", 7, "paired runs per figure of sections 2, 4 and 5 (section 6 uses at most 3)")
	fs.StringVar(&conc, "concurrency", "1,64", "concurrent clients for section 1, comma-separated")
	fs.StringVar(&storm, "storm", "1,10,100,1000", "concurrent requests after a revocation for section 4, comma-separated")
	fs.DurationVar(&cfg.benchtime, "benchtime", 150*time.Millisecond, "run time of each testing.Benchmark (sections 2 and 5)")
	fs.IntVar(&cfg.uploadMiB, "upload", 100, "upload size in MiB for section 6")
	fs.StringVar(&sections, "sections", "1,2,3,4,5,6,7", "sections to run, comma-separated")
	fs.BoolVar(&cfg.quick, "quick", false, "a short smoke run (~20 s) that proves every section builds and runs; figures are rough")
	fs.BoolVar(&cfg.markdown, "md", false, "print markdown tables")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&cfg.memProfile, "memprofile", "", "write an allocation profile of the whole run to this file")
	fs.StringVar(&cfg.child, "child", "", "internal: run as the section 6 client with this variant")
	fs.StringVar(&cfg.childURL, "child-url", "", "internal: server URL for -child")
	fs.Int64Var(&cfg.childSize, "child-size", 0, "internal: body size for -child")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.concurrency, err = intList(conc); err != nil {
		return nil, fmt.Errorf("-concurrency: %w", err)
	}
	if cfg.storm, err = intList(storm); err != nil {
		return nil, fmt.Errorf("-storm: %w", err)
	}
	secs, err := intList(sections)
	if err != nil {
		return nil, fmt.Errorf("-sections: %w", err)
	}
	cfg.sections = map[int]bool{}
	for _, s := range secs {
		if s < 1 || s > 7 {
			return nil, fmt.Errorf("-sections: no section %d (1 to 7)", s)
		}
		cfg.sections[s] = true
	}
	if cfg.pairs < 1 || cfg.benchPairs < 1 || cfg.duration <= 0 || cfg.benchtime <= 0 || cfg.uploadMiB < 1 {
		return nil, fmt.Errorf("-pairs, -duration, -benchtime and -upload must be positive")
	}
	if cfg.quick {
		// Enough to exercise every path, not to resolve a few percent.
		cfg.duration = 50 * time.Millisecond
		cfg.pairs = 3
		cfg.benchPairs = 3
		cfg.benchtime = 20 * time.Millisecond
		cfg.storm = []int{1, 10, 100}
		cfg.uploadMiB = 16
	}
	return cfg, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

// section is one numbered part of the run.
type section struct {
	n     int
	title string
	run   func(cfg *config) ([]*table, []verdict, error)
}

var sections = []section{
	{1, "Happy-path overhead: keep-alive GETs over loopback, credentials cached", runThroughput},
	{2, "Allocations per RoundTrip over a no-op base (testing.Benchmark)", runAllocs},
	{3, "Round trips per logical request in steady state, counted at the server", runRoundTrips},
	{4, "Refresh storm: revoke the token, then N concurrent requests", runStorm},
	{5, "Challenge parsing and digest computation vs the parsers Go users have today", runParsers},
	{6, "Peak RSS under a large upload that needs a retry (GetBody present)", runUpload},
	{7, "DPoP proofs (RFC 9449) vs the bare signature with the same key", runDPoP},
}

func run(cfg *config, w io.Writer) error {
	// testing.Benchmark reads its run time from the testing flags.
	testing.Init()
	if err := flagSet("test.benchtime", cfg.benchtime.String()); err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.memProfile != "" {
		runtime.MemProfileRate = 512
		defer writeMemProfile(cfg.memProfile)
	}

	start := time.Now()
	printMachine(w, cfg)
	var all []verdict
	for _, s := range sections {
		if !cfg.sections[s.n] {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: section %d: %s …\n", s.n, s.title)
		t0 := time.Now()
		tables, verdicts, err := s.run(cfg)
		if err != nil {
			return fmt.Errorf("section %d: %w", s.n, err)
		}
		heading(w, cfg.markdown, fmt.Sprintf("%d. %s", s.n, s.title))
		for _, t := range tables {
			t.print(w, cfg.markdown)
		}
		for i := range verdicts {
			verdicts[i].section = s.n
		}
		all = append(all, verdicts...)
		fmt.Fprintf(os.Stderr, "bench: section %d done in %s\n", s.n, time.Since(t0).Round(100*time.Millisecond))
	}
	summary := &table{header: []string{"§", "target", "result", "met"}}
	for _, v := range all {
		met := "yes"
		if !v.met {
			met = "NO"
		}
		summary.add(strconv.Itoa(v.section), v.target, v.result, met)
	}
	heading(w, cfg.markdown, "Targets")
	summary.print(w, cfg.markdown)
	fmt.Fprintf(w, "\nTotal run time: %s\n", time.Since(start).Round(time.Second))
	return nil
}

func flagSet(name, value string) error {
	return flag.CommandLine.Set(name, value)
}

func writeMemProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return
	}
	defer f.Close()
	_ = pprof.Lookup("allocs").WriteTo(f, 0)
}

// printMachine says where and how the figures were taken.
func printMachine(w io.Writer, cfg *config) {
	mode := "full"
	if cfg.quick {
		mode = "quick (-quick): rough figures"
	}
	lines := []string{
		"date: " + time.Now().UTC().Format("2006-01-02 15:04 MST"),
		fmt.Sprintf("machine: %s, %d logical CPUs (nproc), GOMAXPROCS %d", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0)),
		fmt.Sprintf("go: %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("run: %s; section 1: %d pairs of %s runs; sections 2, 4, 5: %d pairs, benchtime %s", mode, cfg.pairs, cfg.duration, cfg.benchPairs, cfg.benchtime),
	}
	if cfg.markdown {
		for _, l := range lines {
			fmt.Fprintf(w, "- %s\n", l)
		}
		return
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
