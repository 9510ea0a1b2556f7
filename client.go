package reauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-retryablehttp"
)

// DefaultMaxBufferedBody is the default for Transport.MaxBufferedBody.
const DefaultMaxBufferedBody = 1 << 20

// Transport is an [http.RoundTripper] that authenticates requests to the
// origins its credentials are bound to and acts on 401, 403 and 407 as
// RFC 9110 §15.5 says a client should:
//
//   - 401 from a bound origin: the challenges are parsed, Credentials answer
//     them with fields that differ from those refused, and the request is
//     retried within the retry ceiling: one retry per challenge kind, and one
//     more when the server asks only for a fresh nonce ([RetryNonce]), so at
//     most 3 requests per leg (DESIGN.md, Retry ceiling). With nothing new to
//     offer, or past the ceiling, RoundTrip returns an [*UnauthorizedError].
//   - 403 from a bound origin, or on a request that carried reauth's proxy
//     credentials (a proxy that accepted them and will not forward it):
//     final at once, a [*ForbiddenError] whose Proxy field says whose
//     credentials it answered.
//   - 400 with a Bearer error="invalid_request": final, an [*InvalidRequestError].
//   - 407 from the proxy a plain-http request goes through: the same as 401,
//     with ProxyCredentials and Proxy-Authorization, and a retry of its own.
//   - 407 to the CONNECT of an https request (ProxyCredentials over an
//     *http.Transport Base, or a Base set up with [ConfigureProxy]): one
//     retry when the proxy credentials have answered the challenge with a
//     new value, also for origins not in Origins.
//
// Unlike a plain RoundTripper, Transport returns these typed errors instead
// of the 401, 403 or 407 response (the response body is read up to
// [MaxErrorBody] bytes into the error, and closed); set ReturnResponse to get
// the final response instead. Any other response, 404 included, is returned
// as it is.
//
// Requests to origins not in Origins pass through untouched: no credentials,
// no challenge handling. http.Client follows redirects above the RoundTripper,
// so each hop is checked on its own and a redirect elsewhere never carries
// credentials. A 401 or 407 that reauth does not answer is still reported,
// as an [EventUnanswered] and a debug log line saying why (an origin not in
// Origins, with the listed origins close to it; no credentials; a 407 from
// no proxy). Configurations that cannot work are errors at the first
// request: [ErrNoOrigins], [ErrNoCredentialsForOrigins], [ErrProxyUnknown].
//
// A request that already carries Authorization is the caller's for the
// origin, and one that carries Proxy-Authorization is the caller's for the
// proxy: that field is sent as it is, never replaced by reauth's
// credentials, and a 401 (or 407) refusing it is not retried; it is final,
// an [*UnauthorizedError] wrapping [ErrCallerCredentials] (or the response,
// with ReturnResponse), and an [EventGiveUp] says so. The other leg is
// still reauth's.
//
// Transport never modifies the caller's request: it sends a copy with the
// credentials set. It is safe for concurrent use. Its fields must not be
// changed after the first request.
type Transport struct {
	// Base sends the requests. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// Credentials answer 401 challenges from the bound origins.
	Credentials Credentials
	// Origins lists the origins ("scheme://host[:port]") that Credentials may
	// be sent to. Credentials without Origins is a configuration error.
	Origins []string
	// ProxyCredentials answer 407 challenges from the proxy that a plain-http
	// request goes through (see Proxy). They are never sent to origins. When
	// Base is an *http.Transport (or nil) they also answer the proxy's 407 to
	// the CONNECT of an https request, as [ConfigureProxy] does, so that this
	// one setting covers both. With any other Base, Proxy must be set (else
	// RoundTrip fails with [ErrProxyUnknown]), and the CONNECT is the Base's
	// business: call ConfigureProxy on the http.Transport it wraps.
	ProxyCredentials Credentials
	// Keychain gives credentials per origin, for origins not in Origins: a
	// request to such an origin is sent with what Keychain resolves for it
	// (resolved once per origin and kept, resolved again after a refusal),
	// and those credentials go to that origin only: never to another
	// origin, a redirect's target, or a proxy. A Keychain that has nothing
	// for the origin leaves the request untouched; one that fails fails the
	// request with a [*KeychainError]. See [NetrcKeychain],
	// [GOAUTHKeychain], [DockerKeychain] and [Keychains].
	Keychain Keychain
	// Proxy chooses the proxy of each request, as http.Transport.Proxy does.
	// It is asked at most once per request. When Base is an *http.Transport
	// (or nil) and reauth needs the answer (ProxyCredentials, plain-http
	// origins), the Transport sends through a private copy of Base that
	// routes each request by the answer reauth got, so the proxy that gets
	// ProxyCredentials is the proxy the request really goes through, even
	// when Proxy would answer otherwise if asked again (proxy pools,
	// failover). For any other Base, Proxy must describe how that Base
	// routes, answering the same for the same request. Nil means Base's own
	// Proxy when Base is an *http.Transport, and no proxy otherwise: a 407 is
	// then never answered, since it cannot have come from a proxy.
	Proxy func(*http.Request) (*url.URL, error)

	// MaxBufferedBody bounds the copy kept of a request body that has no
	// GetBody and cannot seek, so that it can be sent again after a
	// challenge. Such a body is sent as it is produced, never read ahead
	// (except for Digest qop=auth-int, which signs the whole body first), and
	// what has been sent is kept up to this bound. A challenge that comes
	// after more than that was sent gets an [*UnauthorizedError] wrapping
	// [ErrBodyNotReplayable]; a challenge that comes before the end of the
	// body is answered with the copy followed by the rest. A seekable body
	// (an *os.File) is sent again by seeking back, whatever its size. Zero
	// means [DefaultMaxBufferedBody]; negative means never keep a copy.
	MaxBufferedBody int64
	// InsecureAllowHTTP lets secret credentials (values set with
	// AuthRequest.Set: Basic, bearer tokens) go over plain http to hosts
	// that are not loopback, where anyone on the path can read them.
	// Without it, a loopback origin gets them over plain http only when the
	// request stays on the host: directly, or through a proxy on loopback.
	InsecureAllowHTTP bool
	// ReturnResponse makes RoundTrip return the final 401, 403, 407 or 400
	// response untouched instead of a typed error, for proxies and callers
	// that handle the response themselves.
	ReturnResponse bool

	// Logger, if set, receives each auth decision at debug level (challenges
	// seen, scheme chosen, retry or give-up and why). Secrets are redacted.
	Logger *slog.Logger
	// OnEvent, if set, receives the same decisions as values, for metrics and
	// tracing. It is called synchronously and must not block.
	OnEvent func(Event)

	once sync.Once
	cfg  *transportConfig
	err  error
}

type transportConfig struct {
	base http.RoundTripper
	// clone is the private copy of an *http.Transport Base that requests go
	// through when reauth asks the proxy function itself: it routes each
	// request by the answer reauth got (see routeByDecision). Nil when Base
	// is used as it is.
	clone   *http.Transport
	origins *originSet
	// keychain caches Keychain's resolutions per origin; nil without one.
	keychain *originCache
	proxy    func(*http.Request) (*url.URL, error)
	maxBuf   int64 // what a body without GetBody may be buffered to; <0: never
	maxBody  int64 // what a body may be read to for signing (auth-int)
}

func (t *Transport) config() (*transportConfig, error) {
	t.once.Do(func() {
		c := &transportConfig{base: t.Base, proxy: t.Proxy, maxBuf: t.MaxBufferedBody}
		if c.base == nil {
			c.base = http.DefaultTransport
		}
		if c.maxBuf == 0 {
			c.maxBuf = DefaultMaxBufferedBody
		}
		c.maxBody = max(c.maxBuf, DefaultMaxBufferedBody)
		if t.Keychain != nil {
			c.keychain = newOriginCache(t.Keychain, 0)
		}
		switch {
		case t.Credentials != nil && len(t.Origins) == 0:
			t.err = ErrNoOrigins
			return
		case t.Credentials == nil && len(t.Origins) > 0:
			t.err = ErrNoCredentialsForOrigins
			return
		}
		if c.origins, t.err = parseOrigins("Transport.Origins", t.Origins); t.err != nil {
			return
		}
		ht, ok := c.base.(*http.Transport)
		if !ok {
			if t.ProxyCredentials != nil && t.Proxy == nil {
				t.err = ErrProxyUnknown
				return
			}
			t.cfg = c
			return
		}
		if c.proxy == nil {
			c.proxy = ht.Proxy
		}
		// reauth asks the proxy function where ProxyCredentials may go, and
		// whether a plain-http request to a bound origin stays on that
		// origin (loopback rule, Host overrides). The request must then go
		// where that one answer said: a function asked twice may answer
		// differently (proxy pools, failover).
		if c.proxy != nil && (t.Proxy != nil || t.ProxyCredentials != nil || c.origins.hasPlainHTTP()) {
			clone := ht.Clone()
			clone.Proxy = routeByDecision(c.proxy)
			if t.ProxyCredentials != nil && !proxyConfigured(ht) {
				// https requests meet the proxy as a CONNECT below any
				// RoundTripper: one setting covers both kinds.
				ConfigureProxy(clone, t.ProxyCredentials)
			}
			c.base, c.clone = clone, clone
		}
		t.cfg = c
	})
	return t.cfg, t.err
}

// RoundTrip sends req, authenticating it as the Transport's doc comment says.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	cfg, err := t.config()
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	if req.URL == nil {
		closeRequestBody(req)
		return nil, errors.New("reauth: nil Request.URL")
	}
	bound := t.Credentials != nil && cfg.origins.contains(req.URL)
	var kb *keychainBinding
	if !bound && cfg.keychain != nil {
		// An origin not in Origins: its own credentials, if the keychain
		// has any (DESIGN.md, Keychains).
		if kb, err = cfg.keychain.bind(req); err != nil {
			closeRequestBody(req)
			return nil, err
		}
		bound = kb != nil
	}
	hostOverride := bound && req.Host != "" && !strings.EqualFold(req.Host, req.URL.Host)
	// The proxy a plain-http request goes through, asked once: only such a
	// request can meet a forward proxy's 407, be sent on by one to another
	// host than its URL's, or leave the host although its origin is
	// loopback.
	var via *url.URL
	if req.URL.Scheme == "http" && cfg.proxy != nil &&
		(t.ProxyCredentials != nil || hostOverride || bound && !t.InsecureAllowHTTP && isLoopback(req.URL.Hostname())) {
		if via, err = cfg.proxy(req); err != nil {
			closeRequestBody(req)
			return nil, err
		}
		if cfg.clone != nil {
			req = withRoute(req, via)
		}
	}
	if hostOverride && via != nil {
		// Through a forward proxy the request goes to req.Host, not to the
		// bound req.URL (RFC 9112 §3.2.2): credentials must not follow.
		bound = false
	}
	// Proxy-Authorization set on a request is seen by the proxy only
	// through an http(s) proxy: through a SOCKS proxy (or a CONNECT tunnel,
	// see ConfigureProxy) it would reach the origin.
	proxyLeg := t.ProxyCredentials != nil && via != nil && (via.Scheme == "http" || via.Scheme == "https")
	if !bound && !proxyLeg {
		resp, err := cfg.base.RoundTrip(req)
		if err != nil {
			// A CONNECT refused with 407 may be answered (ConfigureProxy).
			resp, err = (&exchange{t: t, req: req, via: via, attempts: 1}).retryUnbound(err)
		}
		if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusProxyAuthRequired) {
			t.unanswered(req, via, resp)
		}
		return resp, err
	}
	x := &exchange{t: t, req: req, via: via}
	// Nearly every request has one leg, kept in x.one so that the state of
	// a call is a single small allocation.
	x.legs = x.one[:0]
	if proxyLeg && bound {
		x.legs = make([]leg, 0, 2)
	}
	// The proxy leg comes first: a 407 is answered before the origin sees
	// the request at all. A field the caller set makes that leg the
	// caller's: sent as it is, never replaced, never retried.
	if proxyLeg {
		x.legs = append(x.legs, leg{ar: AuthRequest{onProxy: true, x: x}, caller: hasField(req.Header, "Proxy-Authorization")})
	}
	if bound {
		ar := AuthRequest{x: x}
		if kb != nil {
			ar.ext = &authExt{kc: kb}
		}
		x.legs = append(x.legs, leg{ar: ar, caller: hasField(req.Header, "Authorization")})
	}
	return x.run()
}

// hasField reports whether h carries the field name (canonical form).
func hasField(h http.Header, name string) bool {
	return len(h[name]) > 0
}

// leg is one kind of authentication on a request: to the origin (401,
// Authorization) or to the proxy (407, Proxy-Authorization). Each has its
// own retries (see grant).
type leg struct {
	ar   AuthRequest // ar.onProxy is set for the proxy's leg; ar.ext.refused are the sets refused
	used Retry       // the retries taken
	// caller: the request carried this leg's field itself. It is sent as it
	// is, and a refusal of it is final.
	caller bool
}

// sent returns the value of the leg's own field on the attempt: what the
// credentials set, or the caller's.
func (l *leg) sent() string {
	if l.ar.req == nil {
		return ""
	}
	return l.ar.req.Header.Get(l.ar.Field())
}

// set reports whether reauth's credentials set fields on the leg's attempt.
func (l *leg) set() bool { return !l.caller && l.ar.hasFields() }

// wasRefused reports whether the leg's fields on the attempt being built are
// a set refused before on this request (DESIGN.md, invariant 2).
func (l *leg) wasRefused() bool {
	if l.ar.ext == nil || len(l.ar.ext.refused) == 0 {
		return false
	}
	now := l.ar.fields()
	for _, old := range l.ar.ext.refused {
		if sameFields(old, now) {
			return true
		}
	}
	return false
}

// sameFields reports whether a and b set the same fields to the same values,
// in any order. A leg sets at most a few fields.
func sameFields(a, b []authField) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if !slices.ContainsFunc(b, func(g authField) bool { return g.name == f.name && g.value == f.value }) {
			return false
		}
	}
	return true
}

// creds returns the credentials that answer for l: ProxyCredentials for
// the proxy, Credentials for the origin.
func (x *exchange) creds(l *leg) Credentials {
	if l.ar.onProxy {
		return x.t.ProxyCredentials
	}
	if l.ar.ext != nil && l.ar.ext.kc != nil {
		return l.ar.ext.kc.c
	}
	return x.t.Credentials
}

// exchange is the state of one RoundTrip call with authentication.
type exchange struct {
	t    *Transport
	req  *http.Request
	via  *url.URL // the proxy a plain-http request goes through, when reauth asked
	legs []leg    // proxy first, then origin
	// one holds the only leg of a request with one, which is nearly every
	// request: a proxy and an origin to authenticate to need two.
	one      [1]leg
	body     *replayableBody // nil when the request has no body
	attempts int32
	// connectUsed: the retries taken after CONNECT 407s (ConfigureProxy).
	connectUsed Retry
}

// origin returns the leg to the bound origin, nil when the request does not
// go to one.
func (x *exchange) origin() *leg {
	if n := len(x.legs); n > 0 && !x.legs[n-1].ar.onProxy {
		return &x.legs[n-1]
	}
	return nil
}

// proxy returns the leg to the proxy, nil when the request does not go
// through one with ProxyCredentials.
func (x *exchange) proxy() *leg {
	if len(x.legs) > 0 && x.legs[0].ar.onProxy {
		return &x.legs[0]
	}
	return nil
}

func (x *exchange) run() (*http.Response, error) {
	// The body first: schemes that sign it (Digest auth-int) read it when
	// they authorize.
	if x.req.Body != nil && x.req.Body != http.NoBody {
		x.body = newReplayableBody(x.req, x.t.cfg.maxBuf)
		// The one close of the caller's body, on every path: now, or once
		// the base has closed what it was given.
		defer x.body.done()
	}
	r, err := x.build()
	if err != nil {
		return nil, err
	}
	for {
		resp, err := x.send(r)
		if err != nil {
			if x.retryConnect(err) {
				if r, err = x.build(); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		l := x.legFor(resp.StatusCode)
		if l == nil {
			if err := x.finalStatus(resp); err != nil {
				return nil, err
			}
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusProxyAuthRequired {
				x.event(Event{Kind: EventUnanswered, StatusCode: resp.StatusCode, Proxy: resp.StatusCode == http.StatusProxyAuthRequired, Err: x.whyUnanswered(resp.StatusCode)})
			}
			return x.observe(resp)
		}
		// The one parse of the refusal's challenges: for the event, the
		// credentials and the typed error.
		chs, perr := ResponseChallenges(resp)
		next, err := x.answer(l, resp, chs, perr)
		if next == nil {
			return x.final(resp, l, err, chs, perr)
		}
		r = next
	}
}

// legFor returns the leg that a response status challenges, or nil.
func (x *exchange) legFor(status int) *leg {
	switch status {
	case http.StatusUnauthorized:
		return x.origin()
	case http.StatusProxyAuthRequired:
		return x.proxy()
	}
	return nil
}

// build makes the next attempt: a shallow copy of the caller's request, with
// a copy of its header on which each leg's credentials set their fields. A
// fresh copy each time: the base may still hold the previous one
// (RoundTripper contract).
func (x *exchange) build() (*http.Request, error) {
	r := new(http.Request)
	*r = *x.req
	r.Header = cloneHeader(x.req.Header, len(x.legs))
	for i := range x.legs {
		l := &x.legs[i]
		l.ar.reset(r)
		if l.caller {
			continue
		}
		err := x.creds(l).Authorize(&l.ar)
		if err == nil {
			err = l.ar.setError()
		}
		if err != nil && errors.Is(err, ErrNoCredentials) && l.used == 0 {
			// Nothing to send before a challenge: the attempt goes
			// without this leg's fields.
			for _, f := range l.ar.fields() {
				r.Header[f.name] = x.req.Header[f.name]
				if r.Header[f.name] == nil {
					delete(r.Header, f.name)
				}
			}
			l.ar.reset(r)
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := x.checkSendable(l); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// send sends the attempt r with this attempt's body.
func (x *exchange) send(r *http.Request) (*http.Response, error) {
	if x.body != nil {
		body, err := x.body.next()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	x.attempts++
	resp, err := x.t.cfg.base.RoundTrip(r)
	if resp == nil && err == nil {
		return nil, errors.New("reauth: Base RoundTripper returned a nil response and a nil error")
	}
	return resp, err
}

// answer decides whether to retry after a 401 or 407: it asks the leg's
// credentials what retry they want, takes it from the ceiling (grant),
// builds the retry and refuses it if it carries a set of fields already
// refused (invariant 2). It returns the retry, or nil with the reason to
// give up.
func (x *exchange) answer(l *leg, resp *http.Response, chs []Challenge, perr error) (*http.Request, error) {
	x.event(Event{Kind: EventChallenge, StatusCode: resp.StatusCode, Proxy: l.ar.onProxy, Challenges: chs, Scheme: schemeOf(l.sent()), Err: perr})
	if l.caller {
		return nil, ErrCallerCredentials
	}
	l.ar.extra()
	l.ar.ext.refused = append(l.ar.ext.refused, l.ar.fields())
	left := allowed(l.used)
	if left == 0 {
		return nil, ErrRefusedAfterRetry
	}
	if err := x.req.Context().Err(); err != nil {
		return nil, err
	}
	want, err := x.creds(l).Refused(&l.ar, &Refusal{StatusCode: resp.StatusCode, Proto: resp.Proto, Challenges: chs, Header: resp.Header, Allowed: left})
	switch {
	case err != nil:
		return nil, err
	case want == 0:
		return nil, ErrNoCredentials
	}
	used, err := grant(l.used, want)
	if err != nil {
		return nil, err
	}
	l.used = used
	// The legs' first values live in the AuthRequests and the refused
	// attempt's header shows them: if the retry is not sent, put back those
	// it carried (the refusal may be returned with ReturnResponse).
	var sent [2]string
	for i := range x.legs {
		sent[i] = x.legs[i].ar.val[0]
	}
	restore := func() {
		for i := range x.legs {
			x.legs[i].ar.val[0] = sent[i]
		}
	}
	next, err := x.build()
	if err != nil {
		restore()
		return nil, err
	}
	if !l.ar.hasFields() {
		restore()
		return nil, ErrNoCredentials
	}
	for i := range x.legs {
		if x.legs[i].wasRefused() {
			restore()
			return nil, ErrSameCredentials
		}
	}
	// Last: rewinding abandons the attempt sent, which must stay whole if
	// its response is the final one (a full-duplex body still streaming).
	if x.body != nil {
		if err := x.body.rewind(); err != nil {
			restore()
			return nil, err
		}
	}
	drainAndClose(resp.Body)
	x.event(Event{Kind: EventRetry, StatusCode: resp.StatusCode, Proxy: l.ar.onProxy, Scheme: schemeOf(l.sent())})
	return next, nil
}

// checkSendable enforces the plain-http rule (DESIGN.md, Plain http): a
// value set with Set, a secret, goes over http only to loopback hosts,
// unless the user opted in. A loopback origin is exempt only when the
// request stays on the host: a forward proxy elsewhere would see the
// secret in the clear. Values set with SetProof may cross.
func (x *exchange) checkSendable(l *leg) error {
	if l.ar.onProxy || x.t.InsecureAllowHTTP || x.req.URL.Scheme != "http" {
		return nil
	}
	if !l.ar.hasSecret() {
		return nil
	}
	if !isLoopback(x.req.URL.Hostname()) {
		return ErrInsecureCredentials
	}
	if x.via != nil && !isLoopback(x.via.Hostname()) {
		return fmt.Errorf("%w; the loopback origin is reached through the proxy %s, which is not loopback", ErrInsecureCredentials, redactURL(x.via))
	}
	return nil
}

// final turns a 401 or 407 that will not be retried into an
// *UnauthorizedError, or a credentials error into itself.
func (x *exchange) final(resp *http.Response, l *leg, reason error, chs []Challenge, perr error) (*http.Response, error) {
	var fatal error
	switch {
	case errors.Is(reason, ErrNoCredentials), errors.Is(reason, ErrSameCredentials),
		errors.Is(reason, ErrRefusedAfterRetry), errors.Is(reason, ErrBodyNotReplayable),
		errors.Is(reason, ErrCallerCredentials):
	default:
		fatal = reason // the credentials failed (token endpoint down, context done, …)
	}
	x.event(Event{Kind: EventGiveUp, StatusCode: resp.StatusCode, Proxy: l.ar.onProxy, Err: reason})
	if l.ar.ext != nil && l.ar.ext.kc != nil {
		// Refused for good: the next request to the origin asks the
		// keychain again (a helper may have new credentials by then).
		l.ar.ext.kc.forget()
	}
	if fatal != nil {
		drainAndClose(resp.Body)
		return nil, fatal
	}
	if x.t.ReturnResponse {
		return resp, nil
	}
	chs = redactChallenges(chs, x.secrets())
	return nil, &UnauthorizedError{
		StatusCode: resp.StatusCode,
		Challenges: chs,
		Bearer:     bearerErrorOf(chs),
		Body:       x.errorBody(resp),
		Method:     x.req.Method,
		URL:        redactURL(x.req.URL),
		Attempts:   int(x.attempts),
		Err:        reason,
		ParseErr:   perr,
	}
}

// finalStatus turns a 403 from a bound origin or on a request that carried
// proxy credentials of reauth's, or a 400 with Bearer
// error="invalid_request" from a bound origin, into its typed error. Neither
// is retried: the server understood the credentials and sending them again
// will not help.
func (x *exchange) finalStatus(resp *http.Response) error {
	if x.origin() == nil && resp.StatusCode != http.StatusForbidden {
		return nil
	}
	switch resp.StatusCode {
	case http.StatusForbidden:
		byProxy, ok := x.forbiddenBy(resp)
		if !ok {
			return nil
		}
		x.event(Event{Kind: EventForbidden, StatusCode: resp.StatusCode, Proxy: byProxy})
		if x.t.ReturnResponse {
			return nil
		}
		chs, _ := x.challenges(resp)
		body := x.errorBody(resp)
		return &ForbiddenError{
			StatusCode: resp.StatusCode,
			Challenges: chs,
			Bearer:     bearerErrorOf(chs),
			Body:       body,
			Method:     x.req.Method,
			URL:        redactURL(x.req.URL),
			Proxy:      byProxy,
		}
	case http.StatusBadRequest:
		if len(resp.Header.Values("WWW-Authenticate")) == 0 {
			return nil
		}
		chs, _ := x.challenges(resp)
		be := bearerErrorOf(chs)
		if be.Code != "invalid_request" {
			return nil
		}
		x.event(Event{Kind: EventGiveUp, StatusCode: resp.StatusCode, Err: ErrInvalidRequest})
		if x.t.ReturnResponse {
			return nil
		}
		return &InvalidRequestError{
			StatusCode: resp.StatusCode,
			Challenges: chs,
			Bearer:     be,
			Body:       x.errorBody(resp),
			Method:     x.req.Method,
			URL:        redactURL(x.req.URL),
		}
	}
	return nil
}

// forbiddenBy says whose credentials a 403 answered: the proxy's when they
// are the only ones reauth sent, or when the proxy says it made the
// response itself (RFC 9209 Proxy-Status with an error, squid's
// X-Squid-Error). ok is false when the request carried no credentials of
// reauth's and went to no bound origin: the 403 is then passed through.
func (x *exchange) forbiddenBy(resp *http.Response) (proxy, ok bool) {
	o, p := x.origin(), x.proxy()
	proxySent := p != nil && p.set()
	if o == nil {
		return true, proxySent
	}
	if !proxySent {
		return false, true
	}
	fromProxy := resp.Header.Get("X-Squid-Error") != "" || strings.Contains(resp.Header.Get("Proxy-Status"), "error=")
	return !o.set() || fromProxy, true
}

// observe hands the response that ends the request to the credentials of
// each leg (Digest's Authentication-Info, mutual authentication).
func (x *exchange) observe(resp *http.Response) (*http.Response, error) {
	for i := range x.legs {
		l := &x.legs[i]
		if l.caller {
			continue
		}
		if err := x.creds(l).Observe(&l.ar, resp); err != nil {
			drainAndClose(resp.Body)
			return nil, err
		}
	}
	return resp, nil
}

// cloneHeader copies h as http.Header.Clone does, with room in the map for
// extra more fields: the credentials set on the copy. Their values live in
// the legs' AuthRequests. One array holds the copied values: it is sized for
// one value a field, and a field with more grows it (the fields copied
// before keep their place in the old one).
func cloneHeader(h http.Header, extra int) http.Header {
	sv := make([]string, 0, len(h))
	h2 := make(http.Header, len(h)+extra)
	for k, vv := range h {
		if vv == nil {
			// Preserve nil values: ReverseProxy distinguishes them.
			h2[k] = nil
			continue
		}
		start := len(sv)
		sv = append(sv, vv...)
		h2[k] = sv[start:len(sv):len(sv)]
	}
	return h2
}

// readErrorBody reads up to MaxErrorBody bytes of a refusing response's body
// for the typed error, and closes it.
func readErrorBody(body io.ReadCloser) []byte {
	if body == nil {
		return nil
	}
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, MaxErrorBody))
	return b
}

// drainAndClose reads a little of a body that will not be used, so that the
// connection can be reused, and closes it. The read is bounded: a huge body
// costs a new connection, not unbounded reading.
func drainAndClose(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	body.Close()
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// NewClient returns a go-retryablehttp client over t: it retries 429, 5xx and
// network errors with backoff (honouring Retry-After), and never an auth
// failure, per [CheckRetry]. Its logger is t.Logger (nil: silent), since
// retryablehttp's default logger writes every request to stderr. What it
// logs, and the error it returns when it gives up, follow reauth's rule:
// URLs without userinfo, query or fragment (queries carry access_token=…).
func NewClient(t *Transport) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: t}
	c.CheckRetry = CheckRetry
	c.ErrorHandler = giveUp
	c.Logger = nil
	if t.Logger != nil {
		c.Logger = redactingLogger{t.Logger}
	}
	return c
}

// giveUp is NewClient's retryablehttp.ErrorHandler: retryablehttp's own
// error when it gives up, with the URLs redacted. The error it wraps keeps
// its type, for errors.Is and errors.As.
func giveUp(resp *http.Response, err error, attempts int) (*http.Response, error) {
	var method, where string
	if resp != nil {
		if resp.Request != nil {
			method, where = resp.Request.Method, redactURL(resp.Request.URL)
		}
		drainAndClose(resp.Body)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		r := *ue
		r.URL = redactURLsIn(ue.URL)
		if err == ue {
			err = &r
		}
		if where == "" {
			method, where = strings.ToUpper(ue.Op), r.URL
		}
	}
	if err == nil {
		return nil, fmt.Errorf("%s %s giving up after %d attempt(s)", method, where, attempts)
	}
	return nil, fmt.Errorf("%s %s giving up after %d attempt(s): %w", method, where, attempts, redactedError{err})
}

// redactedError is err with the URLs in its text redacted; it unwraps to
// err, so errors.Is and errors.As see through it.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redactURLsIn(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// redactingLogger is the retryablehttp.LeveledLogger NewClient gives
// retryablehttp: t.Logger, with the URLs in messages and values redacted.
type redactingLogger struct{ l *slog.Logger }

func (r redactingLogger) Error(msg string, kv ...any) { r.log(slog.LevelError, msg, kv) }
func (r redactingLogger) Warn(msg string, kv ...any)  { r.log(slog.LevelWarn, msg, kv) }
func (r redactingLogger) Info(msg string, kv ...any)  { r.log(slog.LevelInfo, msg, kv) }
func (r redactingLogger) Debug(msg string, kv ...any) { r.log(slog.LevelDebug, msg, kv) }

func (r redactingLogger) log(level slog.Level, msg string, kv []any) {
	ctx := context.Background()
	if !r.l.Enabled(ctx, level) {
		return
	}
	out := make([]any, len(kv))
	for i, v := range kv {
		switch v := v.(type) {
		case string:
			out[i] = redactURLsIn(v)
		case *url.URL:
			out[i] = redactURL(v)
		case error:
			out[i] = redactURLsIn(v.Error())
		case fmt.Stringer:
			out[i] = redactURLsIn(v.String())
		default:
			out[i] = v
		}
	}
	r.l.Log(ctx, level, redactURLsIn(msg), out...)
}

// CheckRetry is the retry policy of [NewClient]: retryablehttp's default
// (429, 5xx except 501, network errors) except that it never retries an
// error matching [ErrFinal] (every auth failure and configuration error of
// reauth's, and the errors custom Credentials mark so) nor a 401, 403 or 407
// response: those have been answered as far as they can be, and repeating
// them would send refused credentials again (DESIGN.md, invariants 1–3).
func CheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil && errors.Is(err, ErrFinal) {
		return false, nil
	}
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
			return false, nil
		}
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// CloseIdleConnections closes the idle connections of Base (nil:
// http.DefaultTransport), when Base can, and of the Transport's private copy
// of an *http.Transport Base (see Proxy). http.Client.CloseIdleConnections
// reaches a transport only through this method, so without it a client from
// [NewClient] could not release its pooled connections and their goroutines.
func (t *Transport) CloseIdleConnections() {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if c, ok := base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	if cfg, _ := t.config(); cfg != nil && cfg.clone != nil {
		cfg.clone.CloseIdleConnections()
	}
}
