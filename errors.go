package reauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinels for errors.Is. The typed errors below match them, so callers can
// test the class of a failure without a type assertion, through the
// *url.Error that http.Client wraps around a RoundTrip error and through the
// retryablehttp client.
var (
	// ErrUnauthorized is matched by every [*UnauthorizedError].
	ErrUnauthorized = errors.New("reauth: unauthorized")
	// ErrForbidden is matched by every [*ForbiddenError].
	ErrForbidden = errors.New("reauth: forbidden")
	// ErrInvalidRequest is matched by every [*InvalidRequestError].
	ErrInvalidRequest = errors.New("reauth: invalid request")
)

// ErrFinal is the one finality rule: an error that matches it (errors.Is)
// is a verdict that no retry of the same request can change, and
// [CheckRetry] does not retry it. Every typed error of reauth's that is
// final matches it ([*UnauthorizedError], [*ForbiddenError],
// [*InvalidRequestError], configuration errors, a token endpoint's refusal
// of the client); the errors of custom Credentials join it by wrapping it,
// fmt.Errorf("%w: …", reauth.ErrFinal), or with an Is method.
var ErrFinal = errors.New("reauth: final")

// Final returns err marked final: its text, errors.Is and errors.As see
// through it, and it matches [ErrFinal]. Nil stays nil.
func Final(err error) error {
	if err == nil {
		return nil
	}
	return finalError{err}
}

type finalError struct{ err error }

func (e finalError) Error() string      { return e.err.Error() }
func (e finalError) Unwrap() error      { return e.err }
func (finalError) Is(target error) bool { return target == ErrFinal }

// sentinel is a sentinel error that is final, and a configuration error
// when config is set: errors.Is matches it, ErrFinal, and ErrConfig.
type sentinel struct {
	msg    string
	config bool
	also   error // another sentinel it matches, nil for none
}

func (e *sentinel) Error() string { return e.msg }

func (e *sentinel) Is(target error) bool {
	return target == ErrFinal || e.config && target == ErrConfig || e.also != nil && target == e.also
}

func configError(msg string) error { return &sentinel{msg: msg, config: true} }

// The final sentinels are made here rather than in their declarations, so
// that go doc shows no unexported names; their texts name the fix.
func init() {
	ErrMalformedCredentials = configError("reauth: malformed credentials")
	ErrNoOrigins = configError(`reauth: Transport.Credentials is set but Transport.Origins is empty; list the origins the credentials may be sent to, e.g. Origins: []string{"https://api.example.com"}`)
	ErrInsecureCredentials = configError("reauth: refusing to send secret credentials (Basic, a bearer token) over plain http to a non-loopback host; use https, or set Transport.InsecureAllowHTTP")
	ErrNoCredentialsForOrigins = configError(`reauth: Transport.Origins is set but Transport.Credentials is nil; set the credentials to send to those origins, e.g. Credentials: reauth.Bearer(token)`)
	ErrProxyUnknown = configError("reauth: Transport.ProxyCredentials is set but Base is not an *http.Transport and Transport.Proxy is nil; set Transport.Proxy to the function Base routes by, e.g. Proxy: http.ProxyFromEnvironment")
	ErrConfig = &sentinel{msg: "reauth: configuration error"}
	ErrDigestRspauth = &sentinel{msg: "reauth: Digest Authentication-Info does not authenticate the server", also: ErrMutualAuthentication}
}

// Reasons an [*UnauthorizedError] gives for not retrying. They are wrapped by
// the error, so errors.Is(err, ErrSameCredentials) and the like work.
var (
	// ErrNoCredentials: the credentials cannot answer any of the challenges.
	// Credentials decline with a reason by returning an error that wraps it
	// from Refused (see [Credentials]).
	ErrNoCredentials = errors.New("reauth: no credentials answer the challenges")
	// ErrSameCredentials: the only credentials on offer are those just refused
	// (DESIGN.md, invariant 2); a caching token source is the usual cause.
	ErrSameCredentials = errors.New("reauth: the credentials on offer are those just refused")
	// ErrRefusedAfterRetry: the credentials were refused again and the leg
	// has no retry of the kind they ask for left (DESIGN.md, Retry ceiling).
	ErrRefusedAfterRetry = errors.New("reauth: credentials refused after the retry")
	// ErrBodyNotReplayable: the request body has no GetBody, cannot seek, and
	// grew past Transport.MaxBufferedBody before the challenge came, so it
	// could not be sent again.
	ErrBodyNotReplayable = errors.New("reauth: request body cannot be replayed for a retry: set Request.GetBody, pass a seekable body (an *os.File), or raise Transport.MaxBufferedBody")
	// ErrCallerCredentials: the request carried its own Authorization (or,
	// for a 407, Proxy-Authorization). reauth sends such a field as it is and
	// never replaces or retries it, so its refusal is final.
	ErrCallerCredentials = errors.New("reauth: the request's own Authorization or Proxy-Authorization was refused; reauth never replaces a field the caller set")
	// ErrUnboundOrigin: a 401 came from an origin not in Transport.Origins,
	// so it was not answered (DESIGN.md, invariant 4). Reported in an
	// [EventUnanswered], with the listed origins close to it.
	ErrUnboundOrigin = errors.New("reauth: the origin is not in Transport.Origins")
)

// Configuration errors returned by [Transport.RoundTrip] before anything is sent.
var (
	// ErrConfig is matched by every configuration error: the Transport or
	// its credentials are set up so that they cannot work (the specific
	// errors below, a malformed Transport.Origins entry, a field that
	// credentials may not set). The error's text names the fix. It is
	// final (see [ErrFinal]).
	ErrConfig error
	// ErrMalformedCredentials: the credentials cannot be written into a
	// header field as their scheme requires (a ':' in a Basic user-id, a
	// Bearer token that is not a b64token). The error says which, never the
	// value.
	ErrMalformedCredentials error
	// ErrNoOrigins: Credentials are set but Origins is empty, so there is no
	// origin the credentials may be sent to.
	ErrNoOrigins error
	// ErrInsecureCredentials: a secret credential (a value set with
	// AuthRequest.Set: Basic, a bearer token) would go over plain http to a
	// host that is not loopback (DESIGN.md, Plain http).
	ErrInsecureCredentials error
	// ErrNoCredentialsForOrigins: Origins are set but Credentials is nil, so
	// nothing would ever answer their challenges.
	ErrNoCredentialsForOrigins error
	// ErrProxyUnknown: ProxyCredentials are set, Base is not an
	// *http.Transport and Transport.Proxy is nil, so reauth cannot know
	// which proxy a request goes through and could never answer a 407.
	ErrProxyUnknown error
)

// ErrMutualAuthentication: the server failed to prove who it is, so the
// response it came with is withheld: a Digest Authentication-Info whose
// rspauth does not verify (RFC 7616 §3.5, [ErrDigestRspauth]) or a
// Negotiate mutual-authentication token that does not (RFC 4559, the
// negotiate module). Final (see [ErrFinal]): the same server will not
// prove itself on a retry either.
var ErrMutualAuthentication = Final(errors.New("reauth: the server failed mutual authentication"))

// MaxErrorBody is how many bytes of a refusing response's body the typed
// errors keep (RFC 9110 §11.6.1: the body may explain the refusal to the user).
const MaxErrorBody = 4 << 10

// BearerError holds the error fields of a Bearer challenge (RFC 6750 §3) and
// of the step-up and claims challenges built on it (RFC 9470 §3, and the
// claims challenge used by Azure's continuous access evaluation).
type BearerError struct {
	Code        string // error: invalid_request, invalid_token, insufficient_scope, …
	Description string // error_description
	URI         string // error_uri
	Scope       string // scope: the scope the resource requires
	ACRValues   string // acr_values (RFC 9470)
	MaxAge      string // max_age (RFC 9470), seconds as sent
	Claims      string // claims (insufficient_claims)
}

// bearerErrorOf returns the error fields of the first challenge that has
// any, whatever its scheme: RFC 6750 §3's parameters, which DPoP (RFC 9449
// §7.1) and step-up (RFC 9470) reuse; or the zero value.
func bearerErrorOf(chs []Challenge) BearerError {
	for _, c := range chs {
		e := BearerError{
			Code:        c.Params["error"],
			Description: c.Params["error_description"],
			URI:         c.Params["error_uri"],
			Scope:       c.Params["scope"],
			ACRValues:   c.Params["acr_values"],
			MaxAge:      c.Params["max_age"],
			Claims:      c.Params["claims"],
		}
		if e != (BearerError{}) {
			return e
		}
	}
	return BearerError{}
}

// UnauthorizedError is returned by [Transport.RoundTrip] when a 401 (or, from
// a proxy, a 407) is final: the server refused and reauth has nothing new to
// offer, or it refused again past the retry ceiling. A proxy's 407 to the
// CONNECT of an https request (see [ConfigureProxy]) is one too, with Method
// CONNECT and URL the tunnel's host:port. The response body has been
// read (up to [MaxErrorBody] bytes, kept in Body) and closed.
type UnauthorizedError struct {
	StatusCode int         // 401, or 407 from a proxy
	Challenges []Challenge // the challenges of the final response, parsed
	Bearer     BearerError // the Bearer error fields, if the server sent any
	Body       []byte      // the start of the response body, echoed credentials replaced
	Method     string      // the request's method
	URL        string      // the request's URL without userinfo, query or fragment
	Attempts   int         // requests sent for this call, retries included
	Err        error       // why reauth gave up: ErrNoCredentials, ErrSameCredentials, …
	// ParseErr is set when the challenges were malformed; Challenges then
	// holds those that parsed cleanly.
	ParseErr error

	answer *connectAnswer // a CONNECT's 407: what its retry sends; nil when there is none
}

func (e *UnauthorizedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reauth: %s %s: %d %s after %d request(s)", e.Method, e.URL, e.StatusCode, statusWord(e.StatusCode), e.Attempts)
	writeChallengeSchemes(&b, e.Challenges)
	writeBearerError(&b, e.Bearer)
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, ": %s", reasonText(e.Err))
	case e.answer != nil:
		b.WriteString(": the proxy credentials have an answer; send the request again")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUnauthorized) true.
func (e *UnauthorizedError) Is(target error) bool {
	return target == ErrUnauthorized || target == ErrFinal
}

// Unwrap returns the reason reauth gave up.
func (e *UnauthorizedError) Unwrap() error { return e.Err }

// ForbiddenError is returned by [Transport.RoundTrip] for a 403 from a bound
// origin: the server understood the credentials and refuses to authorize the
// request (RFC 9110 §15.5.4). It is final: repeating the request with the same
// credentials will not help, so reauth never retries it.
type ForbiddenError struct {
	StatusCode int         // 403
	Challenges []Challenge // WWW-Authenticate challenges on the 403, if any
	Bearer     BearerError // for insufficient_scope, Bearer.Scope is the scope required
	Body       []byte      // the start of the response body, echoed credentials replaced
	Method     string      // the request's method
	URL        string      // without userinfo, query or fragment
	// Proxy is true when the 403 answered the proxy's credentials (a proxy
	// that accepted them but will not forward the request, such as squid's
	// ERR_ACCESS_DENIED), false when it answered the origin's.
	Proxy bool
}

// RegistryError is one entry of the errors array a Docker/OCI distribution
// registry sends in an error body.
type RegistryError struct {
	Code    string `json:"code"`    // e.g. DENIED, UNAUTHORIZED, NAME_UNKNOWN
	Message string `json:"message"` // the registry's text, as it sent it
}

func (e *ForbiddenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reauth: %s %s: %d forbidden", e.Method, e.URL, e.StatusCode)
	writeBearerError(&b, e.Bearer)
	for _, re := range e.RegistryErrors() {
		fmt.Fprintf(&b, "; registry error %s: %s", cleanField(re.Code, nil), cleanField(re.Message, nil))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden || target == ErrFinal }

// InvalidRequestError is returned for a 400 from a bound origin whose Bearer
// challenge says error="invalid_request" (RFC 6750 §3.1): the request or its
// credentials were malformed, and sending them again will not help.
type InvalidRequestError struct {
	StatusCode int         // 400
	Challenges []Challenge // the WWW-Authenticate challenges, parsed
	Bearer     BearerError // the Bearer error fields: Code is invalid_request
	Body       []byte      // the start of the response body, echoed credentials replaced
	Method     string      // the request's method
	URL        string      // without userinfo, query or fragment
}

func (e *InvalidRequestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reauth: %s %s: %d invalid request", e.Method, e.URL, e.StatusCode)
	writeBearerError(&b, e.Bearer)
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidRequest) true.
func (e *InvalidRequestError) Is(target error) bool {
	return target == ErrInvalidRequest || target == ErrFinal
}

func statusWord(code int) string {
	if code == 407 {
		return "proxy authentication required"
	}
	return "unauthorized"
}

func writeChallengeSchemes(b *strings.Builder, chs []Challenge) {
	if len(chs) == 0 {
		b.WriteString(", no challenge")
		return
	}
	b.WriteString(", challenges:")
	for i, c := range chs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(c.Scheme)
		if realm, ok := c.Params["realm"]; ok {
			fmt.Fprintf(b, " realm=%q", realm)
		}
	}
}

// writeBearerError writes the server's error fields. The free text is
// cleaned (cleanField): a challenge's quoted-string may carry bidi controls
// and invalid UTF-8 (obs-text, RFC 9110 §5.6.4), and a hostile server must
// not be able to reorder or forge text in the caller's logs. The fields of
// the error keep what the server sent.
func writeBearerError(b *strings.Builder, e BearerError) {
	if e.Code != "" {
		fmt.Fprintf(b, ", error=%q", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(b, " (%s)", cleanField(e.Description, nil))
	}
	if e.Scope != "" {
		fmt.Fprintf(b, ", scope=%q", e.Scope)
	}
	if e.ACRValues != "" {
		fmt.Fprintf(b, ", acr_values=%q", e.ACRValues)
	}
	if e.MaxAge != "" {
		fmt.Fprintf(b, ", max_age=%s", cleanField(e.MaxAge, nil))
	}
	if e.Claims != "" {
		b.WriteString(", claims challenge")
	}
}

// registryErrorsOf decodes a Docker/OCI distribution error body
// ({"errors":[{"code":…,"message":…}]}); anything else gives nil. body is
// bounded by MaxErrorBody and already redacted.
func registryErrorsOf(body []byte) []RegistryError {
	if len(body) == 0 || body[0] != '{' {
		return nil
	}
	var doc struct {
		Errors []RegistryError `json:"errors"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	return doc.Errors
}

// RegistryErrors decodes the errors of a Docker/OCI registry error body
// ({"errors":[{"code":"DENIED","message":…}]}) from Body, nil when Body is
// not one: as the registry sent them but for echoed credentials, which were
// replaced by "[redacted]" in Body. It decodes when asked, so a 403 that no
// one asks about costs no JSON decoding; Error cleans them for printing.
func (e *ForbiddenError) RegistryErrors() []RegistryError { return registryErrorsOf(e.Body) }

// ErrRealmNotAllowed is wrapped by the [*TokenError] returned when a
// registry names a token realm that reauth will not send a token request to
// (see [RegistryOptions]): not https, on a private address, redirecting
// elsewhere with the password, on another host name with no *http.Transport
// to dial it by. Nothing was sent to it; the error's Endpoint is the realm,
// and it is final.
var ErrRealmNotAllowed = errors.New("reauth: registry token realm not allowed")

// realmNotAllowed is the error for a realm refused by policy, reason saying
// why ("is not in Transport.Origins; …").
func realmNotAllowed(realm, reason string) *TokenError {
	return &TokenError{Endpoint: realm, Err: fmt.Errorf("%w: %s", ErrRealmNotAllowed, reason), final: true}
}

// The "reauth: " prefix starts every error reauth makes, once. An error that
// wraps another error reauth made prints what it wraps without that prefix:
// the typed errors through reasonText, the wrapping errors made with fmt's
// verbs through errorf. So a chain reads "reauth: no credentials answer the
// challenges: unsupported Digest algorithm …", never "…: reauth: …".
const errPrefix = "reauth: "

// reasonText is err's text for use inside another reauth error's text: without
// its leading prefix.
func reasonText(err error) string {
	return strings.TrimPrefix(err.Error(), errPrefix)
}

// errorf is fmt.Errorf for reauth errors that wrap other errors: every error
// argument but one that opens the text is printed by reasonText. errors.Is
// and errors.As see the same chain as with fmt.Errorf.
func errorf(format string, args ...any) error {
	wrapped := fmt.Errorf(format, args...)
	inner := make([]any, len(args))
	for i, a := range args {
		if err, ok := a.(error); ok && (i > 0 || !strings.HasPrefix(format, "%")) {
			a = unprefixed{err}
		}
		inner[i] = a
	}
	return &wrapError{msg: fmt.Errorf(format, inner...).Error(), wrapped: wrapped}
}

// unprefixed prints an error by reasonText.
type unprefixed struct{ error }

func (e unprefixed) Error() string { return reasonText(e.error) }

// wrapError is an error made by errorf: its own text, and the errors that
// fmt.Errorf would have wrapped.
type wrapError struct {
	msg     string
	wrapped error
}

func (e *wrapError) Error() string { return e.msg }

func (e *wrapError) Unwrap() []error {
	switch w := e.wrapped.(type) {
	case interface{ Unwrap() []error }:
		return w.Unwrap()
	case interface{ Unwrap() error }:
		return []error{w.Unwrap()}
	}
	return nil
}

// ErrTokenEndpointCoolingDown is matched by a [*CoolDownError]: the token
// endpoint asked for a pause (429 or 503 with Retry-After, or repeated 5xx)
// and no token request is sent before it ends.
var ErrTokenEndpointCoolingDown = errors.New("reauth: the token endpoint is cooling down")

// CoolDownError is why a request that needed a new token failed without
// asking the token endpoint: the endpoint, or another process sharing the
// OAuth2Options.Store, asked for a pause until Until. It is not final
// ([NewClient] may retry the request after the pause); it comes wrapped in a
// [*TokenError].
type CoolDownError struct {
	Until time.Time // no token request before this time
}

func (e *CoolDownError) Error() string {
	return "reauth: the token endpoint asked for a pause until " + e.Until.UTC().Format(time.RFC3339) + "; no token request is sent before then"
}

// Is makes errors.Is(err, ErrTokenEndpointCoolingDown) true.
func (e *CoolDownError) Is(target error) bool { return target == ErrTokenEndpointCoolingDown }
