// Command oauth2 shows OAuth2 client credentials (RFC 6749 §4.4) with
// refresh on 401: it reads a protected resource, has the authorization
// server revoke the access token (RFC 7009), and reads it again. The
// resource refuses the revoked token with 401; reauth fetches a new token
// and retries, so the caller sees two successes and one extra token fetch.
//
// Without -url it starts reauth's mock server in-process:
//
//	go run ./examples/oauth2
//	go run ./examples/oauth2 -url http://127.0.0.1:8089   # the mock command: go run ./mockserver/cmd/mockserver
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
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
	fmt.Fprintln(stderr, "oauth2:", err)
	return 1
}

// run parses args and performs the read, revoke, read sequence, reporting
// each step to w.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("oauth2", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: oauth2 [-url BASE] [-client-id ID] [-client-secret SECRET]")
		fmt.Fprintln(fs.Output(), "Reads /oauth2/resource with OAuth2 client credentials, has the token revoked,")
		fmt.Fprintln(fs.Output(), "and reads it again: reauth fetches a new token on the 401. BASE is a reauth")
		fmt.Fprintln(fs.Output(), "mock server; without -url one is started in-process.")
		fs.PrintDefaults()
	}
	base := fs.String("url", "", "base URL of a reauth mock server (default: one in-process)")
	clientID := fs.String("client-id", "reauth-client", "OAuth2 client_id")
	clientSecret := fs.String("client-secret", "reauth-secret", "OAuth2 client_secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
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

	cc := &clientcredentials.Config{
		ClientID:     *clientID,
		ClientSecret: *clientSecret,
		TokenURL:     u.String() + "/oauth2/token",
		Scopes:       []string{"read"},
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	// OnToken sees every token fetched: where an application would save
	// it, this one counts the fetches and keeps the token to revoke.
	var tokens tokenLog
	client := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.ClientCredentials(cc, reauth.OAuth2Options{OnToken: tokens.add}),
		Origins:     []string{u.Scheme + "://" + u.Host},
	}}

	resource := u.String() + "/oauth2/resource"
	if err := read(ctx, client, resource, w); err != nil {
		return err
	}
	if err := revoke(ctx, cc, u.String()+"/oauth2/revoke", tokens.last()); err != nil {
		return err
	}
	fmt.Fprintln(w, "revoked the access token at /oauth2/revoke")
	if err := read(ctx, client, resource, w); err != nil {
		return err
	}
	fmt.Fprintf(w, "token fetches: %d\n", tokens.count())
	return nil
}

// read GETs the resource and reports whom the server took the client for.
func read(ctx context.Context, client *http.Client, resource string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, resource, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err // a *reauth.UnauthorizedError, *reauth.TokenError, …: no secrets in them
	}
	defer resp.Body.Close()
	var who struct {
		Client string   `json:"client"`
		Scopes []string `json:"scopes"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", resource, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&who); err != nil {
		return fmt.Errorf("reading the resource: %w", err)
	}
	fmt.Fprintf(w, "GET /oauth2/resource: %d (client %s, scopes %s)\n", resp.StatusCode, who.Client, strings.Join(who.Scopes, " "))
	return nil
}

// revoke asks the authorization server to revoke an access token
// (RFC 7009 §2.1), authenticating the client as the token endpoint does.
func revoke(ctx context.Context, cc *clientcredentials.Config, endpoint, token string) error {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: client_id and secret are form-encoded inside Basic.
	req.SetBasicAuth(url.QueryEscape(cc.ClientID), url.QueryEscape(cc.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("revoking the token: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revoking the token: %s", resp.Status)
	}
	return nil
}

// tokenLog is the OnToken hook: it remembers the last access token and
// how many were fetched.
type tokenLog struct {
	mu     sync.Mutex
	n      int
	latest string
}

func (l *tokenLog) add(_ context.Context, tok *oauth2.Token) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.latest = tok.AccessToken
	return nil
}

func (l *tokenLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latest
}

func (l *tokenLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
