package reauth

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"weak"
)

// ConfigureProxy makes ht authenticate to its proxy with creds when it opens
// a CONNECT tunnel for an https request, which http.Transport does below any
// RoundTripper, so that a [Transport] never sees the 407:
//
//	reauth.ConfigureProxy(ht, proxyCreds)
//
// Credentials that can be sent without a challenge (Basic) go with the first
// CONNECT. A 407 is returned as an [*UnauthorizedError] (StatusCode 407,
// Method CONNECT, URL the tunnel's host:port) instead of a bare string, a
// 403 as a [*ForbiddenError] with Proxy set, and the 407's
// Proxy-Authenticate challenges are handed to creds; when
// they have an answer that differs from the value refused, a Transport over
// ht sends the request again, once, and the new CONNECT carries that answer
// (Digest learns its nonce this way). Used without a Transport, the next
// request sends what the credentials learned.
//
// The Proxy-Authorization goes on the CONNECT only: the proxy consumes it and
// the origin, at the other end of the tunnel, never sees it. Do not also put
// userinfo in the proxy URL: Go sends that instead.
//
// A [Transport] whose Base is an *http.Transport (or nil) needs no
// ConfigureProxy: its ProxyCredentials answer both the plain-http 407 and
// the CONNECT's. ConfigureProxy is for an http.Transport used on its own or
// wrapped by another RoundTripper (then also set Transport.Proxy and
// ProxyCredentials for plain http). A Base already set up with
// ConfigureProxy keeps that setting: the CONNECT is answered once.
//
// ConfigureProxy keeps ht's ProxyConnectHeader, GetProxyConnectHeader and
// OnProxyConnectResponse, calling them first. Call it once per ht, before
// ht's first request.
func ConfigureProxy(ht *http.Transport, creds Credentials) {
	pc := &proxyConnect{
		creds:      creds,
		base:       ht,
		header:     ht.ProxyConnectHeader,
		getHeader:  ht.GetProxyConnectHeader,
		onResponse: ht.OnProxyConnectResponse,
	}
	ht.GetProxyConnectHeader = pc.connectHeader
	ht.OnProxyConnectResponse = pc.connectResponse
	markProxyConfigured(ht)
}

// configuredProxies holds the http.Transports that ConfigureProxy has set
// up, so that a Transport over one does not set up its copy a second time
// (the CONNECT would be answered twice). Weak keys: a Transport that is
// gone takes its entry with it.
var configuredProxies sync.Map // weak.Pointer[http.Transport] → struct{}

func markProxyConfigured(ht *http.Transport) {
	k := weak.Make(ht)
	if _, loaded := configuredProxies.LoadOrStore(k, struct{}{}); !loaded {
		runtime.AddCleanup(ht, func(k weak.Pointer[http.Transport]) { configuredProxies.Delete(k) }, k)
	}
}

func proxyConfigured(ht *http.Transport) bool {
	_, ok := configuredProxies.Load(weak.Make(ht))
	return ok
}

// routeDecision is the proxy reauth chose for a request, carried in its
// context to the private copy of an *http.Transport Base.
type routeDecision struct{ proxy *url.URL }

type routeDecisionKey struct{}

// withRoute returns req with reauth's choice of proxy in its context.
func withRoute(req *http.Request, proxy *url.URL) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), routeDecisionKey{}, &routeDecision{proxy}))
}

// routeByDecision is the Proxy of a Transport's private copy of an
// *http.Transport Base: a request for which reauth asked decide goes where
// that answer said, since decide asked again may answer otherwise (a proxy
// pool, failover) and the proxy credentials would then reach another
// proxy, or the origin. Any other request asks decide, once, here.
func routeByDecision(decide func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(r *http.Request) (*url.URL, error) {
		if d, ok := r.Context().Value(routeDecisionKey{}).(*routeDecision); ok {
			return d.proxy, nil
		}
		return decide(r)
	}
}

// connectRefusal is the error for a CONNECT the proxy at proxyURL refused
// with a status that is neither 407 nor 403: not about credentials, so it is
// not final, and the retrying client of [NewClient] may try again.
func connectRefusal(proxyURL *url.URL, target string, status int) error {
	return fmt.Errorf("reauth: CONNECT %s via proxy %s: %d %s", target, redactURL(proxyURL), status, strings.ToLower(http.StatusText(status)))
}

// connectAnswer is what the retry of one CONNECT sends: to proxy
// (canonical origin) for target. A Transport's retry carries it in its
// context; http.Transport dials with the request's context values, so it
// reaches connectHeader of the dial for that request. It also carries the
// CONNECT leg's AuthRequest.State and the retries taken, since each dial
// makes a new AuthRequest.
type connectAnswer struct {
	proxy, target string
	fields        []authField
	want, used    Retry // the retry asked for; those taken with it (set by retryConnect)
	refused       []string
	state         any
	sent          atomic.Bool // sent once: a later dial asks the credentials again
}

type connectAnswerKey struct{}

// proxyConnect holds ConfigureProxy's hooks and what they wrap.
type proxyConnect struct {
	creds      Credentials
	base       http.RoundTripper
	header     http.Header
	getHeader  func(context.Context, *url.URL, string) (http.Header, error)
	onResponse func(context.Context, *url.URL, *http.Request, *http.Response) error
}

// authRequest describes a CONNECT to the credentials. Request is a stand-in
// with the authority-form request-target (RFC 9110 §9.3.6), which is what
// Digest's uri covers for CONNECT. The proxy is the one the user configured,
// so the leg is preemptive: what can go without a challenge goes with the
// first CONNECT, which saves a connection.
func (pc *proxyConnect) authRequest(ctx context.Context, proxyURL *url.URL, target string, prev *connectAnswer) *AuthRequest {
	r := (&http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: http.Header{}}).WithContext(ctx)
	ar := &AuthRequest{req: r, onProxy: true, ext: &authExt{proxy: proxyURL, base: pc.base}, Preemptive: true}
	if prev != nil {
		ar.State = prev.state
	}
	return ar
}

// answerOf returns the answer of a retry for this CONNECT in ctx, or nil.
func answerOf(ctx context.Context, proxyURL *url.URL, target string) *connectAnswer {
	if a, ok := ctx.Value(connectAnswerKey{}).(*connectAnswer); ok && a.proxy == canonicalOrigin(proxyURL) && a.target == target {
		return a
	}
	return nil
}

// connectHeader is http.Transport.GetProxyConnectHeader: the answer a retry
// carries, or what the credentials send before any challenge.
func (pc *proxyConnect) connectHeader(ctx context.Context, proxyURL *url.URL, target string) (http.Header, error) {
	h := pc.header
	if pc.getHeader != nil {
		var err error
		if h, err = pc.getHeader(ctx, proxyURL, target); err != nil {
			return nil, err
		}
	}
	var fields []authField
	if a := answerOf(ctx, proxyURL, target); a != nil && a.sent.CompareAndSwap(false, true) {
		fields = a.fields
	} else if pc.creds != nil {
		ar := pc.authRequest(ctx, proxyURL, target, nil)
		err := pc.creds.Authorize(ar)
		if err == nil {
			err = ar.setError()
		}
		if err != nil && !errors.Is(err, ErrNoCredentials) {
			return nil, err
		}
		if err == nil {
			fields = ar.fields()
		}
	}
	if len(fields) == 0 {
		return h, nil
	}
	h = h.Clone()
	if h == nil {
		h = make(http.Header, len(fields))
	}
	for _, f := range fields {
		h.Set(f.name, f.value)
	}
	return h, nil
}

// connectResponse is http.Transport.OnProxyConnectResponse: a 407 becomes
// an *UnauthorizedError, a 403 a *ForbiddenError with Proxy set, any other
// status but 200 a plain error; a 407's challenges go to the credentials
// for an answer that differs from the values refused (DESIGN.md, invariant
// 2).
func (pc *proxyConnect) connectResponse(ctx context.Context, proxyURL *url.URL, connectReq *http.Request, resp *http.Response) error {
	if pc.onResponse != nil {
		if err := pc.onResponse(ctx, proxyURL, connectReq, resp); err != nil {
			return err
		}
	}
	target := connectReq.Host
	sent := connectReq.Header.Get("Proxy-Authorization")
	prev := answerOf(ctx, proxyURL, target)
	if resp.StatusCode == http.StatusOK {
		if pc.creds != nil && sent != "" {
			ar := pc.authRequest(ctx, proxyURL, target, prev)
			ar.req = connectReq
			return pc.creds.Observe(ar, resp)
		}
		return nil
	}
	switch resp.StatusCode {
	case http.StatusProxyAuthRequired:
	case http.StatusForbidden:
		return &ForbiddenError{StatusCode: resp.StatusCode, Method: http.MethodConnect, URL: target, Proxy: true}
	default:
		return connectRefusal(proxyURL, target, resp.StatusCode)
	}
	e := &UnauthorizedError{StatusCode: resp.StatusCode, Method: http.MethodConnect, URL: target, Attempts: 1}
	chs, perr := ParseChallenges(resp.Header.Values("Proxy-Authenticate")...)
	refused := []string{sent}
	var used Retry
	if prev != nil {
		refused = append(refused, prev.refused...)
		used = prev.used
		e.Attempts += bits.OnesCount(uint(used))
	}
	e.Challenges, e.ParseErr = redactChallenges(chs, sentSecrets(refused...)), perr
	if pc.creds == nil {
		e.Err = ErrNoCredentials
		return e
	}
	left := allowed(used)
	if left == 0 {
		e.Err = ErrRefusedAfterRetry
		return e
	}
	ar := pc.authRequest(ctx, proxyURL, target, prev)
	stand := ar.req
	ar.req = connectReq
	want, err := pc.creds.Refused(ar, &Refusal{StatusCode: resp.StatusCode, Challenges: chs, Header: resp.Header, Allowed: left})
	switch {
	case err != nil:
		e.Err = err
		return e
	case want == 0:
		e.Err = ErrNoCredentials
		return e
	case left&want == 0:
		e.Err = ErrRefusedAfterRetry
		return e
	}
	ar.req = stand
	err = pc.creds.Authorize(ar)
	if err == nil {
		err = ar.setError()
	}
	switch {
	case err != nil:
		e.Err = err
	case !ar.hasFields():
		e.Err = ErrNoCredentials
	case slices.Contains(refused, stand.Header.Get("Proxy-Authorization")):
		e.Err = ErrSameCredentials
	default:
		e.answer = &connectAnswer{proxy: canonicalOrigin(proxyURL), target: target, fields: ar.fields(), want: want, used: used, refused: refused, state: ar.State}
	}
	return e
}

// retryConnect reports whether to send the request again after err: a
// CONNECT refused with 407 whose challenge the proxy credentials answered.
// The retry is taken from the same ceiling as a 407's (see grant), and
// carries the answer, which differs from the values refused. When it will
// not retry, it sets the error's reason.
func (x *exchange) retryConnect(err error) bool {
	var pe *UnauthorizedError
	if !errors.As(err, &pe) || pe.Method != http.MethodConnect || pe.StatusCode != http.StatusProxyAuthRequired {
		return false
	}
	x.event(Event{Kind: EventChallenge, StatusCode: pe.StatusCode, Proxy: true, Challenges: pe.Challenges, Err: pe.ParseErr})
	answer := pe.answer
	pe.answer = nil
	hasBody := x.req.Body != nil && x.req.Body != http.NoBody
	if hasBody && x.body == nil && x.req.GetBody != nil {
		x.body = &replayableBody{body: x.req.Body, getBody: x.req.GetBody, firstSent: true}
	}
	var used Retry
	if answer != nil {
		var gerr error
		if used, gerr = grant(x.connectUsed, answer.want); gerr != nil {
			pe.Err = gerr
		}
	}
	if answer != nil && pe.Err == nil && hasBody && (x.body == nil || x.body.rewind() != nil) {
		pe.Err = ErrBodyNotReplayable
	}
	if answer == nil || pe.Err != nil {
		x.event(Event{Kind: EventGiveUp, StatusCode: pe.StatusCode, Proxy: true, Err: pe.Err})
		return false
	}
	x.connectUsed, answer.used = used, used
	x.req = x.req.WithContext(context.WithValue(x.req.Context(), connectAnswerKey{}, answer))
	var scheme string
	for _, f := range answer.fields {
		if f.name == "Proxy-Authorization" {
			scheme = schemeOf(f.value)
		}
	}
	x.event(Event{Kind: EventRetry, StatusCode: pe.StatusCode, Proxy: true, Scheme: scheme})
	return true
}

// retryUnbound handles a failed request to an origin without credentials:
// only a CONNECT refusal that the proxy credentials answered is retried.
func (x *exchange) retryUnbound(err error) (*http.Response, error) {
	for x.retryConnect(err) {
		var r *http.Request
		if r, err = x.build(); err != nil {
			return nil, err
		}
		var resp *http.Response
		if resp, err = x.send(r); err == nil {
			return resp, nil
		}
	}
	return nil, err
}
