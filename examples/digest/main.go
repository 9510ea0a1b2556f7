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
	"github.com/reauth/reauth/examples/internal/show"
	"github.com/reauth/reauth/mockserver"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "digest:", err)
		}
		os.Exit(1)
	}
}

// run parses args, calls the URL three times and writes what happened to w.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("digest", flag.ContinueOnError)
	fs.SetOutput(w)
	target := fs.String("url", "", "URL to GET (default: /digest/strongest/ of the mock server, started in-process, which offers SHA-512-256, SHA-256 and MD5)")
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
		OnEvent:     show.Events(w),
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
		show.Requests(w, srv, u.Path)
	}
	return nil
}
