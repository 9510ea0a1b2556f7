package reauth

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// How reauth keeps secrets out of what it prints (DESIGN.md, invariant 7):
// credentials that print as their kind, and challenges with what a server
// echoed of the credentials replaced.

// Credentials print as their kind. Printed as plain structs they would
// show the password, the Basic field value or the token to anyone who logs
// them (slog's text handler prints values with %+v) or panics with them;
// with these methods fmt's %v, %+v, %s and %#v, and slog, do not.

func (b *basicCredentials) String() string   { return "reauth.Basic(redacted)" }
func (b *basicCredentials) GoString() string { return b.String() }

func (b *bearerCredentials) String() string   { return "reauth.Bearer(redacted)" }
func (b *bearerCredentials) GoString() string { return b.String() }

func (d *digestCredentials) String() string   { return "reauth.Digest(redacted)" }
func (d *digestCredentials) GoString() string { return d.String() }

func (c *oauth2Credentials) String() string   { return "reauth.OAuth2(redacted)" }
func (c *oauth2Credentials) GoString() string { return c.String() }

func (c *registryCredentials) String() string   { return "reauth.Registry(redacted)" }
func (c *registryCredentials) GoString() string { return c.String() }

func (p preemptive) String() string {
	return "reauth.Preemptive(" + describeCredentials(p.Credentials) + ")"
}
func (p preemptive) GoString() string { return p.String() }

// describeCredentials names c for String: its own String when it has one
// (reauth's do), else only its type, since a Credentials of the caller's may
// hold secrets in its fields.
func describeCredentials(c Credentials) string {
	if s, ok := c.(interface{ String() string }); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", c)
}

// redactedSecret stands in for a secret that a server echoed back.
const redactedSecret = "[redacted]"

// sentSecrets returns what a server could echo of the credentials field
// values a request sent: the token68 (Bearer's token, Basic's base64
// user-pass) and Basic's password. Digest sends no secret.
func sentSecrets(values ...string) []string {
	var out []string
	for _, v := range values {
		scheme, rest, ok := strings.Cut(v, " ")
		if !ok || len(rest) < 4 || !isToken68(rest) {
			continue
		}
		out = append(out, rest)
		if equalFoldASCII(scheme, "Basic") {
			if raw, err := base64.StdEncoding.DecodeString(rest); err == nil {
				if _, password, ok := strings.Cut(string(raw), ":"); ok && len(password) >= 4 {
					out = append(out, password)
				}
			}
		}
	}
	return out
}

// redactChallenges returns chs with every secret replaced in token68s and
// parameter values: a server may echo what it was sent into a realm or an
// error_description, and the typed errors and events show those. chs is
// returned as it is when nothing is replaced, and never modified.
func redactChallenges(chs []Challenge, secrets []string) []Challenge {
	if len(secrets) == 0 {
		return chs
	}
	var out []Challenge
	for i, c := range chs {
		tok, changed := redactSecrets(c.Token68, secrets)
		var params map[string]string
		for name, v := range c.Params {
			if r, ok := redactSecrets(v, secrets); ok {
				if params == nil {
					params = maps.Clone(c.Params)
				}
				params[name] = r
			}
		}
		if !changed && params == nil {
			continue
		}
		if out == nil {
			out = slices.Clone(chs)
		}
		out[i].Token68 = tok
		if params != nil {
			out[i].Params = params
		}
	}
	if out == nil {
		return chs
	}
	return out
}

// redactSecrets replaces each secret in s, reporting whether it did.
func redactSecrets(s string, secrets []string) (string, bool) {
	changed := false
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			s, changed = strings.ReplaceAll(s, secret, redactedSecret), true
		}
	}
	return s, changed
}

// secrets returns what the exchange has sent that a server could echo.
func (x *exchange) secrets() []string {
	var values [4]string
	n := 0
	for i := range x.legs {
		values[n], values[n+1] = x.legs[i].sent, x.legs[i].refused
		n += 2
	}
	return sentSecrets(values[:n]...)
}

// challenges parses resp's challenges for a typed error, with what the
// request sent redacted.
func (x *exchange) challenges(resp *http.Response) ([]Challenge, error) {
	chs, err := ResponseChallenges(resp)
	return redactChallenges(chs, x.secrets()), err
}

// redactURLsIn returns s with every http(s) URL in it reduced as redactURL
// reduces one: text that others wrote about a request (retryablehttp's log
// lines and errors, *url.Error) shows its URL whole, query included. A URL
// ends at white space or a quote; one with a query, fragment or userinfo
// that does not parse keeps only its scheme. Linear in len(s).
func redactURLsIn(s string) string {
	var b strings.Builder
	rest := s
	found := false
	for {
		i := indexURL(rest)
		if i < 0 {
			break
		}
		end := i + strings.IndexFunc(rest[i:], func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '"' || r == '\'' || r == '<' || r == '>' || r == '`'
		})
		if end < i {
			end = len(rest)
		}
		raw := rest[i:end]
		red := raw
		if strings.ContainsAny(raw, "?#@") {
			if u, err := url.Parse(raw); err == nil {
				red = redactURL(u)
			} else {
				red = raw[:strings.Index(raw, "://")+3] + "[redacted]"
			}
		}
		b.WriteString(rest[:i])
		b.WriteString(red)
		rest = rest[end:]
		found = true
	}
	if !found {
		return s
	}
	b.WriteString(rest)
	return b.String()
}

// indexURL returns the index of the first "http://" or "https://" in s,
// either case, or -1.
func indexURL(s string) int {
	for i := 0; i+7 <= len(s); i++ {
		if s[i] != 'h' && s[i] != 'H' {
			continue
		}
		if len(s)-i >= 7 && equalFoldASCII(s[i:i+7], "http://") || len(s)-i >= 8 && equalFoldASCII(s[i:i+8], "https://") {
			return i
		}
	}
	return -1
}
