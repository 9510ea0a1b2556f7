// Command tour shows what reauth does, on its own mock server: it starts the
// server in-process, runs every scenario through a reauth Transport and prints
// a table of what the server asked, what reauth did and how it ended.
//
//	go run ./examples/tour
//
// Each outcome is checked against DESIGN.md, status table; the command
// exits with status 1 if any differs. Scenarios whose credentials are not in
// reauth yet are listed as not yet supported instead of being faked.
package main

import (
	"fmt"
	"os"
)

func main() {
	sum, err := run(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tour:", err)
		os.Exit(2)
	}
	if sum.differ > 0 {
		os.Exit(1)
	}
}
