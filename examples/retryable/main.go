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
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/examples/internal/show"
	"github.com/reauth/reauth/mockserver"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "retryable:", err)
		}
		os.Exit(1)
	}
}

// run parses args, calls the URL once through NewClient and writes each
// attempt to w.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("retryable", flag.ContinueOnError)
	fs.SetOutput(w)
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
		OnEvent:     show.Events(w),
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
		show.Requests(w, srv, u.Path)
	}
	return nil
}
