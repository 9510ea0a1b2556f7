package reauth

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// Credentials authenticate the requests of a [Transport] with one
// auth-scheme: before every attempt they set the header fields their scheme
// sends, and when a 401 (407 on the proxy leg) refuses an attempt they say
// whether they have something new to send. The Transport decides where
// credentials may go (Origins, the plain-http rule), how often a request is
// retried (see [Retry]) and that no refused set of fields goes out again
// (DESIGN.md, invariant 2); Credentials decide what to send.
//
// For each request the Transport makes one [AuthRequest] per leg (the
// origin, and the proxy when ProxyCredentials apply, a CONNECT included) and
// calls, for that leg:
//
//	Authorize(r)     before every attempt, the first included
//	Refused(r, ref)  after an attempt refused with 401 (407 on the proxy
//	                 leg) while the leg has retries left
//	Observe(r, resp) with the response RoundTrip returns (not with one it
//	                 turns into a typed error: a final 401/407, 403, 400)
//
// A leg whose field the caller set on the request is the caller's: its
// Credentials are not called.
//
// Calls for one AuthRequest never overlap, and r.State carries what one call
// leaves for the next. Calls for different requests run concurrently:
// implementations must be safe for that.
//
// What a scheme may touch: the attempt's header fields, only through r.Set
// and r.SetProof during Authorize, and r.State. It must not modify
// r.Request() otherwise, must not read or close a refusal's body, and may
// read the final response's body in Observe only if it puts back an equal
// one. Work that waits (a token fetch, a helper command) is bounded by
// r.Context().
//
// Declining and failing. An error wrapping [ErrNoCredentials] declines:
// nothing (new) to offer. From Authorize, the attempt goes without this
// leg's fields; from Refused (as does returning 0 and a nil error), the
// refusal is final and RoundTrip returns an [*UnauthorizedError] whose Err
// is that error. Any other error fails the request with that error as it
// is; [CheckRetry] retries it unless it matches [ErrFinal], which an error
// joins by wrapping it (fmt.Errorf("%w: …", reauth.ErrFinal)), through
// [Final], or with an Is method.
type Credentials interface {
	// Authorize sets this leg's fields on the attempt about to be sent, or
	// none. It runs for every attempt, once the body is ready, so that
	// signatures cover the request as sent and proofs are fresh each time
	// (a nonce count, a jti).
	Authorize(r *AuthRequest) error
	// Refused learns from a refusal of r.Request() (a new nonce, a refused
	// token to drop) and returns the retry it asks for, one of ref.Allowed;
	// the next Authorize sets what the retry carries. Returning 0 and a nil
	// error declines, as an error wrapping ErrNoCredentials does.
	Refused(r *AuthRequest, ref *Refusal) (Retry, error)
	// Observe sees the response that ends the request, to verify it (Digest
	// rspauth, Negotiate mutual authentication) or learn from it
	// (nextnonce). A non-nil error withholds the response: its body is
	// closed and RoundTrip returns the error.
	Observe(r *AuthRequest, resp *http.Response) error
}

// Retry is the kind of retry Credentials ask for after a refusal. Each leg of
// a request is granted at most one of each kind, so at most three requests
// carry a leg's credentials (DESIGN.md, Retry ceiling).
type Retry uint8

const (
	// RetryChallenge: new credentials answer the challenge (a first answer,
	// a replaced token).
	RetryChallenge Retry = 1 << iota
	// RetryNonce: the server refused only the freshness of what was sent and
	// gave a new nonce (Digest stale=true, RFC 7616 §3.3; DPoP
	// use_dpop_nonce, RFC 9449 §8): the same secret goes again with a new
	// proof.
	RetryNonce
)

// grant is the retry ceiling, the one place it is decided: a leg that has
// used the retries in used may take want if want is one kind it has not
// used. It returns the retries used after want, or ErrRefusedAfterRetry.
func grant(used, want Retry) (Retry, error) {
	if (want != RetryChallenge && want != RetryNonce) || used&want != 0 {
		return used, ErrRefusedAfterRetry
	}
	return used | want, nil
}

// allowed returns the retries a leg that has used used may still ask for.
func allowed(used Retry) Retry { return (RetryChallenge | RetryNonce) &^ used }

// AuthRequest is one request as the Credentials of one leg see it, from its
// first attempt to the response that ends it. The Transport makes it
// ([NewAuthRequest] makes one to use Credentials alone); it is valid until
// RoundTrip returns.
type AuthRequest struct {
	// State belongs to the Credentials: nil when the request starts, kept
	// across its attempts, never read by the Transport. Credentials that
	// wrap others pass it through.
	State any
	// Preemptive says the user has declared the leg's origin (or proxy) a
	// protection space of these credentials before any challenge: set by
	// [Preemptive], and for the CONNECTs of [ConfigureProxy]. Password
	// schemes send up front when it is set (RFC 7617 §2.2).
	Preemptive bool

	onProxy bool // the proxy leg
	proof   bool // the first field is a proof (SetProof)
	req     *http.Request
	x       *exchange // the RoundTrip, for the body, Origins, the proxy, Base; nil outside one
	// name and val are the first field set on the attempt; val backs the
	// header's value slice, so the usual single field costs no allocation
	// of its own. The AuthRequest is part of the exchange's one allocation.
	name string
	val  [1]string
	ext  *authExt // what is rarely needed, allocated when it is
}

// authExt holds what an AuthRequest rarely needs: the proxy and base outside
// a RoundTrip, fields beyond the first, a field that may not be set, the
// sets refused.
type authExt struct {
	proxy   *url.URL
	base    http.RoundTripper
	more    []authField
	err     error            // a field that may not be set, reported after Authorize
	refused [][]authField    // the sets refused on this leg of this request
	kc      *keychainBinding // the credentials a Transport.Keychain resolved for the origin leg
}

// authField is one header field a leg set on an attempt. proof: a value that
// proves a secret without revealing it (SetProof).
type authField struct {
	name, value string
	proof       bool
}

// NewAuthRequest returns an AuthRequest for req on the origin leg, or on the
// proxy leg when proxy is not nil, for using Credentials outside a
// Transport (tests, a client of one's own): Set writes req.Header. base
// sends the credentials' own requests (nil: http.DefaultTransport).
func NewAuthRequest(req *http.Request, proxy *url.URL, base http.RoundTripper) *AuthRequest {
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	return &AuthRequest{req: req, onProxy: proxy != nil, ext: &authExt{proxy: proxy, base: base}}
}

// Context returns the request's context: it bounds any work the credentials
// do for it.
func (r *AuthRequest) Context() context.Context { return r.req.Context() }

// Request returns the attempt: during Authorize the one being built (the
// caller's fields and those set so far), during Refused the one refused,
// during Observe the one answered. For a CONNECT it is the CONNECT, in
// authority-form. It must not be modified but through Set and SetProof.
func (r *AuthRequest) Request() *http.Request { return r.req }

// Proxy returns the proxy on the proxy leg, nil on the origin leg.
func (r *AuthRequest) Proxy() *url.URL {
	switch {
	case !r.onProxy:
		return nil
	case r.ext != nil && r.ext.proxy != nil:
		return r.ext.proxy
	case r.x != nil:
		return r.x.via
	}
	return nil
}

// Base returns the Transport's base RoundTripper, for Credentials that fetch
// tokens. Requests sent through it carry none of the Transport's credentials.
func (r *AuthRequest) Base() http.RoundTripper {
	switch {
	case r.ext != nil && r.ext.base != nil:
		return r.ext.base
	case r.x != nil:
		return r.x.t.cfg.base
	}
	return http.DefaultTransport
}

// Field returns the leg's own credentials field: Authorization on the origin
// leg, Proxy-Authorization on the proxy leg.
func (r *AuthRequest) Field() string {
	if r.onProxy {
		return "Proxy-Authorization"
	}
	return "Authorization"
}

// Origin returns the origin the leg's fields go to: the request's, or the
// proxy's on the proxy leg. Credentials that keep state per protection
// space key it by this (and by realm).
func (r *AuthRequest) Origin() Origin {
	if p := r.Proxy(); p != nil {
		return originOf(p)
	}
	return originOf(r.req.URL)
}

// Bound reports whether u's origin is one the Transport's credentials may
// be sent to (Transport.Origins; for credentials from Transport.Keychain,
// the one origin they were resolved for): Digest keeps a challenge's domain (RFC
// 7616 §3.3) within it, Registry its token realm.
func (r *AuthRequest) Bound(u *url.URL) bool {
	if r.ext != nil && r.ext.kc != nil {
		// A keychain's credentials are bound to their origin only.
		return originOf(u) == r.ext.kc.origin
	}
	return r.x != nil && r.x.t.cfg.origins.contains(u)
}

// Body returns the request body for schemes that sign or hash it (Digest
// qop=auth-int, message signatures). It is available when the body is
// replayable (GetBody, a seekable body, or buffered by the Transport) and at
// most Transport.MaxBufferedBody bytes long; nil when the request has none.
func (r *AuthRequest) Body() ([]byte, error) {
	if r.x == nil || r.x.body == nil {
		return nil, nil
	}
	return r.x.body.bytes(r.MaxBody())
}

// MaxBody returns how many bytes of a body credentials may read to sign a
// request or verify a response (Digest's rspauth over an auth-int body):
// Transport.MaxBufferedBody, and at least [DefaultMaxBufferedBody].
func (r *AuthRequest) MaxBody() int64 {
	if r.x == nil {
		return DefaultMaxBufferedBody
	}
	return r.x.t.cfg.maxBody
}

// Set sets the header field name to value on the attempt being built,
// replacing the caller's value. value is a secret that anyone who reads it
// could replay (a password, a bearer token): over plain http it goes only to
// loopback hosts unless Transport.InsecureAllowHTTP (DESIGN.md, Plain
// http), and it is redacted from errors, logs and events. On the proxy leg
// name must be Proxy-Authorization; on the origin leg it may be any field
// but Proxy-Authorization, Cookie and those that frame or route a message
// (Host, Content-Length, Transfer-Encoding, TE, Trailer, Connection,
// Keep-Alive, Upgrade, Proxy-Connection). Setting another fails the request
// once Authorize returns. Valid only during Authorize.
func (r *AuthRequest) Set(name, value string) { r.set(name, value, false) }

// SetProof is Set for a value that proves a secret without revealing it and
// is bound to this request (a Digest response, a DPoP proof, a message
// signature): it may cross plain http.
func (r *AuthRequest) SetProof(name, value string) { r.set(name, value, true) }

func (r *AuthRequest) set(name, value string, proof bool) {
	name = textproto.CanonicalMIMEHeaderKey(name)
	err := r.settable(name)
	if err == nil && hasCTL(value) {
		err = fmt.Errorf("%w: credentials set %s to a value with a control character (RFC 9110 §5.5)", ErrMalformedCredentials, name)
	}
	if err != nil {
		r.extra()
		if r.ext.err == nil {
			r.ext.err = err
		}
		return
	}
	switch {
	case r.name == "" || r.name == name:
		r.name, r.val[0], r.proof = name, value, proof
		r.req.Header[name] = r.val[:1:1]
		return
	}
	r.extra()
	for i := range r.ext.more {
		if r.ext.more[i].name == name {
			r.ext.more[i] = authField{name, value, proof}
			r.req.Header[name] = []string{value}
			return
		}
	}
	r.ext.more = append(r.ext.more, authField{name, value, proof})
	r.req.Header[name] = []string{value}
}

func (r *AuthRequest) extra() {
	if r.ext == nil {
		r.ext = &authExt{}
	}
}

// reset forgets the fields set, before Authorize builds an attempt.
func (r *AuthRequest) reset(req *http.Request) {
	r.req, r.name, r.proof = req, "", false
	if r.ext != nil {
		r.ext.more, r.ext.err = nil, nil
	}
}

// setError returns the first field that could not be set, or nil.
func (r *AuthRequest) setError() error {
	if r.ext == nil {
		return nil
	}
	return r.ext.err
}

// hasFields reports whether Authorize set any field on the attempt.
func (r *AuthRequest) hasFields() bool { return r.name != "" }

// hasSecret reports whether a field set on the attempt is a secret (Set,
// not SetProof). It allocates nothing: it runs for every attempt.
func (r *AuthRequest) hasSecret() bool {
	if r.name != "" && !r.proof {
		return true
	}
	if r.ext != nil {
		for _, f := range r.ext.more {
			if !f.proof {
				return true
			}
		}
	}
	return false
}

// fields returns the fields set on the attempt, a new slice.
func (r *AuthRequest) fields() []authField {
	if r.name == "" {
		return nil
	}
	out := []authField{{r.name, r.val[0], r.proof}}
	if r.ext != nil {
		out = append(out, r.ext.more...)
	}
	return out
}

// settable says why name may not be set on r's leg, or nil.
func (r *AuthRequest) settable(name string) error {
	if r.onProxy {
		if name != "Proxy-Authorization" {
			return fmt.Errorf("%w: credentials on the proxy leg set %q; they may set only Proxy-Authorization", ErrConfig, name)
		}
		return nil
	}
	switch name {
	case "Proxy-Authorization", "Cookie", "Host", "Content-Length", "Transfer-Encoding", "Te", "Trailer",
		"Connection", "Keep-Alive", "Upgrade", "Proxy-Connection":
		return fmt.Errorf("%w: credentials set %q, a field they may not set (see AuthRequest.Set)", ErrConfig, name)
	}
	if !isToken(name) {
		return fmt.Errorf("%w: credentials set a field whose name is not a token (RFC 9110 §5.1)", ErrConfig)
	}
	return nil
}

// Refusal is a 401 (407 on the proxy leg) that refused an attempt.
type Refusal struct {
	StatusCode int         // 401 or 407
	Proto      string      // the refusing response's protocol, "HTTP/1.1" say
	Challenges []Challenge // parsed once by the Transport; empty when the server sent none
	// Header is the refusing response's header, for schemes that read more
	// than the challenges (a DPoP-Nonce). Its body belongs to the Transport.
	Header http.Header
	// Allowed are the retries the leg has left: Refused must return one of
	// them, or decline.
	Allowed Retry
}

// Basic returns credentials for the Basic scheme (RFC 7617). They are sent
// once an origin has challenged for Basic, and from then on with every
// request to it; wrap them in [Preemptive] to send them from the first
// request. The user-id must not contain ':' (RFC 7617 §2).
//
// When the challenge says charset="UTF-8" (RFC 7617 §2.1), the user-id and
// password are normalised to Unicode Normalization Form C before they are
// encoded, as that section requires: "jose\u0301" is sent as "jos\u00e9".
// Without charset, and when sent before any challenge, they are sent as the
// bytes given, unchanged.
func Basic(username, password string) Credentials {
	b := &basicCredentials{}
	if strings.ContainsRune(username, ':') {
		b.err = fmt.Errorf("%w: Basic user-id contains ':', which RFC 7617 §2 forbids", ErrMalformedCredentials)
	} else if hasCTL(username) || hasCTL(password) {
		b.err = fmt.Errorf("%w: Basic user-id or password contains a control character (RFC 7617 §2)", ErrMalformedCredentials)
	} else {
		b.value = basicFieldValue(username, password)
		b.utf8Value = b.value
		if nu, np := norm.NFC.String(username), norm.NFC.String(password); nu != username || np != password {
			// NFC composes characters and never introduces ':' or a
			// control character, so the checks above still hold.
			b.utf8Value = basicFieldValue(nu, np)
		}
	}
	return b
}

func basicFieldValue(username, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))
}

type basicCredentials struct {
	// value and utf8Value are precomputed, so the happy path allocates
	// nothing for them: the user-id and password as given, and normalised
	// to NFC for a challenge with charset="UTF-8" (the same string when
	// they already are).
	value, utf8Value string
	err              error
	// challenged holds the protection spaces (origins) that asked for Basic,
	// with the value their requests carry from then on. A plain map under a
	// lock: its origin keys are looked up without allocating.
	mu         sync.RWMutex
	challenged map[origin]string
}

// Authorize sends the credentials to an origin that has challenged for
// Basic, and to any origin when r.Preemptive.
func (b *basicCredentials) Authorize(r *AuthRequest) error {
	if b.err != nil {
		return b.err
	}
	o := r.Origin()
	b.mu.RLock()
	v := b.challenged[o]
	b.mu.RUnlock()
	if v == "" && r.Preemptive {
		// No challenge has named a charset: the credentials as given.
		v = b.remember(o, b.value)
	}
	if v != "" {
		r.Set(r.Field(), v)
	}
	return nil
}

// Refused answers a Basic challenge. A 401 without any challenge is not
// answered: nothing says that Basic is wanted (DESIGN.md, status table). A
// refusal of the credentials themselves asks for them again, which the
// Transport then refuses as the same credentials (DESIGN.md, invariant 2).
func (b *basicCredentials) Refused(r *AuthRequest, ref *Refusal) (Retry, error) {
	if b.err != nil {
		return 0, b.err
	}
	utf8 := false
	found := false
	for _, c := range ref.Challenges {
		if c.Is("Basic") {
			found = true
			utf8 = utf8 || strings.EqualFold(c.Params["charset"], "UTF-8")
		}
	}
	if !found {
		return 0, nil
	}
	if utf8 {
		b.remember(r.Origin(), b.utf8Value)
	} else {
		b.remember(r.Origin(), b.value)
	}
	return RetryChallenge, nil
}

// Observe does nothing: Basic learns nothing from responses.
func (b *basicCredentials) Observe(*AuthRequest, *http.Response) error { return nil }

// remember records that the protection space o takes Basic as v, and
// returns v.
func (b *basicCredentials) remember(o Origin, v string) string {
	b.mu.Lock()
	if b.challenged == nil {
		b.challenged = make(map[origin]string)
	}
	b.challenged[o] = v
	b.mu.Unlock()
	return v
}

// Preemptive returns credentials that send c from the first request to a
// bound origin, before any challenge: for APIs that expect Basic up front and
// never challenge (RFC 7617 §2.2 allows it). It sets AuthRequest.Preemptive
// and leaves the rest to c: schemes that cannot answer without a challenge,
// such as Digest, send nothing more.
func Preemptive(c Credentials) Credentials { return preemptive{c} }

type preemptive struct{ c Credentials }

func (p preemptive) Authorize(r *AuthRequest) error {
	r.Preemptive = true
	return p.c.Authorize(r)
}

func (p preemptive) Refused(r *AuthRequest, ref *Refusal) (Retry, error) {
	return p.c.Refused(r, ref)
}

func (p preemptive) Observe(r *AuthRequest, resp *http.Response) error {
	return p.c.Observe(r, resp)
}

// Bearer returns a static bearer token (RFC 6750), sent with every request
// to a bound origin. A static token has nothing new to offer when it is
// refused, so a 401 is final at once; use [OAuth2] for tokens that refresh.
// An empty token (an unset environment variable, say) or one that is not a
// b64token is an error, wrapping [ErrMalformedCredentials], at first use.
func Bearer(token string) Credentials {
	if token == "" {
		return &bearerCredentials{err: fmt.Errorf(`%w: the Bearer token is empty (is the environment variable it comes from unset?); pass reauth.Bearer a non-empty token`, ErrMalformedCredentials)}
	}
	if !isToken68(token) {
		return &bearerCredentials{err: fmt.Errorf("%w: Bearer token is not a valid b64token (RFC 6750 §2.1)", ErrMalformedCredentials)}
	}
	return &bearerCredentials{value: "Bearer " + token}
}

type bearerCredentials struct {
	value string
	err   error
}

// Authorize sends the token.
func (b *bearerCredentials) Authorize(r *AuthRequest) error {
	if b.err != nil {
		return b.err
	}
	r.Set(r.Field(), b.value)
	return nil
}

// Refused declines: a static token has nothing new to offer.
func (b *bearerCredentials) Refused(*AuthRequest, *Refusal) (Retry, error) { return 0, b.err }

// Observe does nothing.
func (b *bearerCredentials) Observe(*AuthRequest, *http.Response) error { return nil }

func hasScheme(chs []Challenge, scheme string) bool {
	for _, c := range chs {
		if c.Is(scheme) {
			return true
		}
	}
	return false
}

// isToken68 reports whether s is a token68 (RFC 9110 §11.2), the syntax of
// RFC 6750's b64token.
func isToken68(s string) bool {
	i := 0
	for i < len(s) && isToken68Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// schemeOf returns the auth-scheme of a credentials field value.
func schemeOf(value string) string {
	if i := strings.IndexByte(value, ' '); i >= 0 {
		return value[:i]
	}
	// A value without a scheme (a bare API key a caller set) is all secret.
	return ""
}

// Reporter returns a function that reports an event of the credentials' own
// making, such as [EventStoreFault], to the Transport's OnEvent and as a
// warning to its Logger. It may be called after the request has ended, from
// any goroutine; outside a Transport it does nothing.
func (r *AuthRequest) Reporter() func(ctx context.Context, e Event) {
	if r.x == nil {
		return func(context.Context, Event) {}
	}
	t := r.x.t
	return func(ctx context.Context, e Event) {
		if t.OnEvent != nil {
			t.OnEvent(e)
		}
		if t.Logger != nil {
			attrs := []slog.Attr{}
			if e.Err != nil {
				attrs = append(attrs, slog.String("reason", e.Err.Error()))
			}
			t.Logger.LogAttrs(ctx, slog.LevelWarn, "reauth: "+e.Kind.String(), attrs...)
		}
	}
}
