// Command example fetches a URL protected by Negotiate (Kerberos/SPNEGO),
// through a Negotiate proxy if asked, with reauth and the negotiate module.
//
//	KRB5_CONFIG=/etc/krb5.conf example -user alice -realm EXAMPLE.COM \
//	    -keytab alice.keytab https://intranet.example.com/
//
// It logs in from a keytab (-keytab), from a password in the environment
// variable KRB5_PASSWORD, or from the credential cache of a kinit
// (KRB5CCNAME, or /tmp/krb5cc_UID). The server's mutual-authentication
// token must verify, and is required with -mutual.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/negotiate"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	user := fs.String("user", "", "Kerberos user name (with -keytab or KRB5_PASSWORD)")
	realm := fs.String("realm", "", "Kerberos realm, e.g. EXAMPLE.COM")
	keytabPath := fs.String("keytab", "", "keytab file to log in with")
	proxy := fs.String("proxy", "", "Negotiate proxy URL, e.g. http://proxy.example.com:3128")
	spn := fs.String("spn", "", "service principal to use for the URL's host (default HTTP/<host>)")
	mutual := fs.Bool("mutual", false, "require the server's mutual-authentication token")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: example [flags] URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give one URL")
	}
	target, err := url.Parse(fs.Arg(0))
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", fs.Arg(0))
	}

	cl, err := login(*user, *realm, *keytabPath)
	if err != nil {
		return err
	}
	defer cl.Destroy()

	var opts []negotiate.Option
	if *spn != "" {
		opts = append(opts, negotiate.WithSPN(func(host string) string {
			if host == strings.ToLower(target.Hostname()) {
				return *spn
			}
			return ""
		}))
	}
	if *mutual {
		opts = append(opts, negotiate.RequireMutualAuthentication())
	}
	creds := negotiate.NewWithOptions(cl, opts...)

	tr := &reauth.Transport{Credentials: creds, Origins: []string{target.Scheme + "://" + target.Host}}
	if *proxy != "" {
		pu, err := url.Parse(*proxy)
		if err != nil || pu.Host == "" {
			return fmt.Errorf("-proxy %q is not a proxy URL", *proxy)
		}
		tr.Proxy = http.ProxyURL(pu)
		tr.ProxyCredentials = negotiate.New(cl) // the proxy's own principal, HTTP/<proxy host>
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err // a *reauth.UnauthorizedError, *reauth.ForbiddenError, …: no secret in it
	}
	defer resp.Body.Close()
	fmt.Fprintln(os.Stderr, resp.Status)
	_, err = io.Copy(os.Stdout, io.LimitReader(resp.Body, 1<<20))
	return err
}

// login builds the Kerberos client: from a keytab, from KRB5_PASSWORD, or
// from the credential cache a kinit left.
func login(user, realm, keytabPath string) (*client.Client, error) {
	cfgPath := os.Getenv("KRB5_CONFIG")
	if cfgPath == "" {
		cfgPath = "/etc/krb5.conf"
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("krb5.conf: %w", err)
	}
	// gokrb5 does not speak FAST (RFC 6113), which MIT KDCs offer.
	noFAST := client.DisablePAFXFAST(true)
	password := os.Getenv("KRB5_PASSWORD")
	switch {
	case keytabPath != "" || password != "":
		if user == "" || realm == "" {
			return nil, errors.New("-user and -realm are needed with -keytab or KRB5_PASSWORD")
		}
		if keytabPath == "" {
			return client.NewWithPassword(user, realm, password, cfg, noFAST), nil
		}
		kt, err := keytab.Load(keytabPath)
		if err != nil {
			return nil, fmt.Errorf("keytab: %w", err)
		}
		return client.NewWithKeytab(user, realm, kt, cfg, noFAST), nil
	}
	path := strings.TrimPrefix(os.Getenv("KRB5CCNAME"), "FILE:")
	if path == "" {
		path = fmt.Sprintf("/tmp/krb5cc_%d", os.Getuid())
	}
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		return nil, fmt.Errorf("no -keytab, no KRB5_PASSWORD, and no credential cache (run kinit): %w", err)
	}
	return client.NewFromCCache(cc, cfg, noFAST)
}
