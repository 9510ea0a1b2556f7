package reauth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// ErrTokenEndpoint is matched by every [*TokenError]: OAuth2 credentials
// could not obtain a token.
var ErrTokenEndpoint = errors.New("reauth: obtaining a token failed")

// maxTokenErrorField bounds each field a token endpoint's error response
// contributes to a [*TokenError], so that a hostile endpoint cannot fill logs.
const maxTokenErrorField = 256

// TokenError is returned by [OAuth2] and [Registry] credentials that could
// not obtain a token: the token endpoint (a registry's token realm) refused
// (RFC 6749 §5.2), failed or could not be reached, it issued a token that
// cannot be sent, or the request's context ended while waiting for one.
//
// It holds what the endpoint said, never its response body, the client
// secret or a token: oauth2.RetrieveError is not kept because its Error and
// its Response carry them. A refusal (a 4xx other than 408 and 429) and an
// unusable token are final, so [NewClient] does not retry them; a 5xx, a
// network error or a context error may be retried.
type TokenError struct {
	Endpoint    string // the token endpoint or registry realm, without userinfo, query or fragment; "" when not known
	Method      string // GET or POST, when Endpoint is known
	StatusCode  int    // the token endpoint's HTTP status; 0 when there was no response
	Code        string // error: invalid_client, invalid_grant, unauthorized_client, …
	Description string // error_description, control characters and known secrets removed
	URI         string // error_uri
	// Err is the cause when it is not a refusal from the endpoint: a network
	// or context error, the source's own error, or what was wrong with the
	// token issued.
	Err error

	final bool
}

func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("reauth: obtaining a token")
	if e.Endpoint != "" {
		b.WriteString(" from ")
		if e.Method != "" {
			b.WriteString(e.Method + " ")
		}
		b.WriteString(e.Endpoint)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": token endpoint answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ", error=%q", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, " (%s)", e.Description)
	}
	if e.URI != "" {
		fmt.Fprintf(&b, ", see %s", e.URI)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %s", reasonText(e.Err))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrTokenEndpoint) true, and for an endpoint's 401
// or 403 also errors.Is(err, ErrUnauthorized) or errors.Is(err, ErrForbidden):
// the credentials were refused there.
func (e *TokenError) Is(target error) bool {
	return target == ErrTokenEndpoint ||
		target == ErrUnauthorized && e.StatusCode == http.StatusUnauthorized ||
		target == ErrForbidden && e.StatusCode == http.StatusForbidden ||
		target == ErrFinal && e.final ||
		target == ErrInvalidDPoPProof && e.Code == "invalid_dpop_proof"
}

// Unwrap returns Err.
func (e *TokenError) Unwrap() error { return e.Err }

// tokenErrorOf turns a token source's error into a *TokenError. The details
// of an oauth2.RetrieveError are kept and the error itself dropped (its text
// may hold the response body); secrets are removed from what the endpoint
// wrote, in case it echoes them.
func tokenErrorOf(err error, secrets ...string) *TokenError {
	var te *TokenError
	if errors.As(err, &te) {
		return te
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return &TokenError{Err: err}
	}
	e := &TokenError{
		Code:        cleanField(re.ErrorCode, secrets),
		Description: cleanField(re.ErrorDescription, secrets),
		URI:         cleanField(re.ErrorURI, secrets),
	}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
	}
	// RFC 6749 §5.2: the endpoint refused the client or the grant; the same
	// request will be refused again. 408 and 429 say "later", not "never".
	s := e.StatusCode
	e.final = s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
	return e
}

// unusableToken is the TokenError for a token that was issued but cannot be
// sent; retrying would fetch the same kind of token again.
func unusableToken(format string, args ...any) *TokenError {
	return &TokenError{Err: fmt.Errorf(format, args...), final: true}
}

// clientSecrets returns the forms in which x/oauth2 sends a client secret
// (RFC 6749 §2.3.1): as it is, form-urlencoded in the body, and inside the
// base64 of Basic client authentication. An endpoint may echo any of them.
func clientSecrets(clientID, secret string) []string {
	if secret == "" {
		return nil
	}
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)))
	return []string{secret, url.QueryEscape(secret), basic}
}

// cleanField makes a field of a token endpoint's error response safe to
// print: secrets it echoes are replaced, it is cut to maxTokenErrorField
// bytes, and what does not print (control and format characters, invalid
// UTF-8) becomes '?', so that it cannot forge lines or reorder text in a log.
func cleanField(s string, secrets []string) string {
	s, _ = redactSecrets(s, secrets)
	if len(s) > maxTokenErrorField {
		s = s[:maxTokenErrorField] + "…"
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}
