package mockserver

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxAuthorizationBytes is the longest Authorization field value the server
// reads. A longer one gets 400 before any parsing, so that a broken client
// costs bounded work. (Whole header sections over [Config.MaxHeaderBytes] are
// refused by net/http with 431 before they reach a scenario.)
const MaxAuthorizationBytes = 8 << 10

// credentials is the parsed Authorization field of a request:
// auth-scheme [ 1*SP ( token68 / #auth-param ) ] (RFC 9110 §11.4), read by
// [parseCredentials], the server's own parser. It deliberately shares no code
// with reauth's challenge parser: the server is the oracle the client is
// tested against, so a parser bug must not hide on both sides.
type credentials struct {
	Scheme  string            // auth-scheme as sent; compared case-insensitively
	Token68 string            // "" unless the credentials are a token68
	Params  map[string]string // auth-params: names lower-cased, values unquoted; nil when none
}

// Is reports whether the auth-scheme is scheme, case-insensitively
// (RFC 9110 §11.1).
func (c *credentials) Is(scheme string) bool { return strings.EqualFold(c.Scheme, scheme) }

// Param returns the auth-param name (lower case), "" when absent.
func (c *credentials) Param(name string) string { return c.Params[name] }

// problem is why a request is refused: 400 for a malformed Authorization
// field, 401 for credentials that are absent or wrong. msg goes into the
// response body; it never quotes the credentials.
type problem struct {
	status int
	msg    string
}

func badRequest(format string, args ...any) *problem {
	return &problem{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func unauthorized(format string, args ...any) *problem {
	return &problem{status: http.StatusUnauthorized, msg: fmt.Sprintf(format, args...)}
}

// readAuthorization returns the credentials of r, nil when r carries no
// Authorization field, or a 400 problem naming what is malformed.
func readAuthorization(r *http.Request) (*credentials, *problem) {
	return readCredentials(r.Header, "Authorization")
}

// readCredentials reads the credentials of field, Authorization or
// Proxy-Authorization (RFC 9110 §11.6.2, §11.7.2), which share a grammar.
func readCredentials(h http.Header, field string) (*credentials, *problem) {
	values := h.Values(field)
	switch {
	case len(values) == 0:
		return nil, nil
	case len(values) > 1:
		return nil, badRequest("%d %s fields; a request carries one (RFC 9110 §11.6.2)", len(values), field)
	}
	v := strings.Trim(values[0], " \t")
	if v == "" {
		return nil, badRequest("empty %s field", field)
	}
	if len(v) > MaxAuthorizationBytes {
		return nil, badRequest("%s field of %d bytes is over the %d-byte limit", field, len(v), MaxAuthorizationBytes)
	}
	c, err := parseCredentials(v)
	if err != nil {
		return nil, badRequest("malformed %s field at byte %d: %s", field, err.offset, err.reason)
	}
	return c, nil
}

// decodeBasic returns the user-id and password of Basic credentials:
// token68 = base64(user-id ":" password) (RFC 7617 §2).
func decodeBasic(c *credentials) (user, password string, p *problem) {
	if c.Token68 == "" {
		if len(c.Params) > 0 {
			return "", "", badRequest("Basic credentials carry auth-params instead of a base64 token68")
		}
		return "", "", badRequest("Basic credentials are empty")
	}
	raw, err := base64.StdEncoding.DecodeString(c.Token68)
	if err != nil {
		return "", "", badRequest("Basic credentials are not valid base64 (RFC 4648 §4, padded)")
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", badRequest("Basic credentials have no ':' between user-id and password")
	}
	// The challenge says charset="UTF-8" (RFC 7617 §2.1): anything else
	// cannot match a configured user.
	if !utf8.ValidString(user) || !utf8.ValidString(password) {
		return "", "", unauthorized("Basic credentials are not UTF-8 as the challenge's charset requires")
	}
	return user, password, nil
}

// bearerToken returns the token of Bearer credentials, checking the b64token
// syntax of RFC 6750 §2.1.
func bearerToken(c *credentials) (string, *problem) {
	if c.Token68 == "" {
		if len(c.Params) > 0 {
			return "", badRequest("Bearer credentials carry auth-params instead of a token")
		}
		return "", badRequest("Bearer credentials have no token")
	}
	// ParseChallenges accepts exactly token68 here, which is b64token.
	return c.Token68, nil
}

// quote writes v as a quoted-string (RFC 9110 §5.6.4).
func quote(v string) string {
	if !strings.ContainsAny(v, `"\`) {
		return `"` + v + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}
