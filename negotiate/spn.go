package negotiate

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/reauth/reauth"
)

// spnPolicy chooses the Kerberos service principal a Negotiate token is for.
//
// By default it is "HTTP/" and the host of the URL the token goes to (the
// origin's, or the proxy's on the proxy leg), lower-cased, without port or
// trailing dot: what the server's keytab holds for Apache, IIS and squid
// alike (RFC 4559 §4.1 leaves the name to the client; this is what browsers
// and curl use).
//
// The host is not canonicalised through DNS unless canonical is set. A CNAME
// answer is unauthenticated: whoever spoofs it chooses the principal the user
// asks a ticket for, and with it which service may read the user's
// authenticator and answer the mutual authentication (MIT's libraries
// canonicalise by default, dns_canonicalize_hostname, and say why not to in
// their own documentation). Servers known only under an alias need it; an
// override naming their principal is the safer fix.
type spnPolicy struct {
	// override, when not nil and returning non-empty, names the principal
	// for a host outright (e.g. "HTTP/web01.corp.example" for an alias).
	override func(host string) string
	// canonical replaces the host with its DNS canonical name (CNAME)
	// before building the principal.
	canonical bool
	// lookupCNAME resolves a CNAME; nil means net.DefaultResolver's.
	lookupCNAME func(ctx context.Context, host string) (string, error)
}

// errNoHost is returned for a URL without a host: no principal can be named.
var errNoHost = reauth.Final(errors.New("reauth: negotiate: the URL has no host to name a service principal after"))

// spn returns the service principal for the host of u.
func (p spnPolicy) spn(ctx context.Context, u *url.URL) (string, error) {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return "", errNoHost
	}
	if p.override != nil {
		if s := p.override(host); s != "" {
			return s, nil
		}
	}
	if p.canonical && net.ParseIP(host) == nil {
		lookup := p.lookupCNAME
		if lookup == nil {
			lookup = net.DefaultResolver.LookupCNAME
		}
		// A failed lookup keeps the name the user gave, as MIT's
		// "fallback" mode does: no answer is no reason to trust another.
		if cname, err := lookup(ctx, host); err == nil {
			if c := strings.TrimSuffix(strings.ToLower(cname), "."); c != "" {
				host = c
			}
		}
	}
	return "HTTP/" + host, nil
}
