package reauth

import (
	"context"
	"errors"
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
//     them with a value that differs from the one refused, and the request is
//     retried once. With nothing new to offer, or after the retry, RoundTrip
//     returns an [*UnauthorizedError].
//   - 403 from a bound origin: final at once, an [*ForbiddenError].
//   - 400 with a Bearer error="invalid_request": final, an [*InvalidRequestError].
//   - 407 from the proxy a plain-http request goes through: the same as 401,
//     with ProxyCredentials and Proxy-Authorization, and a retry of its own.
//   - 407 to the CONNECT of an https request, from a Base set up with
//     [ConfigureProxy]: one retry when the proxy credentials have answered
//     the challenge with a new value, also for origins not in Origins.
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
// credentials.
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
	// request goes through (see Proxy). They are never sent to origins. For
	// https requests, which reach the proxy as CONNECT below Base, see
	// [ConfigureProxy].
	ProxyCredentials Credentials
	// Proxy chooses the proxy of each request, as http.Transport.Proxy does.
	// When Base is an *http.Transport (or nil), the Transport sends through a
	// copy of it whose Proxy is this one, so the proxy that gets
	// ProxyCredentials is the proxy the request really goes through. For any
	// other Base, Proxy must describe how that Base routes. Nil means Base's
	// own Proxy when Base is an *http.Transport, and no proxy otherwise: a
	// 407 is then never answered, since it cannot have come from a proxy.
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
	// InsecureAllowHTTP lets Basic and Bearer credentials go over plain http
	// to hosts that are not loopback, where anyone on the path can read them.
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
	base    http.RoundTripper
	origins *originSet
	proxy   func(*http.Request) (*url.URL, error)
	maxBuf  int64 // what a body without GetBody may be buffered to; <0: never
	maxBody int64 // what a body may be read to for signing (auth-int)
}

func (t *Transport) config() (*transportConfig, error) {
	t.once.Do(func() {
		c := &transportConfig{base: t.Base, proxy: t.Proxy, maxBuf: t.MaxBufferedBody}
		if c.base == nil {
			c.base = http.DefaultTransport
		}
		if ht, ok := c.base.(*http.Transport); ok {
			if c.proxy == nil {
				c.proxy = ht.Proxy
			} else {
				// Route by the same function that decides where proxy
				// credentials go: answering a 407 with ProxyCredentials is
				// safe only if the request really went to that proxy.
				ht = ht.Clone()
				ht.Proxy = c.proxy
				c.base = ht
			}
		}
		if c.maxBuf == 0 {
			c.maxBuf = DefaultMaxBufferedBody
		}
		c.maxBody = max(c.maxBuf, DefaultMaxBufferedBody)
		if t.Credentials != nil && len(t.Origins) == 0 {
			t.err = ErrNoOrigins
			return
		}
		c.origins, t.err = parseOrigins(t.Origins)
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
	hostOverride := bound && req.Host != "" && !strings.EqualFold(req.Host, req.URL.Host)
	var proxy *url.URL
	// Only a plain-http request can meet a forward proxy's 407, or be sent
	// on by one to another host than its URL's.
	if (t.ProxyCredentials != nil || hostOverride) && req.URL.Scheme == "http" && cfg.proxy != nil {
		if proxy, err = cfg.proxy(req); err != nil {
			closeRequestBody(req)
			return nil, err
		}
	}
	if hostOverride && proxy != nil {
		// Through a forward proxy the request goes to req.Host, not to the
		// bound req.URL (RFC 9112 §3.2.2): credentials must not follow.
		bound = false
	}
	// Proxy-Authorization set on a request is seen by the proxy only
	// through an http(s) proxy: through a SOCKS proxy (or a CONNECT tunnel,
	// see ConfigureProxy) it would reach the origin.
	if t.ProxyCredentials == nil || proxy != nil && proxy.Scheme != "http" && proxy.Scheme != "https" {
		proxy = nil
	}
	if !bound && proxy == nil {
		resp, err := cfg.base.RoundTrip(req)
		if err != nil {
			// A CONNECT refused with 407 may be answered (ConfigureProxy).
			return (&exchange{t: t, cfg: cfg, req: req, attempts: 1}).retryUnbound(err)
		}
		return resp, nil
	}
	x := &exchange{t: t, cfg: cfg, req: req}
	// Nearly every request has one leg, kept in x.one so that the state of
	// a call is a single small allocation.
	x.legs = x.one[:0]
	if proxy != nil && bound {
		x.legs = make([]leg, 0, 2)
	}
	// The proxy leg comes first: a 407 is answered before the origin sees
	// the request at all.
	if proxy != nil {
		x.legs = append(x.legs, leg{ar: AuthRequest{Request: req, Proxy: proxy, Base: cfg.base, x: x}})
	}
	if bound {
		x.legs = append(x.legs, leg{ar: AuthRequest{Request: req, Base: cfg.base, x: x}})
	}
	return x.run()
}

// leg is one kind of authentication on a request: to the origin (401,
// Authorization) or to the proxy (407, Proxy-Authorization). Each has its
// own single retry.
type leg struct {
	ar   AuthRequest // ar.Proxy is set for the proxy's leg
	sent string      // the value on the request being sent, "" for none
	// refused is the value of the first refusal. One retry per leg means a
	// second refusal is final, so no other value needs remembering.
	refused string
	retried bool
}

// field is the header field the leg's credentials go in.
func (l *leg) field() string {
	if l.ar.Proxy != nil {
		return "Proxy-Authorization"
	}
	return "Authorization"
}

// creds returns the credentials that answer for l: ProxyCredentials for
// the proxy, Credentials for the origin.
func (x *exchange) creds(l *leg) Credentials {
	if l.ar.Proxy != nil {
		return x.t.ProxyCredentials
	}
	return x.t.Credentials
}

// exchange is the state of one RoundTrip call with authentication.
type exchange struct {
	t    *Transport
	cfg  *transportConfig
	req  *http.Request
	legs []leg // proxy first, then origin
	// one holds the only leg of a request with one, which is nearly every
	// request: a proxy and an origin to authenticate to need two.
	one      [1]leg
	body     *replayableBody // nil when the request has no body
	attempts int
	// connectRetried: the request was sent again after a CONNECT 407
	// (ConfigureProxy), that challenge kind's one retry.
	connectRetried bool
}

// origin returns the leg to the bound origin, nil when the request does not
// go to one.
func (x *exchange) origin() *leg {
	if n := len(x.legs); n > 0 && x.legs[n-1].ar.Proxy == nil {
		return &x.legs[n-1]
	}
	return nil
}

// proxy returns the leg to the proxy, nil when the request does not go
// through one with ProxyCredentials.
func (x *exchange) proxy() *leg {
	if len(x.legs) > 0 && x.legs[0].ar.Proxy != nil {
		return &x.legs[0]
	}
	return nil
}

func (x *exchange) run() (*http.Response, error) {
	// The body first: schemes that sign it (Digest auth-int) read it when
	// they answer up front.
	if x.req.Body != nil && x.req.Body != http.NoBody {
		x.body = newReplayableBody(x.req, x.cfg.maxBuf)
		// The one close of the caller's body, on every path: now, or once
		// the base has closed what it was given.
		defer x.body.done()
	}
	for i := range x.legs {
		l := &x.legs[i]
		v, err := x.creds(l).Authorization(&l.ar)
		if err == nil {
			err = x.checkSendable(l, v)
		}
		if err != nil {
			return nil, err
		}
		l.sent = v
	}
	for {
		resp, err := x.send()
		if err != nil {
			if x.retryConnect(err) {
				continue
			}
			return nil, err
		}
		l := x.legFor(resp.StatusCode)
		if l == nil {
			if x.origin() != nil {
				if err := x.finalStatus(resp); err != nil {
					return nil, err
				}
			}
			return x.observe(resp)
		}
		retry, err := x.answer(l, resp)
		if !retry {
			return x.final(resp, l, err)
		}
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

// send sends one attempt: a shallow copy of the caller's request with this
// attempt's body and credentials. A fresh copy each time: the base may still
// hold the previous one (RoundTripper contract).
func (x *exchange) send() (*http.Response, error) {
	r := new(http.Request)
	*r = *x.req
	h, spare := cloneHeader(x.req.Header, len(x.legs))
	for i := range x.legs {
		if l := &x.legs[i]; l.sent != "" {
			spare[i] = l.sent
			h[l.field()] = spare[i : i+1 : i+1]
		}
	}
	r.Header = h
	if x.body != nil {
		body, err := x.body.next()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	x.attempts++
	resp, err := x.cfg.base.RoundTrip(r)
	if resp == nil && err == nil {
		return nil, errors.New("reauth: Base RoundTripper returned a nil response and a nil error")
	}
	return resp, err
}

// answer decides whether to retry after a 401 or 407: it asks the leg's
// credentials for a new value and refuses one already refused (invariant 2).
// It returns false with the reason to give up.
func (x *exchange) answer(l *leg, resp *http.Response) (bool, error) {
	chs, perr := ResponseChallenges(resp)
	x.event(Event{Kind: EventChallenge, StatusCode: resp.StatusCode, Proxy: l.ar.Proxy != nil, Challenges: chs, Scheme: schemeOf(l.sent), Err: perr})
	if l.retried {
		return false, ErrRefusedAfterRetry
	}
	l.refused = l.sent
	if err := x.req.Context().Err(); err != nil {
		return false, err
	}
	next, err := answerRefusal(x.creds(l), &l.ar, &Refusal{StatusCode: resp.StatusCode, Challenges: chs, Sent: l.refused, Header: resp.Header})
	if err != nil {
		return false, err
	}
	if err := x.checkSendable(l, next); err != nil {
		return false, err
	}
	// Last: rewinding abandons the attempt sent, which must stay whole if
	// its response is the final one (a full-duplex body still streaming).
	if x.body != nil {
		if err := x.body.rewind(); err != nil {
			return false, err
		}
	}
	drainAndClose(resp.Body)
	l.retried = true
	l.sent = next
	x.refreshOtherLegs(l)
	x.event(Event{Kind: EventRetry, StatusCode: resp.StatusCode, Proxy: l.ar.Proxy != nil, Scheme: schemeOf(next)})
	return true, nil
}

// answerRefusal asks creds for a value answering refusal, and says why there
// is none: nothing to offer, or only the value just refused (invariant 2).
// Responses and CONNECT refusals (proxy.go) follow this one rule.
func answerRefusal(creds Credentials, ar *AuthRequest, refusal *Refusal) (string, error) {
	next, err := creds.Answer(ar, refusal)
	switch {
	case err != nil:
		return "", err
	case next == "":
		return "", ErrNoCredentials
	case next == refusal.Sent:
		return "", ErrSameCredentials
	}
	return next, nil
}

// refreshOtherLegs asks the legs other than the one retrying for their value
// again: a Digest answer must not go out twice with one nonce count (RFC 7616
// §3.4), which a proxy that checks counts would take for a replay.
func (x *exchange) refreshOtherLegs(retrying *leg) {
	for i := range x.legs {
		o := &x.legs[i]
		if o == retrying || o.sent == "" {
			continue
		}
		if v, err := x.creds(o).Authorization(&o.ar); err == nil && v != "" && v != o.refused {
			o.sent = v
		}
	}
}

// checkSendable enforces invariant 4's rule on plain http: Basic and Bearer
// go over http only to loopback hosts, unless the user opted in by name.
func (x *exchange) checkSendable(l *leg, v string) error {
	if v == "" || l.ar.Proxy != nil || x.t.InsecureAllowHTTP || x.req.URL.Scheme != "http" {
		return nil
	}
	s := schemeOf(v)
	if (equalFoldASCII(s, "Basic") || equalFoldASCII(s, "Bearer")) && !isLoopback(x.req.URL.Hostname()) {
		return ErrInsecureCredentials
	}
	return nil
}

// final turns a 401 or 407 that will not be retried into an
// *UnauthorizedError, or a credentials error into itself.
func (x *exchange) final(resp *http.Response, l *leg, reason error) (*http.Response, error) {
	var fatal error
	switch {
	case errors.Is(reason, ErrNoCredentials), errors.Is(reason, ErrSameCredentials),
		errors.Is(reason, ErrRefusedAfterRetry), errors.Is(reason, ErrBodyNotReplayable):
	default:
		fatal = reason // the credentials failed (token endpoint down, context done, …)
	}
	x.event(Event{Kind: EventGiveUp, StatusCode: resp.StatusCode, Proxy: l.ar.Proxy != nil, Err: reason})
	if fatal != nil {
		drainAndClose(resp.Body)
		return nil, fatal
	}
	if x.t.ReturnResponse {
		return resp, nil
	}
	chs, perr := x.challenges(resp)
	return nil, &UnauthorizedError{
		StatusCode: resp.StatusCode,
		Challenges: chs,
		Bearer:     bearerErrorOf(chs),
		Body:       readErrorBody(resp.Body),
		Method:     x.req.Method,
		URL:        redactURL(x.req.URL),
		Attempts:   x.attempts,
		Err:        reason,
		ParseErr:   perr,
	}
}

// finalStatus turns a 403, or a 400 with Bearer error="invalid_request", from
// a bound origin into its typed error. Neither is retried: the server
// understood the credentials and sending them again will not help.
func (x *exchange) finalStatus(resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusForbidden:
		x.event(Event{Kind: EventForbidden, StatusCode: resp.StatusCode})
		if x.t.ReturnResponse {
			return nil
		}
		chs, _ := x.challenges(resp)
		body := readErrorBody(resp.Body)
		return &ForbiddenError{
			StatusCode:     resp.StatusCode,
			Challenges:     chs,
			Bearer:         bearerErrorOf(chs),
			Body:           body,
			Method:         x.req.Method,
			URL:            redactURL(x.req.URL),
			RegistryErrors: registryErrorsOf(resp.Header, body),
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
			Body:       readErrorBody(resp.Body),
			Method:     x.req.Method,
			URL:        redactURL(x.req.URL),
		}
	}
	return nil
}

// observe hands the response to credentials that learn from responses
// (Digest's Authentication-Info).
func (x *exchange) observe(resp *http.Response) (*http.Response, error) {
	for i := range x.legs {
		l := &x.legs[i]
		if l.sent == "" {
			continue
		}
		if o, ok := x.creds(l).(ResponseObserver); ok {
			if err := o.Observe(&l.ar, l.sent, resp); err != nil {
				drainAndClose(resp.Body)
				return nil, err
			}
		}
	}
	return resp, nil
}

// cloneHeader copies h as http.Header.Clone does, with room for extra more
// fields of one value each: it returns the copy and extra spare values that
// share the copy's backing array, so that the credentials added to it cost
// no allocation of their own. One pass: the array is sized for one value a
// field, and a field with more grows it (the fields copied before keep
// their place in the old one).
func cloneHeader(h http.Header, extra int) (http.Header, []string) {
	sv := make([]string, 0, len(h)+extra)
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
	n := len(sv)
	return h2, slices.Grow(sv, extra)[n : n+extra]
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
// retryablehttp's default logger writes every request to stderr.
func NewClient(t *Transport) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: t}
	c.CheckRetry = CheckRetry
	c.Logger = nil
	if t.Logger != nil {
		c.Logger = t.Logger
	}
	return c
}

// CheckRetry is the retry policy of [NewClient]: retryablehttp's default
// (429, 5xx except 501, network errors) except that it never retries an auth
// failure. A 401, 403 or 407, as a response or as reauth's typed error, has
// already been answered as far as it can be; repeating it would send refused
// credentials again (DESIGN invariants 1–3).
func CheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil && isFinalAuthError(err) {
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

// isFinalAuthError reports whether err is one of reauth's own verdicts, which
// no retry can change.
func isFinalAuthError(err error) bool {
	for _, target := range []error{ErrUnauthorized, ErrForbidden, ErrInvalidRequest, ErrNoOrigins, ErrInsecureCredentials, ErrMalformedCredentials} {
		if errors.Is(err, target) {
			return true
		}
	}
	var fe finalError
	return errors.As(err, &fe) && fe.Final()
}

// finalError is implemented by errors of reauth that may be final: those
// whose Final reports true (a token endpoint's refusal of the client, a
// registry realm refused by policy) are not retried by [CheckRetry].
type finalError interface {
	error
	Final() bool
}

// CloseIdleConnections closes the idle connections of Base (nil:
// http.DefaultTransport), when Base can. http.Client.CloseIdleConnections
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
}
