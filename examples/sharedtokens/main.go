// Command sharedtokens shows OAuth2Options.Store: several clients (standing
// in for processes: replicas of a service, or runs of a CLI) share their
// OAuth2 tokens through a FileStore, so the token endpoint is asked once for
// all of them. It then has the token revoked: the first client to be
// refused invalidates the stored token and fetches a new one under the
// store's lease, and the others take it from the store.
//
// Without -url it starts reauth's mock server in-process; without -dir it
// keeps the store in a temporary directory that it removes at the end:
//
//	go run ./examples/sharedtokens
//	go run ./examples/sharedtokens -clients 8 -dir /tmp/reauth-tokens
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

func main() { os.Exit(exitCode(run(os.Args[1:], os.Stdout), os.Stderr)) }

// exitCode reports err on stderr and returns the exit status: 0 on success
// and for -h, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "sharedtokens:", err)
	return 1
}

func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("sharedtokens", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: sharedtokens [-clients N] [-dir DIR] [-url BASE]")
		fmt.Fprintln(fs.Output(), "N clients share their OAuth2 tokens through a FileStore in DIR: one token")
		fmt.Fprintln(fs.Output(), "fetch for all of them, and one more after the token is revoked. BASE is a")
		fmt.Fprintln(fs.Output(), "reauth mock server; without -url one is started in-process.")
		fs.PrintDefaults()
	}
	clients := fs.Int("clients", 4, "how many clients share the store (1 to 64)")
	dir := fs.String("dir", "", "directory of the FileStore (default: a temporary one)")
	base := fs.String("url", "", "base URL of a reauth mock server (default: one in-process)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; see -h", fs.Arg(0))
	}
	if *clients < 1 || *clients > 64 {
		return fmt.Errorf("-clients must be 1 to 64, got %d", *clients)
	}
	var srv *mockserver.Server
	if *base == "" {
		srv = mockserver.New(mockserver.DefaultConfig())
		defer srv.Close()
		*base = srv.URL()
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "reauth-sharedtokens")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp + "/tokens"
	}
	store, err := reauth.NewFileStore(*dir)
	if err != nil {
		return err
	}
	cfg := &clientcredentials.Config{
		ClientID: "reauth-client", ClientSecret: "reauth-secret",
		TokenURL: *base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader,
	}
	hcs := make([]*http.Client, *clients)
	for i := range hcs {
		// Each client has credentials (and an in-process cache) of its own,
		// as a process would; the store is what they share.
		hcs[i] = &http.Client{Transport: &reauth.Transport{
			Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{Store: store}),
			Origins:     []string{*base},
		}}
	}
	readAll := func(what string) error {
		var wg sync.WaitGroup
		errs := make([]error, len(hcs))
		for i, hc := range hcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = get(hc, *base+"/oauth2/resource")
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: %d clients read /oauth2/resource: 200\n", what, len(hcs))
		return nil
	}
	if err := readAll("cold start"); err != nil {
		return err
	}
	if srv == nil {
		fmt.Fprintln(w, "(token fetches are counted with the in-process mock only)")
		return nil
	}
	fmt.Fprintln(w, "token fetches:", srv.TokenGrants())
	srv.RevokeAll()
	fmt.Fprintln(w, "revoked the access token")
	if err := readAll("after the revocation"); err != nil {
		return err
	}
	fmt.Fprintln(w, "token fetches:", srv.TokenGrants())
	return nil
}

func get(hc *http.Client, target string) error {
	resp, err := hc.Get(target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	return nil
}
