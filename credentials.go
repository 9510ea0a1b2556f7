package reauth

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// Credentials supply the Authorization (or, for a proxy, Proxy-Authorization)
// field values a [Transport] sends. The Transport decides where they may go
// and when to retry; Credentials decide what to send. Implementations must be
// safe for concurrent use.
//
// The Transport compares every value an implementation returns with the
// values refused for the same request and never sends a refused one again
// (DESIGN.md, invariant 2), so an implementation need not track that itself.
type Credentials interface {
	// Authorization returns the field value to send with r before any
	// challenge for it, or "" to send nothing yet. Token schemes answer from
	// the first request; password schemes once the protection space has
	// challenged them (RFC 7617 §2.2, RFC 7616 §3.3).
	Authorization(r *AuthRequest) (string, error)
	// Answer returns the field value to retry with after the refusal, or ""
	// when these credentials have nothing new to offer. To decline with a
	// reason (an unsupported algorithm, a scope a new token will not have),
	// return an error that wraps [ErrNoCredentials]: like "", it ends the
	// request with an [*UnauthorizedError], whose Err is that error. Any
	// other error fails the request with that error (a token endpoint that
	// failed, say).
	Answer(r *AuthRequest, refusal *Refusal) (string, error)
}

// ResponseObserver is implemented by Credentials that learn from the
// responses to the values they supplied, such as Digest's
// Authentication-Info (RFC 7615). A non-nil error fails the request.
type ResponseObserver interface {
	Observe(r *AuthRequest, sent string, resp *http.Response) error
}

// AuthRequest is what Credentials see of a request. It is valid only during
// the call it is passed to.
type AuthRequest struct {
	// Request is the outgoing request. Credentials must not modify it; its
	// context bounds any work they do (fetching a token, say).
	Request *http.Request
	// Proxy is the proxy being answered when the Credentials serve as
	// Transport.ProxyCredentials, nil otherwise.
	Proxy *url.URL
	// Base is the Transport's base RoundTripper, for Credentials that must
	// fetch tokens. Requests sent through it carry none of the Transport's
	// credentials.
	Base http.RoundTripper

	// x is the RoundTrip call the request belongs to, for its body and the
	// Transport's settings; nil for a CONNECT (see ConfigureProxy).
	x     *exchange
	stash *digestStash // Digest's answer, for its Observe
}

// Origin returns the origin ("scheme://host:port", lower case, port always
// present) that the credentials are being sent to: the request's, or the
// proxy's for proxy credentials. Credentials that keep state per protection
// space key it by this (and by realm).
func (r *AuthRequest) Origin() string {
	// Computed on each call rather than kept: an AuthRequest is made for
	// every request, and few Credentials ask.
	if r.Proxy != nil {
		return canonicalOrigin(r.Proxy)
	}
	return canonicalOrigin(r.Request.URL)
}

// origin is the origin the credentials go to, as a comparable key that costs
// no allocation.
func (r *AuthRequest) origin() origin {
	if r.Proxy != nil {
		return originOf(r.Proxy)
	}
	return originOf(r.Request.URL)
}

// Bound reports whether u's origin is one the Transport's credentials
// may be sent to: Digest uses it to keep a challenge's domain (RFC 7616 §3.3)
// within Transport.Origins.
func (r *AuthRequest) Bound(u *url.URL) bool {
	return r.x != nil && r.x.cfg.origins.contains(u)
}

// Body returns the request body for schemes that sign it (Digest qop=auth-int).
// It is available when the body is replayable (GetBody, or buffered by the
// Transport) and at most Transport.MaxBufferedBody bytes long.
func (r *AuthRequest) Body() ([]byte, error) {
	if r.x == nil || r.x.body == nil {
		return nil, nil
	}
	return r.x.body.bytes(r.maxBody())
}

// maxBody is how much of a body may be read to sign it or to verify a
// response; 0 outside a RoundTrip, where there is no body.
func (r *AuthRequest) maxBody() int64 {
	if r.x == nil {
		return 0
	}
	return r.x.cfg.maxBody
}

// Refusal describes a 401 or 407 that the Credentials are asked to answer.
type Refusal struct {
	StatusCode int         // 401 or 407
	Challenges []Challenge // parsed challenges; empty when the server sent none
	// Sent is the field value that was refused, "" if the request carried none.
	Sent string
	// Header is the refusing response's header, for schemes that read more
	// than the challenges.
	Header http.Header
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

func (b *basicCredentials) Authorization(r *AuthRequest) (string, error) {
	if b.err != nil {
		return "", b.err
	}
	b.mu.RLock()
	v := b.challenged[r.origin()]
	b.mu.RUnlock()
	return v, nil
}

// Answer answers a Basic challenge. A 401 without any challenge is not
// answered: nothing says that Basic is wanted (DESIGN.md, status table).
func (b *basicCredentials) Answer(r *AuthRequest, refusal *Refusal) (string, error) {
	if b.err != nil {
		return "", b.err
	}
	utf8 := false
	found := false
	for _, c := range refusal.Challenges {
		if c.Is("Basic") {
			found = true
			utf8 = utf8 || strings.EqualFold(c.Params["charset"], "UTF-8")
		}
	}
	if !found {
		return "", nil
	}
	if utf8 {
		return b.remember(r, b.utf8Value), nil
	}
	return b.remember(r, b.value), nil
}

// upFront records r's protection space as one that takes Basic and returns
// the credentials, as given: no challenge has named a charset.
func (b *basicCredentials) upFront(r *AuthRequest) (string, error) {
	if b.err != nil {
		return "", b.err
	}
	return b.remember(r, b.value), nil
}

// remember records that r's protection space takes Basic as v, and returns v.
func (b *basicCredentials) remember(r *AuthRequest, v string) string {
	b.mu.Lock()
	if b.challenged == nil {
		b.challenged = make(map[origin]string)
	}
	b.challenged[r.origin()] = v
	b.mu.Unlock()
	return v
}

// Preemptive returns credentials that send c from the first request to a
// bound origin, before any challenge: for APIs that expect Basic up front and
// never challenge (RFC 7617 §2.2 allows it). For schemes that cannot answer
// without a challenge, such as Digest, it changes nothing.
func Preemptive(c Credentials) Credentials { return preemptive{c} }

// upFronter is implemented by Credentials that can be sent before any
// challenge when the user asks for it.
type upFronter interface {
	upFront(r *AuthRequest) (string, error)
}

type preemptive struct{ Credentials }

func (p preemptive) Authorization(r *AuthRequest) (string, error) {
	v, err := p.Credentials.Authorization(r)
	if v != "" || err != nil {
		return v, err
	}
	if u, ok := p.Credentials.(upFronter); ok {
		return u.upFront(r)
	}
	return "", nil
}

// Observe passes responses on when c observes them.
func (p preemptive) Observe(r *AuthRequest, sent string, resp *http.Response) error {
	if o, ok := p.Credentials.(ResponseObserver); ok {
		return o.Observe(r, sent, resp)
	}
	return nil
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

func (b *bearerCredentials) Authorization(*AuthRequest) (string, error) { return b.value, b.err }

func (b *bearerCredentials) Answer(*AuthRequest, *Refusal) (string, error) { return "", b.err }

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
	return value
}
