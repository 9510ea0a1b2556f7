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
	"github.com/reauth/reauth/mockserver"
)

func main() { os.Exit(exitCode(run(os.Args[1:], os.Stdout), os.Stderr)) }

// exitCode reports err on stderr and returns the exit status: 0 on success
// and for -h, which asks for the usage (run has printed it), 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "basic:", err)
	return 1
}

// run parses args, calls the URL twice and writes what happened to w. A
// refusal comes back as reauth's typed error: errors.Is(err,
// reauth.ErrUnauthorized), errors.As(err, &forbidden), … It holds no secret.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("basic", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: basic [-url URL] [-user USER] [-password PASSWORD]")
		fmt.Fprintln(fs.Output(), "Calls URL twice through a reauth.Transport with Basic credentials and prints")
		fmt.Fprintln(fs.Output(), "what the server asked and what reauth did. Without -url it starts reauth's mock")
		fmt.Fprintln(fs.Output(), "server in-process and calls its /basic/ scenario as alice.")
		fs.PrintDefaults()
	}
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
		OnEvent:     events(w),
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
		printRequests(w, srv, u.Path)
	}
	return nil
}

// events returns a Transport.OnEvent that writes each decision reauth takes
// to w. Events carry no credential values, so nothing here is secret.
func events(w io.Writer) func(reauth.Event) {
	return func(e reauth.Event) {
		switch e.Kind {
		case reauth.EventChallenge:
			chs := make([]string, len(e.Challenges))
			for i, c := range e.Challenges {
				chs[i] = c.Scheme
				if alg := c.Params["algorithm"]; alg != "" {
					chs[i] += " " + alg
				}
			}
			fmt.Fprintf(w, "  server: %d, challenges: %s\n", e.StatusCode, strings.Join(chs, ", "))
		case reauth.EventRetry:
			fmt.Fprintf(w, "  reauth: retrying with %s credentials\n", e.Scheme)
		case reauth.EventGiveUp:
			fmt.Fprintf(w, "  reauth: giving up: %v\n", e.Err)
		case reauth.EventForbidden:
			fmt.Fprintf(w, "  reauth: 403 is final, not retried\n")
		}
	}
}

// printRequests writes the requests the mock server logged under prefix:
// the credentials each carried, as the server's log redacts them, and the
// status it sent.
func printRequests(w io.Writer, srv *mockserver.Server, prefix string) {
	reqs := srv.RequestsTo(prefix)
	fmt.Fprintf(w, "the mock server saw %d request(s):\n", len(reqs))
	for _, r := range reqs {
		cred := r.Credential
		if cred == "" {
			cred = "no credentials"
		}
		fmt.Fprintf(w, "  %s %s -> %d  (%s)\n", r.Method, r.Path, r.Status, cred)
	}
}
