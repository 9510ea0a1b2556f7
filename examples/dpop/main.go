// Command dpop shows OAuth2 client credentials with DPoP-bound tokens (RFC
// 9449): the token request carries a proof by the client's key, the token
// is sent as "Authorization: DPoP <token>" with a fresh proof per request,
// and the server's nonces are handled: the token endpoint and the resource
// each refuse the first proof for its nonce (one retry each), and from then
// on the nonce of each response goes with the next request, so the steady
// state is one request per call.
//
// Without -url it starts reauth's mock server in-process:
//
//	go run ./examples/dpop
//	go run ./examples/dpop -url http://127.0.0.1:8089   # the mock command: go run ./mockserver/cmd/mockserver
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2/clientcredentials"

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
	fmt.Fprintln(stderr, "dpop:", err)
	return 1
}

// run parses args and reads the resource -calls times, reporting the
// requests each call cost.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("dpop", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: dpop [-url BASE] [-calls N] [-client-id ID] [-client-secret SECRET]")
		fmt.Fprintln(fs.Output(), "Reads /dpop/nonce/resource N times with a DPoP-bound token from")
		fmt.Fprintln(fs.Output(), "/dpop/nonce/token (both require the server's nonces) and prints the")
		fmt.Fprintln(fs.Output(), "requests each call cost. BASE is a reauth mock server; without -url one")
		fmt.Fprintln(fs.Output(), "is started in-process.")
		fs.PrintDefaults()
	}
	base := fs.String("url", "", "base URL of a reauth mock server (default: one in-process)")
	calls := fs.Int("calls", 3, "number of reads")
	clientID := fs.String("client-id", "reauth-client", "OAuth2 client_id")
	clientSecret := fs.String("client-secret", "reauth-secret", "OAuth2 client_secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *calls < 1 || *calls > 1000 {
		return fmt.Errorf("-calls %d: want 1 to 1000", *calls)
	}
	if *base == "" {
		srv := mockserver.New(mockserver.DefaultConfig())
		defer srv.Close()
		*base = srv.URL()
	}
	u, err := url.Parse(strings.TrimSuffix(*base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want http(s)://host[:port]", *base)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The DPoP key: any crypto.Signer (P-256, Ed25519, RSA ≥ 2048), one in
	// a KMS included. Tokens are bound to it, so a stolen token is useless
	// without it.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	jkt, err := reauth.JWKThumbprint(key.Public())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "DPoP key thumbprint (jkt): %s\n", jkt)

	// A base transport that counts what goes on the wire.
	counter := &countingTransport{base: http.DefaultTransport}
	cc := &clientcredentials.Config{
		ClientID:     *clientID,
		ClientSecret: *clientSecret,
		TokenURL:     u.String() + "/dpop/nonce/token",
	}
	client := &http.Client{Transport: &reauth.Transport{
		Base:        counter,
		Credentials: reauth.ClientCredentials(cc, reauth.OAuth2Options{DPoP: key}),
		Origins:     []string{u.Scheme + "://" + u.Host},
	}}
	resource := u.String() + "/dpop/nonce/resource"
	for i := range *calls {
		before := counter.snapshot()
		if err := read(ctx, client, resource); err != nil {
			return err // a *reauth.UnauthorizedError, *reauth.TokenError, …: no secrets in them
		}
		tok, res := counter.since(before)
		fmt.Fprintf(w, "call %d: 200, %d token request(s), %d resource request(s)\n", i+1, tok, res)
	}
	return nil
}

// read GETs the resource and checks the answer.
func read(ctx context.Context, client *http.Client, resource string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, resource, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", resource, resp.Status)
	}
	var v map[string]any
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v)
}

// countingTransport counts the token and resource requests sent.
type countingTransport struct {
	base          http.RoundTripper
	token, others atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/token") {
		c.token.Add(1)
	} else {
		c.others.Add(1)
	}
	return c.base.RoundTrip(req)
}

func (c *countingTransport) snapshot() [2]int64 { return [2]int64{c.token.Load(), c.others.Load()} }

func (c *countingTransport) since(b [2]int64) (int64, int64) {
	n := c.snapshot()
	return n[0] - b[0], n[1] - b[1]
}
