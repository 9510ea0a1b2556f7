// Command retryable calls a URL through reauth.NewClient: go-retryablehttp's
// backoff for 429, 5xx and network errors, honouring Retry-After, over a
// reauth.Transport that answers the auth challenges. An auth failure (401
// after reauth's own retry, 403) is never retried by the backoff.
//
//	go run ./examples/retryable                # /status/503/ of the bundled mock server: 503, 503, then 200
//	go run ./examples/retryable -url https://api.example.com/v1/items -user me -password "$PASSWORD"
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
	"time"

	"github.com/hashicorp/go-retryablehttp"

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
	fmt.Fprintln(stderr, "retryable:", err)
	return 1
}

// run parses args, calls the URL once through NewClient and writes each
// attempt to w.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("retryable", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: retryable [-url URL] [-user USER] [-password PASSWORD] [-retries N]")
		fmt.Fprintln(fs.Output(), "Calls URL once through reauth.NewClient and prints each attempt. Without -url")
		fmt.Fprintln(fs.Output(), "it starts reauth's mock server in-process and calls /status/503/, which answers")
		fmt.Fprintln(fs.Output(), "503 with Retry-After twice, then 200.")
		fs.PrintDefaults()
	}
	target := fs.String("url", "", "URL to GET (default: /status/503/ of the mock server, started in-process)")
	user := fs.String("user", "alice", "Basic user-id, answered when the server challenges")
	password := fs.String("password", "wonderland", "Basic password (the default is the mock server's)")
	retries := fs.Int("retries", 4, "retries after the first attempt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var srv *mockserver.Server
	if *target == "" {
		srv = mockserver.New(mockserver.DefaultConfig()) // two 503s with Retry-After: 1, then 200
		defer srv.Close()
		*target = srv.URL() + "/status/503/"
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q is not an absolute URL", *target)
	}

	client := reauth.NewClient(&reauth.Transport{
		Credentials: reauth.Basic(*user, *password),
		Origins:     []string{u.Scheme + "://" + u.Host},
		OnEvent:     events(w),
	})
	client.RetryMax = *retries
	client.RetryWaitMin, client.RetryWaitMax = 100*time.Millisecond, 2*time.Second // Retry-After, when sent, wins
	client.RequestLogHook = func(_ retryablehttp.Logger, r *http.Request, attempt int) {
		fmt.Fprintf(w, "attempt %d: %s %s\n", attempt+1, r.Method, r.URL.Redacted())
	}
	client.ResponseLogHook = func(_ retryablehttp.Logger, resp *http.Response) {
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			fmt.Fprintf(w, "  %s, Retry-After: %s\n", resp.Status, ra)
		}
	}

	resp, err := client.Get(u.String())
	if err != nil {
		// reauth's typed errors come through: errors.Is(err, reauth.ErrForbidden), …
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	fmt.Fprintf(w, "  %s\n", resp.Status)
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
