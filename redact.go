package reauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
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
	return "reauth.Preemptive(" + describeCredentials(p.c) + ")"
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

// minSecretLen: shorter secrets are not replaced. Replacing every "ab" of a
// server's text would garble it and show where the secret occurs.
const minSecretLen = 4

// Every text from a server that reauth keeps in an error (challenges and
// their Bearer fields, a registry's errors, the start of a body, a token
// endpoint's error fields) has the secrets that the server could echo
// replaced by redactSecrets, with the secrets listed by sentSecrets (what a
// request sent) or by the credentials (what a token request sent), each in
// its echoForms. Error() then cleans what it prints (cleanField).

// echoForms returns the forms in which a server may echo secret: as it is,
// URL-encoded (a query or a form), and JSON-escaped (a JSON error body), with
// and without the HTML escapes of Go's encoder.
func echoForms(secret string) []string {
	if len(secret) < minSecretLen {
		return nil
	}
	out := []string{secret}
	add := func(form string) {
		if !slices.Contains(out, form) {
			out = append(out, form)
		}
	}
	add(url.QueryEscape(secret))
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(secret) == nil {
			quoted := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
			add(string(quoted[1 : len(quoted)-1]))
		}
	}
	return out
}

// sentSecrets returns what a server could echo of the secret field values
// (those set with AuthRequest.Set) a request sent, in their echoForms: the
// value, its token68 when it is "scheme token68" (a bearer token, Basic's
// user-pass), and, when that token68 is base64 of "id:secret" (RFC 7617,
// RFC 6749 §2.3.1), the secret. A rule about the values, not about schemes.
func sentSecrets(values ...string) []string {
	var out []string
	for _, v := range values {
		_, rest, ok := strings.Cut(v, " ")
		if !ok || len(rest) < minSecretLen || !isToken68(rest) {
			// Not "scheme token68": the whole value is the secret (an
			// API key field, say).
			out = append(out, echoForms(v)...)
			continue
		}
		out = append(out, echoForms(rest)...)
		if raw, err := base64.StdEncoding.DecodeString(rest); err == nil {
			if _, secret, ok := strings.Cut(string(raw), ":"); ok && utf8.ValidString(secret) && !hasCTL(secret) {
				out = append(out, echoForms(secret)...)
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

// redactSecrets replaces each secret in s, reporting whether it did. It is
// the one place where echoed secrets are replaced.
func redactSecrets(s string, secrets []string) (string, bool) {
	changed := false
	for _, secret := range secrets {
		if len(secret) >= minSecretLen && strings.Contains(s, secret) {
			s, changed = strings.ReplaceAll(s, secret, redactedSecret), true
		}
	}
	return s, changed
}

// secrets returns what the exchange has sent that a server could echo.
func (x *exchange) secrets() []string {
	var values []string
	add := func(fields []authField) {
		for _, f := range fields {
			if !f.proof {
				values = append(values, f.value)
			}
		}
	}
	for i := range x.legs {
		ar := &x.legs[i].ar
		add(ar.fields())
		if ar.ext != nil {
			for _, set := range ar.ext.refused {
				add(set)
			}
		}
	}
	return sentSecrets(values...)
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

// errorBody reads the start of resp's body for a typed error, with what the
// request sent redacted.
func (x *exchange) errorBody(resp *http.Response) []byte {
	body := readErrorBody(resp.Body)
	if r, changed := redactSecrets(string(body), x.secrets()); changed {
		return []byte(r)
	}
	return body
}
