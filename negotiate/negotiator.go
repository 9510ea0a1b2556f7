package negotiate

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/reauth/reauth"
)

// negotiator is the scheme without the seam: what the reauth.Credentials
// adapter (New) calls from Authorize, Refused and Observe. One negotiator
// serves many requests at once; what belongs to one request and one leg
// lives in a legState the caller keeps (the seam's AuthRequest.State).
type negotiator struct {
	spn spnPolicy
	// mutualRequired makes a final response without the server's token an
	// error: a server that does not prove itself is not trusted. Off by
	// default because squid, and IIS for some configurations, send none.
	mutualRequired bool
	// preemptive sends a token on the first attempt to a host that has
	// asked for Negotiate before (asked), saving the 401 round trip.
	preemptive bool
	asked      *hostSet
	// token builds a token for a principal: initToken with the client.
	token func(spn string) (string, *secContext, error)
}

func newNegotiator(cl *client.Client) *negotiator {
	return &negotiator{
		asked: newHostSet(maxAskedHosts),
		token: func(spn string) (string, *secContext, error) { return initToken(cl, spn) },
	}
}

// legState is one request's Negotiate state on one leg (origin or proxy).
type legState struct {
	sc     *secContext // the context of the last token sent; nil before
	sent   int         // tokens sent on this leg of this request
	answer bool        // a challenge asked for a token on the next attempt
}

// authorize returns the field value for the attempt about to go to target
// (the origin, or the proxy on the proxy leg), or "" to send nothing. A
// token goes when a challenge asked for one, on every later attempt of the
// request once one went, and up front when the user declared target a
// protection space (preemptive) or the preemptive option is on and target
// has asked before. Each token is
// built afresh (never the same twice) and its context replaces st.sc.
func (n *negotiator) authorize(ctx context.Context, st *legState, target *url.URL, preemptive bool) (string, error) {
	switch {
	case st.answer:
	case st.sent > 0:
		// An attempt repeated for another leg's sake (the proxy's 407):
		// this leg's server never refused its token, and gets a new one.
	case preemptive, n.preemptive && n.asked.has(originKey(target)):
	default:
		return "", nil
	}
	spn, err := n.spn.spn(ctx, target)
	if err != nil {
		return "", err
	}
	tok, sc, err := n.tokenWithin(ctx, spn)
	if err != nil {
		return "", err
	}
	st.sc, st.answer = sc, false
	st.sent++
	return "Negotiate " + tok, nil
}

// tokenWithin runs n.token bounded by ctx. gokrb5's GetServiceTicket takes
// no context: it runs in a goroutine of its own, and when ctx ends first
// the request fails with ctx's error while that goroutine finishes on its
// own, bounded by gokrb5's timeouts for each KDC (a ticket it gets is
// cached by the client for the next request).
func (n *negotiator) tokenWithin(ctx context.Context, spn string) (string, *secContext, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, fmt.Errorf("reauth: negotiate: no service ticket for %s: %w", spn, err)
	}
	type result struct {
		tok string
		sc  *secContext
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned goroutine still ends
	go func() {
		tok, sc, err := n.token(spn)
		done <- result{tok, sc, err}
	}()
	select {
	case r := <-done:
		return r.tok, r.sc, r.err
	case <-ctx.Done():
		return "", nil, fmt.Errorf("reauth: negotiate: no service ticket for %s before the request's context ended: %w", spn, context.Cause(ctx))
	}
}

// refused reads a 401 (407 on the proxy leg) and says whether the next
// attempt should carry a token. Only a first challenge is answered: once a
// token of this request was refused, another would carry the same ticket
// for the same principal, and the server's ticket cache or keytab will not
// change between two attempts, so the request ends there (no loop,
// whatever the server sends): refused returns an error saying why, which
// the adapter makes final. A refusal without a Negotiate challenge is not
// for this scheme: declined (false, nil).
func (n *negotiator) refused(st *legState, target *url.URL, challenges []reauth.Challenge) (bool, error) {
	var ch *reauth.Challenge
	for i := range challenges {
		if challenges[i].Is("Negotiate") {
			ch = &challenges[i]
			break
		}
	}
	if ch == nil {
		return false, nil
	}
	n.asked.add(originKey(target))
	if st.sent > 0 {
		who := "the server's principal"
		if st.sc != nil {
			who = st.sc.spn
		}
		return false, kindErrorf(ErrTokenRefused, "reauth: negotiate: %s: %s (a keytab or ticket for another key version, clock skew, or a principal the server does not accept)",
			who, refusalReason(ch.Token68))
	}
	st.answer = true
	return true, nil
}

// refusalReason describes a refused token from the token the server sent
// with its refusal, if any: a SPNEGO reject or a KRB-ERROR (clock skew, a
// ticket for a key the server no longer has) says more than the bare 401.
func refusalReason(token68 string) string {
	if token68 == "" || len(token68) > maxTokenBytes {
		return "the server refused the Kerberos token"
	}
	b, err := base64.StdEncoding.DecodeString(token68)
	if err != nil {
		return "the server refused the Kerberos token"
	}
	var resp spnego.NegTokenResp
	if resp.Unmarshal(b) == nil && len(resp.ResponseToken) > 0 {
		var mt spnego.KRB5Token
		if mt.Unmarshal(resp.ResponseToken) == nil && mt.IsKRBError() {
			return "the server refused the Kerberos token: " + errorcode.Lookup(mt.KRBError.ErrorCode)
		}
	}
	return "the server refused the Kerberos token"
}

// observe checks the response that ends the request: when this leg sent a
// token, the server's Negotiate token in it must verify against that
// token's context; a response without one is accepted unless mutual
// authentication is required. Any status counts (a 403's token is checked
// too: an unauthenticated server's answer is not trusted either way).
func (n *negotiator) observe(st *legState, h http.Header, proxy bool) error {
	if st.sc == nil {
		return nil
	}
	raw, found, err := serverToken(h, proxy)
	if err != nil {
		return err
	}
	if !found {
		if n.mutualRequired {
			return fmt.Errorf("%w: %s: the server sent no Negotiate token with its final response", ErrMutualAuthentication, st.sc.spn)
		}
		return nil
	}
	return st.sc.verify(raw)
}

// originKey names a host the way the asked set keys it: scheme, host and
// port, lower case, the port always present.
func originKey(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	scheme := strings.ToLower(u.Scheme)
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// maxAskedHosts bounds the asked set: a client talking to more hosts than
// this forgets some and answers their next challenge in two requests again.
const maxAskedHosts = 1024

// hostSet is a bounded, concurrency-safe set of origins.
type hostSet struct {
	mu  sync.Mutex
	max int
	m   map[string]struct{}
}

func newHostSet(maxHosts int) *hostSet {
	return &hostSet{max: maxHosts, m: make(map[string]struct{})}
}

func (s *hostSet) has(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[k]
	return ok
}

func (s *hostSet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok {
		return
	}
	if len(s.m) >= s.max {
		for old := range s.m { // evict one, any one: bounded, not LRU
			delete(s.m, old)
			break
		}
	}
	s.m[k] = struct{}{}
}
