// Command mockserver serves reauth's mock authentication server, for
// clients in any language:
//
//	go run ./mockserver/cmd/mockserver -addr 127.0.0.1:8089
//
// It prints the listing of users and scenarios (also at GET /) and serves
// until interrupted. It listens on loopback only unless -allow-remote is
// given. Flags override fields of mockserver.DefaultConfig; -h lists them.
//
// With curl (the listing says which curl each Digest scenario needs):
//
//	curl --digest -u alice:wonderland http://127.0.0.1:8089/digest/
//
// With -proxy the same listener is also a forward proxy to loopback targets
// (mockserver.ProxyConfig), asking the users for Basic, Digest or both
// (-proxy-schemes basic,digest). Here curl answers the proxy's Digest
// challenge, and /bearer/ behind it gets a token of the listing:
//
//	go run ./mockserver/cmd/mockserver -proxy -proxy-schemes digest
//	curl --proxy-digest -U alice:wonderland -x http://127.0.0.1:8089 -H 'Authorization: Bearer mock-token-read' http://127.0.0.1:8089/bearer/
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/reauth/reauth/mockserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mockserver:", err)
		}
		os.Exit(2)
	}
}

// run parses args, starts the server, writes the listing to stdout and
// serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := mockserver.DefaultConfig()
	fs := flag.NewFlagSet("mockserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8089", "address to listen on")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow an address that is not loopback")
	var users, admins userList
	fs.Var(&users, "user", "a user as name:password; repeatable; replaces the default users")
	fs.Var(&admins, "admin", "an admin user name; repeatable; replaces the default admins")
	fs.DurationVar(&cfg.OAuth2.AccessTokenLifetime, "token-lifetime", cfg.OAuth2.AccessTokenLifetime, "OAuth2 access token lifetime (0: never expire)")
	fs.DurationVar(&cfg.Registry.TokenLifetime, "registry-token-lifetime", cfg.Registry.TokenLifetime, "registry token lifetime (0: never expire)")
	fs.DurationVar(&cfg.Digest.NonceLifetime, "nonce-lifetime", cfg.Digest.NonceLifetime, "Digest nonce lifetime (0: no limit)")
	fs.IntVar(&cfg.Digest.NonceMaxUses, "nonce-max-uses", cfg.Digest.NonceMaxUses, "requests one Digest nonce may authenticate (0: no limit)")
	fs.BoolVar(&cfg.Digest.NextNonce, "digest-nextnonce", cfg.Digest.NextNonce, "send nextnonce in Authentication-Info")
	fs.BoolVar(&cfg.Digest.WrongRspauth, "digest-wrong-rspauth", cfg.Digest.WrongRspauth, "send a wrong rspauth in Authentication-Info")
	fs.BoolVar(&cfg.Digest.StrictNonceCount, "digest-strict-nc", cfg.Digest.StrictNonceCount, "require every nc to exceed those seen for its nonce")
	fs.DurationVar(&cfg.DPoP.NonceLifetime, "dpop-nonce-lifetime", cfg.DPoP.NonceLifetime, "how long a DPoP-Nonce of /dpop/nonce/… stays current (0: until restart)")
	fs.IntVar(&cfg.Status.FailFirst, "fail-first", cfg.Status.FailFirst, "refusals in a row on /status/429/ and /status/503/ before a success (<0: always)")
	fs.DurationVar(&cfg.Status.RetryAfter, "retry-after", cfg.Status.RetryAfter, "delay asked for by Retry-After")
	fs.IntVar(&cfg.Registry.TokenPOST, "registry-token-post", cfg.Registry.TokenPOST, "status for POST /registry/token, e.g. 404 or 405 (0: serve it)")
	fs.BoolVar(&cfg.Proxy.Enabled, "proxy", false, "also be a forward proxy (absolute-form http and CONNECT) to loopback targets, on the same address")
	proxySchemes := fs.String("proxy-schemes", "basic", "schemes the proxy's 407 asks for, comma-separated: basic, digest")
	quiet := fs.Bool("quiet", false, "do not print the listing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(users) > 0 {
		cfg.Users = map[string]string{}
		for _, u := range users {
			name, password, ok := strings.Cut(u, ":")
			if !ok {
				return fmt.Errorf("-user %q: want name:password", name)
			}
			cfg.Users[name] = password
		}
	}
	for _, scheme := range strings.Split(*proxySchemes, ",") {
		cfg.Proxy.Schemes = append(cfg.Proxy.Schemes, strings.TrimSpace(scheme))
	}
	if len(admins) > 0 {
		cfg.Admins = admins
	}
	if !cfg.AllowRemote && !mockserver.IsLoopback(cfg.Addr) {
		return fmt.Errorf("-addr %s is not a loopback address; add -allow-remote to listen on it", cfg.Addr)
	}
	srv, err := mockserver.NewUnstarted(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	if !*quiet {
		fmt.Fprint(stdout, srv.Listing())
	}
	if cfg.Proxy.Enabled {
		fmt.Fprintf(stdout, "forward proxy (%s) on %s\n", strings.Join(cfg.Proxy.Schemes, ", "), srv.URL())
	}
	fmt.Fprintf(stdout, "listening on %s\n", srv.URL())
	<-ctx.Done()
	return nil
}

// userList collects a repeatable flag.
type userList []string

func (l *userList) String() string { return strings.Join(*l, ",") }

func (l *userList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
