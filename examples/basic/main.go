// Command basic calls a resource protected by HTTP Basic authentication
// (RFC 7617) through a reauth.Transport, twice, and prints what happened:
// the first call is challenged and answered, the second carries the
// credentials up front.
//
//	go run ./examples/basic                    # the bundled mock server, in-process
//	go run ./examples/basic -url https://api.example.com/v1/me -user me -password "$PASSWORD"
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/examples/internal/show"
	"github.com/reauth/reauth/mockserver"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "basic:", err)
		}
		os.Exit(1)
	}
}

// run parses args, calls the URL twice and writes what happened to w. A
// refusal comes back as reauth's typed error: errors.Is(err,
// reauth.ErrUnauthorized), errors.As(err, &forbidden), … It holds no secret.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("basic", flag.ContinueOnError)
	fs.SetOutput(w)
	target := fs.String("url", "", "URL to GET (default: /basic/ of the mock server, started in-process)")
	user := fs.String("user", "alice", "user-id")
	password := fs.String("password", "wonderland", "password (the default is the mock server's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var srv *mockserver.Server
	if *target == "" {
		srv = mockserver.New(mockserver.DefaultConfig())
		defer srv.Close()
		*target = srv.URL() + "/basic/"
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q is not an absolute URL", *target)
	}

	client := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.Basic(*user, *password),
		Origins:     []string{u.Scheme + "://" + u.Host}, // the credentials go here and nowhere else
		OnEvent:     show.Events(w),
	}}
	for i := 1; i <= 2; i++ {
		fmt.Fprintf(w, "call %d: GET %s\n", i, u.Redacted())
		resp, err := client.Get(u.String())
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
	}
	if srv != nil {
		show.Requests(w, srv, u.Path)
	}
	return nil
}
