package negotiate

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/jcmturner/gokrb5/v8/client"

	"github.com/reauth/reauth"
)

// Option configures the credentials [New] returns.
type Option func(*negotiator)

// WithSPN names the service principal for a host outright: spn gets the
// host (lower case, without port or trailing dot) a token goes to, the
// origin's or the proxy's, and returns the principal, e.g.
// "HTTP/web01.corp.example" for a server known by an alias, or "" to keep
// the default "HTTP/<host>". It is the safe fix for aliases: see
// [CanonicalizeHost].
func WithSPN(spn func(host string) string) Option {
	return func(n *negotiator) { n.spn.override = spn }
}

// CanonicalizeHost replaces the host with its DNS canonical name (CNAME)
// before naming the principal, as MIT's dns_canonicalize_hostname does. Off
// by default: a DNS answer is unauthenticated, and whoever forges it chooses
// which service the user's ticket is for, and with it who can read the
// authenticator and answer the mutual authentication. A failed lookup keeps
// the host as given. Prefer [WithSPN] for the hosts that need it.
func CanonicalizeHost() Option {
	return func(n *negotiator) { n.spn.canonical = true }
}

// RequireMutualAuthentication makes a final response without the server's
// Negotiate token an error matching [ErrMutualAuthentication], and the
// response is withheld. Without it, a response without a token is accepted
// (squid, and IIS in some configurations, send none) and a token that is
// there must verify.
func RequireMutualAuthentication() Option {
	return func(n *negotiator) { n.mutualRequired = true }
}

// PreemptiveAfterChallenge sends a fresh token up front to an origin or
// proxy that has asked for Negotiate before, so that later requests to it
// take one round trip instead of two. The hosts are remembered in memory,
// up to 1024. Tokens are never reused: each carries a new authenticator.
func PreemptiveAfterChallenge() Option {
	return func(n *negotiator) { n.preemptive = true }
}

// New returns credentials for the Negotiate scheme (RFC 4559) that log in
// with cl: build it from a keytab, a password or a credential cache with
// gokrb5's client.NewWithKeytab, client.NewWithPassword or
// client.NewFromCCache. They work on either leg of a [reauth.Transport]:
// as Credentials for origins (WWW-Authenticate) and as ProxyCredentials
// (Proxy-Authenticate, plain-http requests and CONNECTs alike).
//
// A Negotiate challenge is answered once with a token for "HTTP/<host>"
// (see [WithSPN], [CanonicalizeHost]); a token refused ends the request
// with a [*reauth.UnauthorizedError] whose reason matches
// [ErrTokenRefused], since another would carry the same ticket. The
// server's token on the final response is verified (see
// [RequireMutualAuthentication]). A KDC refusing a ticket is final
// ([ErrKDCRefused]); a KDC that cannot be reached is not, and the wait for
// it is bounded by the request's context.
//
// A token is a Kerberos ticket with a fresh authenticator: servers keep a
// replay cache, but whoever reads one in transit can present it first, or
// to another server holding the same key, for the few minutes of clock skew
// allowed. It is sent as a secret (reauth.AuthRequest.Set): over plain http
// only to loopback origins unless Transport.InsecureAllowHTTP is set, and
// redacted from logs and errors. Proxies are reached over plain http as
// usual (DESIGN.md, Plain http).
//
// New takes no options; [NewWithOptions] does.
func New(cl *client.Client) reauth.Credentials { return NewWithOptions(cl) }

// NewWithOptions is [New] with options: [WithSPN], [CanonicalizeHost],
// [RequireMutualAuthentication], [PreemptiveAfterChallenge].
func NewWithOptions(cl *client.Client, opts ...Option) reauth.Credentials {
	n := newNegotiator(cl)
	for _, o := range opts {
		if o != nil {
			o(n)
		}
	}
	return &negotiate{n}
}

// negotiate is the reauth.Credentials adapter around a negotiator: one
// legState per leg of each request, in AuthRequest.State.
type negotiate struct{ n *negotiator }

// String names the scheme, never the client's principal or keys.
func (c *negotiate) String() string { return "negotiate.New(redacted)" }

func stateOf(r *reauth.AuthRequest) *legState {
	st, _ := r.State.(*legState)
	if st == nil {
		st = &legState{}
		r.State = st
	}
	return st
}

// target is the URL whose host names the principal: the proxy on the proxy
// leg, else the request's.
func target(r *reauth.AuthRequest) *url.URL {
	if p := r.Proxy(); p != nil {
		return p
	}
	return r.Request().URL
}

// carriesToken reports whether r's attempt carried a Negotiate token in the
// leg's field: a CONNECT's first attempt is authorized on an AuthRequest
// of its own, whose State the Transport does not keep.
func carriesToken(r *reauth.AuthRequest) bool {
	v := r.Request().Header.Get(r.Field())
	return len(v) > len("Negotiate ") && strings.EqualFold(v[:len("Negotiate ")], "Negotiate ")
}

// Authorize sets a fresh token when a challenge asked for one, when the leg
// is declared preemptive, or (with PreemptiveAfterChallenge) when its host
// asked before.
func (c *negotiate) Authorize(r *reauth.AuthRequest) error {
	v, err := c.n.authorize(r.Context(), stateOf(r), target(r), r.Preemptive)
	if err != nil {
		return err
	}
	if v != "" {
		r.Set(r.Field(), v)
	}
	return nil
}

// Refused answers a first Negotiate challenge with one RetryChallenge and
// ends the request when a token was refused.
func (c *negotiate) Refused(r *reauth.AuthRequest, ref *reauth.Refusal) (reauth.Retry, error) {
	st := stateOf(r)
	if st.sent == 0 && carriesToken(r) {
		st.sent = 1
	}
	answer, err := c.n.refused(st, target(r), ref.Challenges)
	switch {
	case err != nil:
		return 0, err
	case !answer:
		return 0, nil
	case ref.Allowed&reauth.RetryChallenge == 0:
		st.answer = false
		return 0, kindErrorf(reauth.ErrNoCredentials, "reauth: negotiate: a Negotiate challenge came after the leg's retry was spent")
	}
	return reauth.RetryChallenge, nil
}

// Observe verifies the server's token on the response that ends the
// request: WWW-Authenticate on the origin leg, Proxy-Authenticate on the
// proxy leg.
func (c *negotiate) Observe(r *reauth.AuthRequest, resp *http.Response) error {
	proxy := r.Proxy() != nil
	st, _ := r.State.(*legState)
	if st == nil || st.sc == nil {
		if !carriesToken(r) {
			return nil
		}
		// A token went whose context is not at hand (a CONNECT's first
		// attempt): what the server sends cannot be verified.
		_, found, err := serverToken(resp.Header, proxy)
		switch {
		case err != nil:
			return err
		case found || c.n.mutualRequired:
			return kindErrorf(ErrMutualAuthentication, "reauth: negotiate: mutual authentication failed: %s: the server's token cannot be checked: the context of the token sent is not kept", target(r).Hostname())
		}
		return nil
	}
	return c.n.observe(st, resp.Header, proxy)
}
