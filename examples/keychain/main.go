// Command keychain calls URLs through a reauth.Transport whose only
// credentials are those the user already keeps: a .netrc file, the go
// command's GOAUTH helpers and Docker's config.json. Each origin gets what
// the keychains hold for it, and nothing else does.
//
//	go run ./examples/keychain                 # the bundled mock server, in-process, with a temporary .netrc
//	go run ./examples/keychain -url https://api.example.com/v1/me   # $NETRC or ~/.netrc, $GOAUTH, ~/.docker/config.json
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
	fmt.Fprintln(stderr, "keychain:", err)
	return 1
}

// run parses args, calls each URL through one Transport and writes what
// happened to w. Nothing it writes is secret: events and errors carry no
// credential values.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("keychain", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: keychain [-url URL]... [-netrc FILE]")
		fmt.Fprintln(fs.Output(), "GETs each URL through a reauth.Transport whose credentials come from the")
		fmt.Fprintln(fs.Output(), ".netrc file, $GOAUTH and Docker's config.json, per origin. Without -url it")
		fmt.Fprintln(fs.Output(), "starts reauth's mock server in-process, writes a temporary .netrc with alice's")
		fmt.Fprintln(fs.Output(), "login for it, and calls its /basic/ scenario (and a redirect to another origin).")
		fs.PrintDefaults()
	}
	var urls []string
	fs.Func("url", "URL to GET (repeat for several)", func(s string) error { urls = append(urls, s); return nil })
	netrc := fs.String("netrc", "", "the .netrc file (default: $NETRC, else ~/.netrc; a temporary one for the mock)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	var srv *mockserver.Server
	if len(urls) == 0 {
		srv = mockserver.New(mockserver.DefaultConfig())
		defer srv.Close()
		if *netrc == "" {
			dir, err := os.MkdirTemp("", "keychain-example")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			*netrc = filepath.Join(dir, ".netrc")
			// .netrc names hosts: the mock listens on 127.0.0.1.
			if err := os.WriteFile(*netrc, []byte("machine 127.0.0.1 login alice password wonderland\n"), 0o600); err != nil {
				return err
			}
		}
		// The same server as localhost is another origin, with no login.
		other := strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)
		urls = []string{srv.URL() + "/basic/", srv.URL() + "/basic/", other + "/basic/"}
	}

	netrcKC, err := reauth.NetrcKeychain(*netrc)
	if err != nil {
		return err
	}
	keychains := []reauth.Keychain{netrcKC}
	if spec := os.Getenv("GOAUTH"); spec != "" && srv == nil {
		kc, err := reauth.GOAUTHKeychain(spec)
		if err != nil {
			return err
		}
		keychains = append(keychains, kc)
	}
	if srv == nil {
		kc, err := reauth.DockerKeychain("")
		if err != nil {
			return err
		}
		keychains = append(keychains, kc)
	}

	client := &http.Client{Transport: &reauth.Transport{
		Keychain: reauth.Keychains(keychains...), // credentials per origin, bound to it
		OnEvent:  events(w),
	}}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-url %q is not an absolute URL", raw)
		}
		fmt.Fprintf(w, "GET %s\n", u.Redacted())
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
		reqs := srv.RequestsTo("/basic/")
		fmt.Fprintf(w, "the mock server saw %d request(s):\n", len(reqs))
		for _, r := range reqs {
			cred := r.Credential
			if cred == "" {
				cred = "no credentials"
			}
			fmt.Fprintf(w, "  %s %s -> %d  (%s)\n", r.Method, r.Path, r.Status, cred)
		}
	}
	return nil
}

// events returns a Transport.OnEvent that writes reauth's decisions to w.
func events(w io.Writer) func(reauth.Event) {
	return func(e reauth.Event) {
		switch e.Kind {
		case reauth.EventChallenge:
			fmt.Fprintf(w, "  server: %d\n", e.StatusCode)
		case reauth.EventRetry:
			fmt.Fprintf(w, "  reauth: retrying with %s credentials\n", e.Scheme)
		case reauth.EventGiveUp:
			fmt.Fprintf(w, "  reauth: giving up: %v\n", e.Err)
		case reauth.EventUnanswered:
			fmt.Fprintf(w, "  reauth: %d not answered: %v\n", e.StatusCode, e.Err)
		}
	}
}
