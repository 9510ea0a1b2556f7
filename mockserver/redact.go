package mockserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// fingerprint returns the first 8 hex digits of HMAC-SHA-256 of v under a key
// drawn at random for this Server: equal values give equal fingerprints, and
// a fingerprint in a log cannot be checked offline against guessed passwords.
func (s *Server) fingerprint(v string) string {
	m := hmac.New(sha256.New, s.fingerprintKey)
	m.Write([]byte(v))
	return "#" + hex.EncodeToString(m.Sum(nil)[:4])
}

// Redact returns the form in which the request log shows an Authorization
// field value, so that a test can compare a logged Credential with the one
// it expects:
//
//	Basic alice:*** #1a2b3c4d
//	Bearer *** #1a2b3c4d
//	Digest username="alice" algorithm=SHA-256 qop=auth nc=00000002 nonce=#5e6f7a8b #1a2b3c4d
//	Negotiate #1a2b3c4d
//	(malformed) #1a2b3c4d
//
// The #… fingerprints are keyed per Server (see [Request.Credential]); a
// userhash Digest username shows as userhash:<first 8 hex digits>.
func (s *Server) Redact(authorization string) string {
	v := strings.Trim(authorization, " \t")
	if v == "" {
		return ""
	}
	fp := s.fingerprint(v)
	c, p := readAuthorization(&http.Request{Header: http.Header{"Authorization": {v}}})
	if p != nil {
		return "(malformed) " + fp
	}
	switch {
	case c.Is("Basic"):
		user, _, p := decodeBasic(c)
		if p != nil {
			return "Basic (malformed) " + fp
		}
		return "Basic " + printable(user) + ":*** " + fp
	case c.Is("Bearer"):
		return "Bearer *** " + fp
	case c.Is("Digest"):
		var b strings.Builder
		b.WriteString("Digest")
		user := c.Param("username")
		if u, ok := c.Params["username*"]; ok {
			if dec, err := decodeExtValue(u); err == nil {
				user = dec
			}
		}
		if strings.EqualFold(c.Param("userhash"), "true") {
			user = "userhash:" + user[:min(8, len(user))]
		}
		fmt.Fprintf(&b, " username=%q", printable(user))
		for _, name := range []string{"algorithm", "qop", "nc"} {
			if v, ok := c.Params[name]; ok {
				fmt.Fprintf(&b, " %s=%s", name, printable(v))
			}
		}
		if n, ok := c.Params["nonce"]; ok {
			b.WriteString(" nonce=" + s.fingerprint(n))
		}
		return b.String() + " " + fp
	default:
		return printable(c.Scheme) + " " + fp
	}
}

func (s *Server) redactFields(values []string) string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = s.Redact(v)
	}
	return strings.Join(out, " | ")
}

// authScheme returns the auth-scheme of the first Authorization field.
func authScheme(values []string) string {
	if len(values) == 0 {
		return ""
	}
	scheme, _, _ := strings.Cut(strings.TrimLeft(values[0], " \t"), " ")
	for _, known := range []string{"Basic", "Bearer", "Digest"} {
		if strings.EqualFold(scheme, known) {
			return known
		}
	}
	return printable(scheme)
}

// printable cuts v to 64 bytes and replaces control characters and invalid
// UTF-8, so that a hostile header cannot garble a test's output.
func printable(v string) string {
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(v, "?"))
}

// secretParams are query parameters whose values the log never shows.
var secretParams = map[string]bool{
	"access_token": true, "refresh_token": true, "token": true, "password": true,
	"client_secret": true, "code": true, "code_verifier": true, "assertion": true,
	"client_assertion": true,
}

func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, part := range parts {
		key, _, hasValue := strings.Cut(part, "=")
		name, err := url.QueryUnescape(key)
		if err != nil {
			name = key
		}
		if hasValue && secretParams[strings.ToLower(name)] {
			parts[i] = key + "=***"
		}
	}
	return strings.Join(parts, "&")
}
