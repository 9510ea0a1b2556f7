// Command digest calls a resource protected by HTTP Digest authentication
// (RFC 7616) through a reauth.Transport, three times, and prints what
// happened: the first call answers the strongest challenge the server
// offers, the next ones answer up front with the same nonce and the next
// nonce count, one request each.
//
//	go run ./examples/digest                   # the bundled mock server, in-process
//	go run ./examples/digest -url https://intranet.example.com/private/ -user me -password "$PASSWORD" -no-md5
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
	fmt.Fprintln(stderr, "digest:", err)
	return 1
}

// run parses args, calls the URL three times and writes what happened to w.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("digest", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: digest [-url URL] [-user USER] [-password PASSWORD] [-no-md5]")
		fmt.Fprintln(fs.Output(), "Calls URL three times through a reauth.Transport with Digest credentials and")
		fmt.Fprintln(fs.Output(), "prints what the server asked, what reauth answered and what the server logged.")
		fmt.Fprintln(fs.Output(), "Without -url it starts reauth's mock server in-process and calls /digest/.")
		fs.PrintDefaults()
	}
	target := fs.String("url", "", "URL to GET (default: /digest/ of the mock server, started in-process)")
	user := fs.String("user", "alice", "user name")
	password := fs.String("password", "wonderland", "password (the default is the mock server's)")
	noMD5 := fs.Bool("no-md5", false, "refuse MD5 and MD5-sess challenges (RFC 7616 §3.3 keeps MD5 only for old servers)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var srv *mockserver.Server
	if *target == "" {
		srv = mockserver.New(mockserver.DefaultConfig())
		defer srv.Close()
		*target = srv.URL() + "/digest/strongest/"
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q is not an absolute URL", *target)
	}

	client := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.DigestWithOptions(*user, *password, reauth.DigestOptions{DisallowMD5: *noMD5}),
		Origins:     []string{u.Scheme + "://" + u.Host},
		OnEvent:     events(w),
	}}
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(w, "call %d: GET %s\n", i, u.Redacted())
		resp, err := client.Get(u.String())
		if err != nil {
			// errors.Is(err, reauth.ErrDigestRspauth) when the server could
			// not prove that it knows the password (RFC 7616 §3.5).
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
