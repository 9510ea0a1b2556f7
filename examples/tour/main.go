// Command tour shows what reauth does, on its own mock server: it starts the
// server in-process, runs every scenario through a reauth Transport and prints,
// for each, how it ended and what it shows, in lines that fit 100 columns.
//
//	go run ./examples/tour       # one line per scenario, and what it shows
//	go run ./examples/tour -v    # also what the server asked and what reauth sent
//
// Each outcome is checked against DESIGN.md, status table; the command
// exits with status 1 if any differs. Scenarios whose credentials are not in
// reauth yet are listed as not yet supported instead of being faked.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() { os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr)) }

// cli runs the tour as args ask and returns the exit status: 0 when every
// scenario is as designed (or for -h, which prints the usage), 1 when one
// differs, 2 for a bad flag or a mock server that does not start.
func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tour", flag.ContinueOnError)
	fs.SetOutput(stdout)
	verbose := fs.Bool("v", false, "show every detail: what the server asked, what reauth sent, the full errors")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: go run ./examples/tour [-v]")
		fmt.Fprintln(fs.Output(), "Runs every scenario of reauth's mock server (started in-process) through a")
		fmt.Fprintln(fs.Output(), "reauth.Transport and checks each outcome against DESIGN.md, status table.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tour: unexpected arguments %q (see -h)\n", fs.Args())
		return 2
	}
	sum, err := run(stdout, *verbose)
	if err != nil {
		fmt.Fprintln(stderr, "tour:", err)
		return 2
	}
	if sum.differ > 0 {
		return 1
	}
	return 0
}
