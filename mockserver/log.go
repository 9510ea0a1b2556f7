package mockserver

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
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
	Scenario string // [Scenario.Name] of the one that answered: "basic", "digest", "registry", …; "" for none (404)

	// Scheme is the auth-scheme of the Authorization field: "Basic",
	// "Bearer" or "Digest" in that spelling whatever the case sent, others
	// as sent; "" when the request had no Authorization field.
	Scheme string
	// Credential is the Authorization field redacted by [Server.Redact]:
	// equal credentials give equal strings, and no secret is shown.
	Credential string

	// Target is set on requests the server handled as a forward proxy
	// (Scenario "proxy", see [ProxyConfig]): host:port for CONNECT, else the
	// absolute URL without its query. Path and Query are then the URL's.
	Target string
	// ProxyScheme and ProxyCredential are Scheme and Credential for the
	// Proxy-Authorization field. On a request that reached a scenario they
	// show a Proxy-Authorization that a proxy failed to consume.
	ProxyScheme     string
	ProxyCredential string

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

// RequestsTo returns the logged requests to the server itself (not those
// it forwarded as a proxy) whose path starts with prefix.
func (s *Server) RequestsTo(prefix string) []Request {
	var out []Request
	for _, r := range s.log.snapshot() {
		if r.Target == "" && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// ProxyRequests returns the logged requests the server handled as a forward
// proxy, oldest first. A forwarded request that reaches this server is
// logged twice: as a proxy request, after the origin's entry for it.
func (s *Server) ProxyRequests() []Request {
	var out []Request
	for _, r := range s.log.snapshot() {
		if r.Target != "" {
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
// hands it to the scenario for its path, or to the forward proxy
// ([ProxyConfig]).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, s: s, entry: Request{
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      redactQuery(r.URL.RawQuery),
		Scheme:     authScheme(r.Header.Values("Authorization")),
		Credential: s.redactFields(r.Header.Values("Authorization")),

		ProxyScheme:     authScheme(r.Header.Values("Proxy-Authorization")),
		ProxyCredential: s.redactFields(r.Header.Values("Proxy-Authorization")),
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
	if s.cfg.Proxy.Enabled && isProxyRequest(r) {
		rec.entry.Scenario, rec.entry.Target = "proxy", proxyTarget(r)
		s.serveProxy(rec, r)
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	rec.commit(http.StatusOK)
}
