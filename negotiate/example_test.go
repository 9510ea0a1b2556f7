package negotiate_test

import (
	"log"
	"net/http"
	"net/url"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/negotiate"
)

// An intranet API behind Negotiate, logged in from a keytab. The first call
// to a host takes two requests (the challenge, the token); with
// PreemptiveAfterChallenge later calls take one. The server's
// mutual-authentication token is verified on every response.
func ExampleNew() {
	cfg, err := config.Load("/etc/krb5.conf")
	if err != nil {
		log.Fatal(err)
	}
	kt, err := keytab.Load("/etc/app/app.keytab")
	if err != nil {
		log.Fatal(err)
	}
	cl := client.NewWithKeytab("app", "EXAMPLE.COM", kt, cfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()

	httpClient := &http.Client{Transport: &reauth.Transport{
		Credentials: negotiate.NewWithOptions(cl, negotiate.PreemptiveAfterChallenge()),
		Origins:     []string{"https://intranet.example.com"},
	}}
	resp, err := httpClient.Get("https://intranet.example.com/api/reports")
	if err != nil {
		log.Fatal(err) // e.g. a *reauth.ForbiddenError, or negotiate.ErrMutualAuthentication
	}
	defer resp.Body.Close()
}

// A Negotiate proxy (squid with negotiate_kerberos_auth, an enterprise
// gateway): ProxyCredentials answer its 407 for plain-http requests and for
// the CONNECT of https ones, with a ticket for the proxy's own principal,
// HTTP/proxy.example.com.
func ExampleNew_proxy() {
	cfg, err := config.Load("/etc/krb5.conf")
	if err != nil {
		log.Fatal(err)
	}
	cl := client.NewWithPassword("alice", "EXAMPLE.COM", "password from a secret store", cfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()

	proxy, _ := url.Parse("http://proxy.example.com:3128")
	httpClient := &http.Client{Transport: &reauth.Transport{
		Base:             &http.Transport{},
		Proxy:            http.ProxyURL(proxy),
		ProxyCredentials: negotiate.New(cl),
	}}
	resp, err := httpClient.Get("https://www.example.org/")
	if err != nil {
		log.Fatal(err) // a refused tunnel is a *reauth.UnauthorizedError (407, CONNECT)
	}
	defer resp.Body.Close()
}

// Servers known by an alias: name their principal rather than trusting DNS.
func ExampleWithSPN() {
	var cl *client.Client // from client.NewWithKeytab, NewWithPassword or NewFromCCache
	creds := negotiate.NewWithOptions(cl, negotiate.WithSPN(func(host string) string {
		if host == "reports.example.com" { // a CNAME of web01
			return "HTTP/web01.corp.example.com"
		}
		return "" // HTTP/<host>
	}))
	_ = creds
}
