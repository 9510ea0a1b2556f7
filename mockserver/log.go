package mockserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// MaxBodyBytes is the largest request body the server accepts; a larger one
// gets 413. Bodies are read whole before a scenario sees the request, so that
// the log can tell whether a retried request carried the same body.
const MaxBodyBytes = 1 << 20

// MaxLoggedRequests bounds the request log: past it the oldest tenth is
// dropped, so that a long-running command does not grow without end.
const MaxLoggedRequests = 100_000

// Request is one request as the server saw it, for tests to assert on. It
// holds no secret: credentials and bodies appear only as fingerprints.
type Request struct {
	Time     time.Time // on the server's Clock, when the status was sent
	Method   string
	Path     string // URL path
	Query    string // raw query; values of secret-bearing parameters (password, token, …) replaced by ***
	Scenario string // the scenario that answered: "basic", "digest", "oauth2", "registry", …; "" for none

	// Scheme is the auth-scheme of the Authorization field: "Basic",
	// "Bearer" or "Digest" in that spelling whatever the case sent, others
	// as sent; "" when the request had no Authorization field.
	Scheme string
	// Credential is the Authorization field redacted by [Server.Redact]:
	// equal credentials give equal strings, and no secret is shown.
	Credential string

	BodyLen  int    // bytes of request body received
	BodyHash string // fingerprint of the body, "" when it was empty
	Status   int    // status code sent
}

type requestLog struct {
	mu      sync.Mutex
	entries []Request
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) >= MaxLoggedRequests {
		l.entries = append(l.entries[:0], l.entries[MaxLoggedRequests/10:]...)
	}
	l.entries = append(l.entries, r)
}

func (l *requestLog) snapshot() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.entries...)
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}

// Requests returns a copy of the request log, oldest first. A request is
// logged when its status is sent, so it is there before the client has read
// the response.
func (s *Server) Requests() []Request { return s.log.snapshot() }

// RequestsTo returns the logged requests whose path starts with prefix.
func (s *Server) RequestsTo(prefix string) []Request {
	var out []Request
	for _, r := range s.log.snapshot() {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() { s.log.reset() }

// recorder logs the request when the handler sends its status.
type recorder struct {
	http.ResponseWriter
	s         *Server
	entry     Request
	committed bool
}

func (rec *recorder) commit(status int) {
	if rec.committed {
		return
	}
	rec.committed = true
	rec.entry.Status = status
	rec.entry.Time = rec.s.clock.Now()
	rec.s.log.add(rec.entry)
}

func (rec *recorder) WriteHeader(status int) {
	if status >= 200 {
		rec.commit(status)
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.commit(http.StatusOK)
	return rec.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// scenarioOf records which scenario answers the request.
func scenarioOf(name string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.entry.Scenario = name
		}
		h(w, r)
	}
}

// ServeHTTP logs the request, reads its body whole (up to [MaxBodyBytes]) and
// hands it to the scenario for its path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, s: s, entry: Request{
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      redactQuery(r.URL.RawQuery),
		Scheme:     authScheme(r.Header.Values("Authorization")),
		Credential: s.redactFields(r.Header.Values("Authorization")),
	}}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	rec.entry.BodyLen = len(body)
	if len(body) > 0 {
		rec.entry.BodyHash = s.fingerprint(string(body))
	}
	switch {
	case err != nil:
		http.Error(rec, "reading the request body failed", http.StatusBadRequest)
		return
	case len(body) > MaxBodyBytes:
		http.Error(rec, fmt.Sprintf("request body over the %d-byte limit", MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mux.ServeHTTP(rec, r)
	rec.commit(http.StatusOK)
}

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
