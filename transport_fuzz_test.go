package reauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// FuzzTransport runs one request through a Transport whose network is a
// RoundTripper stub: the fuzzer picks the request's URL (and so its
// origin), the credentials, and for each attempt the status and the
// WWW-Authenticate, Proxy-Authenticate and Authentication-Info values. An
// https request with proxy credentials goes through an emulated CONNECT that
// calls the hooks of ConfigureProxy as http.Transport does; a registry's
// realm is answered by the same stub. Whatever the network does:
//
//   - no panic, no hang, and no response body read past reauth's bounds;
//   - at most one retry per challenge kind: 2 attempts for the origin alone,
//     3 with a proxy (DESIGN.md, invariant 1);
//   - a credential refused with 401 or 407 is not sent again (invariant 2);
//   - no Authorization to an origin outside Origins, no Basic or Bearer over
//     plain http to a host that is not loopback, no Proxy-Authorization on an
//     https request, no Authorization on a CONNECT (invariant 4);
//   - a realm is asked only where the realm policy allows;
//   - every attempt that reaches the origin carries the whole body (invariant 5);
//   - no secret in the error, the events or the debug log (invariant 7).
//
// The seed corpus is in testdata/fuzz/FuzzTransport; the setup byte is
// described on fuzzSetup.
func FuzzTransport(f *testing.F) {
	f.Fuzz(func(t *testing.T, rawURL string, setup byte, script []byte, h1, h2, h3 string) {
		runTransportFuzz(t, rawURL, fuzzSetup(setup), script, [3]string{h1, h2, h3})
	})
}

// The origins the fuzzed Transport binds its credentials to, and where its
// plain-http proxy is.
var (
	fuzzOrigins  = []string{"https://api.example.com", "http://127.0.0.1:8080", "http://plain.example.com"}
	fuzzProxyURL = &url.URL{Scheme: "http", Host: "proxy.example.com:3128"}
	fuzzDefault  = "https://api.example.com/v2/team/app/manifests/latest"
)

// Secrets of the fuzzed credentials. All contain SENTINEL, so that output
// can be searched for them at once; their base64 forms are listed too.
const (
	fuzzPassword      = "pw-SENTINEL-7f3a"
	fuzzProxyPassword = "proxy-pw-SENTINEL-55e1"
	fuzzStaticToken   = "tok-SENTINEL-91c2"
)

var fuzzSecrets = []string{
	"SENTINEL",
	base64.StdEncoding.EncodeToString([]byte("alice:" + fuzzPassword)),
	base64.StdEncoding.EncodeToString([]byte("proxyuser:" + fuzzProxyPassword)),
}

// fuzzSetup is the setup byte: bits 0–2 the origin credentials (none, Basic,
// Preemptive Basic, Bearer, Digest, OAuth2, Registry, anonymous Registry),
// bits 3–4 the proxy credentials (none, Basic, Digest, Preemptive Basic),
// bit 5 a request body, bit 6 a body without GetBody and a buffer limit
// smaller than it, bit 7 ReturnResponse.
type fuzzSetup byte

func (s fuzzSetup) origin() int      { return int(s & 7) }
func (s fuzzSetup) proxy() int       { return int(s >> 3 & 3) }
func (s fuzzSetup) body() bool       { return s&(1<<5) != 0 }
func (s fuzzSetup) unbuffered() bool { return s&(1<<6) != 0 }
func (s fuzzSetup) returnResp() bool { return s&(1<<7) != 0 }

func (s fuzzSetup) credentials(tokens *atomic.Int64) Credentials {
	switch s.origin() {
	case 1:
		return Basic("alice", fuzzPassword)
	case 2:
		return Preemptive(Basic("alice", fuzzPassword))
	case 3:
		return Bearer(fuzzStaticToken)
	case 4:
		return Digest("alice", fuzzPassword)
	case 5:
		// A source that issues a new token on every call, as OAuth2 requires.
		return OAuth2(tokenSourceFunc(func() (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: fmt.Sprintf("oauth-SENTINEL-%d", tokens.Add(1)), TokenType: "Bearer"}, nil
		}))
	case 6, 7:
		user, password := "alice", fuzzPassword
		if s.origin() == 7 {
			user, password = "", ""
		}
		return RegistryWithOptions(user, password, RegistryOptions{LookupNetIP: fuzzLookup})
	}
	return nil
}

func (s fuzzSetup) proxyCredentials() Credentials {
	switch s.proxy() {
	case 1:
		return Basic("proxyuser", fuzzProxyPassword)
	case 2:
		return Digest("proxyuser", fuzzProxyPassword)
	case 3:
		return Preemptive(Basic("proxyuser", fuzzProxyPassword))
	}
	return nil
}

// fuzzLookup resolves realm hosts without the network: one public name,
// everything else private (an internal host a registry must not aim at).
func fuzzLookup(_ context.Context, host string) ([]netip.Addr, error) {
	if strings.EqualFold(host, "auth.example.com") {
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
}

// fuzzAttempt is one request of the Transport as the stub saw it.
type fuzzAttempt struct {
	authorization, proxyAuthorization string
	connect                           *fuzzConnect // the CONNECT before it, if any
	reached                           bool         // the request reached the origin (CONNECT, if any, was 200)
	body                              []byte
	status                            int
}

type fuzzConnect struct {
	proxyAuthorization string
	status             int
}

// fuzzNet is the stub network. Its script gives each answer two bytes: a
// status and a selection of headers (see response).
type fuzzNet struct {
	t       *testing.T
	script  []byte
	headers [3]string
	connect *http.Transport // ConfigureProxy's hooks; nil without proxy credentials for https

	mu        sync.Mutex
	attempts  []fuzzAttempt
	realmURLs []*url.URL
	realmAuth []string
	bodies    []*countingBody
}

const fuzzMarker = "X-Fuzz-Request"

func (n *fuzzNet) next() byte {
	if len(n.script) == 0 {
		return 0
	}
	b := n.script[0]
	n.script = n.script[1:]
	return b
}

// fuzzStatuses maps a status byte to a status; 0xF0 and above take the
// status from the next two bytes, any int16 at all.
var fuzzStatuses = [16]int{200, 401, 401, 401, 407, 407, 403, 400, 404, 500, 503, 429, 307, 204, 101, 999}

func (n *fuzzNet) status() int {
	b := n.next()
	if b >= 0xF0 {
		return int(int16(uint16(n.next())<<8 | uint16(n.next())))
	}
	return fuzzStatuses[b&15]
}

// response builds an answer from the script: bits 0–1 of the header byte
// pick WWW-Authenticate (none, h1, h2, h3), bits 2–3 Proxy-Authenticate,
// bits 4–5 Authentication-Info and Proxy-Authentication-Info; each value
// holds one field per line. Bit 6 makes the body a JSON registry error,
// bit 7 an endless body.
func (n *fuzzNet) response(req *http.Request) *http.Response {
	status := n.status()
	sel := n.next()
	h := http.Header{}
	pick := func(i byte) []string {
		if i == 0 {
			return nil
		}
		return strings.Split(n.headers[i-1], "\n")
	}
	if v := pick(sel & 3); v != nil {
		h["Www-Authenticate"] = v
	}
	if v := pick(sel >> 2 & 3); v != nil {
		h["Proxy-Authenticate"] = v
	}
	if v := pick(sel >> 4 & 3); v != nil {
		h["Authentication-Info"] = v
		h["Proxy-Authentication-Info"] = v
	}
	var body io.Reader = strings.NewReader("denied")
	switch {
	case sel&(1<<7) != 0:
		body = endless{}
	case sel&(1<<6) != 0:
		h.Set("Content-Type", "application/json")
		body = strings.NewReader(`{"errors":[{"code":"DENIED","message":` + fmt.Sprintf("%q", n.headers[1]) + `}]}`)
	}
	return n.respond(req, status, h, body)
}

func (n *fuzzNet) respond(req *http.Request, status int, h http.Header, body io.Reader) *http.Response {
	cb := &countingBody{r: body}
	n.bodies = append(n.bodies, cb)
	return &http.Response{StatusCode: status, Header: h, Body: cb, Request: req, ProtoMajor: 1, ProtoMinor: 1}
}

func (n *fuzzNet) RoundTrip(req *http.Request) (*http.Response, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if req.Header.Get(fuzzMarker) == "" {
		return n.realm(req)
	}
	a := fuzzAttempt{authorization: req.Header.Get("Authorization"), proxyAuthorization: req.Header.Get("Proxy-Authorization")}
	if n.connect != nil && req.URL.Scheme == "https" {
		if err := n.tunnel(req, &a); err != nil {
			n.attempts = append(n.attempts, a)
			closeRequestBody(req)
			return nil, err
		}
	}
	a.reached = true
	if req.Body != nil {
		a.body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	resp := n.response(req)
	a.status = resp.StatusCode
	n.attempts = append(n.attempts, a)
	return resp, nil
}

// tunnel emulates what http.Transport does to open a CONNECT tunnel through
// a proxy (net/http's dialConn): GetProxyConnectHeader, writing the CONNECT,
// the proxy's answer, OnProxyConnectResponse, and an error for any status
// but 200.
func (n *fuzzNet) tunnel(req *http.Request, a *fuzzAttempt) error {
	ctx := req.Context()
	target := canonicalAddr(req.URL)
	hdr, err := n.connect.GetProxyConnectHeader(ctx, fuzzProxyURL, target)
	if err != nil {
		return &net.OpError{Op: "proxyconnect", Net: "tcp", Err: err}
	}
	if hdr.Get("Authorization") != "" {
		n.t.Fatalf("a CONNECT carries Authorization, which belongs to the origin")
	}
	a.connect = &fuzzConnect{proxyAuthorization: hdr.Get("Proxy-Authorization")}
	connectReq := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: hdr}
	// net/http writes the CONNECT before any answer; a target that is not
	// a valid Host fails there.
	if err := connectReq.Write(io.Discard); err != nil {
		return &net.OpError{Op: "proxyconnect", Net: "tcp", Err: err}
	}
	resp := n.response(connectReq)
	a.connect.status = resp.StatusCode
	if err := n.connect.OnProxyConnectResponse(ctx, fuzzProxyURL, connectReq, resp); err != nil {
		return &net.OpError{Op: "proxyconnect", Net: "tcp", Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return &net.OpError{Op: "proxyconnect", Net: "tcp", Err: errors.New(http.StatusText(resp.StatusCode))}
	}
	return nil
}

// canonicalAddr is the CONNECT target net/http computes: host:port, a
// non-ASCII host in its IDNA (punycode) form. x/net/idna is not at hand, so
// such a host becomes a stand-in that is ASCII too.
func canonicalAddr(u *url.URL) string {
	host := u.Hostname()
	if !isASCII(host) {
		host = fmt.Sprintf("xn--%x", host)
	}
	return net.JoinHostPort(host, portOf(u))
}

// realm answers a registry's token realm. The script's byte picks a
// usable token, garbage, a refusal, an outage, a redirect, a 404 or a token
// from the fuzzer.
func (n *fuzzNet) realm(req *http.Request) (*http.Response, error) {
	n.realmURLs = append(n.realmURLs, req.URL)
	n.realmAuth = append(n.realmAuth, req.Header.Get("Authorization"))
	closeRequestBody(req)
	h := http.Header{"Content-Type": {"application/json"}}
	switch n.next() % 8 {
	case 0, 1:
		return n.respond(req, 200, h, strings.NewReader(fmt.Sprintf(`{"token":"reg-SENTINEL-%d","expires_in":300}`, len(n.realmURLs)))), nil
	case 2:
		return n.respond(req, 200, h, strings.NewReader(n.headers[2])), nil
	case 3:
		return n.respond(req, 401, h, strings.NewReader(`{"error":"invalid_grant","error_description":`+fmt.Sprintf("%q", n.headers[1])+`}`)), nil
	case 4:
		return n.respond(req, 503, h, endless{}), nil
	case 5:
		h.Set("Location", n.headers[0])
		return n.respond(req, 302, h, http.NoBody), nil
	case 6:
		return n.respond(req, 404, h, http.NoBody), nil
	}
	return n.respond(req, 200, h, strings.NewReader(`{"access_token":`+fmt.Sprintf("%q", n.headers[0])+`,"refresh_token":"ref-SENTINEL"}`)), nil
}

// endless is a response body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

type countingBody struct {
	r      io.Reader
	read   atomic.Int64
	closed atomic.Bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("read on closed response body") // as net/http says
	}
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error {
	b.closed.Store(true)
	return nil
}

// fuzzMaxBodyRead is the most reauth may read of one response body: a
// Digest rspauth over auth-int buffers up to DefaultMaxBufferedBody (+1 to
// see that it is over); everything else reads far less.
const fuzzMaxBodyRead = DefaultMaxBufferedBody + 1

func runTransportFuzz(t *testing.T, rawURL string, setup fuzzSetup, script []byte, headers [3]string) {
	const payload = "payload-0123456789"
	var body io.Reader
	if setup.body() {
		body = strings.NewReader(payload)
		if setup.unbuffered() {
			body = struct{ io.Reader }{body} // no GetBody
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil || req.URL.Host == "" || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		if body != nil {
			body = strings.NewReader(payload)
			if setup.unbuffered() {
				body = struct{ io.Reader }{body}
			}
		}
		rawURL = fuzzDefault
		req, err = http.NewRequestWithContext(ctx, method, rawURL, body)
		if err != nil {
			t.Fatal(err)
		}
	}
	req.Header.Set(fuzzMarker, "1")

	n := &fuzzNet{t: t, script: script, headers: headers}
	var tokens atomic.Int64
	var logs bytes.Buffer
	var events []Event
	tr := &Transport{
		Base:             n,
		Credentials:      setup.credentials(&tokens),
		Origins:          fuzzOrigins,
		ProxyCredentials: setup.proxyCredentials(),
		ReturnResponse:   setup.returnResp(),
		Logger:           slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent:          func(e Event) { events = append(events, e) },
	}
	if setup.unbuffered() {
		tr.MaxBufferedBody = 8
	}
	if tr.ProxyCredentials != nil {
		tr.Proxy = func(*http.Request) (*url.URL, error) { return fuzzProxyURL, nil }
		n.connect = &http.Transport{}
		ConfigureProxy(n.connect, tr.ProxyCredentials)
	}

	done := make(chan struct{})
	var resp *http.Response
	go func() {
		defer close(done)
		resp, err = tr.RoundTrip(req)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("RoundTrip did not return")
	}
	if resp != nil {
		resp.Body.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The stub never blocks: waiting for the deadline is a hang.
		t.Fatalf("RoundTrip waited for the context deadline: %v", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()

	// Bounded work: attempts, realm requests and bytes read. The retry
	// ceiling (DESIGN.md, Retry ceiling): 1 + 2 per leg.
	limit := 3
	if tr.ProxyCredentials != nil {
		limit = 5
	}
	if len(n.attempts) > limit {
		t.Fatalf("%d attempts, more than the retry ceiling allows (%d)", len(n.attempts), limit)
	}
	if len(n.realmURLs) > 16 {
		t.Fatalf("%d requests to token realms for one request", len(n.realmURLs))
	}
	for _, b := range n.bodies {
		if r := b.read.Load(); r > fuzzMaxBodyRead {
			t.Fatalf("read %d bytes of one response body, over %d", r, fuzzMaxBodyRead)
		}
	}

	reqURL := req.URL
	bound := fuzzBound(reqURL)
	insecure := reqURL.Scheme == "http" && !isLoopback(reqURL.Hostname())
	for i, a := range n.attempts {
		switch {
		case !bound && a.authorization != "":
			t.Fatalf("attempt %d to unbound %s carries Authorization", i+1, redactURL(reqURL))
		case insecure && (equalFoldASCII(schemeOf(a.authorization), "Basic") || equalFoldASCII(schemeOf(a.authorization), "Bearer")):
			t.Fatalf("attempt %d sends %s over plain http to %s", i+1, schemeOf(a.authorization), reqURL.Hostname())
		case a.proxyAuthorization != "" && (reqURL.Scheme != "http" || tr.ProxyCredentials == nil):
			t.Fatalf("attempt %d to %s carries Proxy-Authorization, which only a plain-http proxy may see", i+1, reqURL.Scheme)
		case a.reached && body != nil && string(a.body) != payload:
			t.Fatalf("attempt %d carries the body %q, not the request's", i+1, a.body)
		}
		// Invariant 2: a value refused is never sent again in this request.
		for _, b := range n.attempts[i+1:] {
			switch {
			case a.reached && a.status == http.StatusUnauthorized && a.authorization != "" && b.authorization == a.authorization:
				t.Fatalf("Authorization refused with 401 at attempt %d is sent again", i+1)
			case a.reached && a.status == http.StatusProxyAuthRequired && a.proxyAuthorization != "" && b.proxyAuthorization == a.proxyAuthorization:
				t.Fatalf("Proxy-Authorization refused with 407 at attempt %d is sent again", i+1)
			case a.connect != nil && a.connect.status == http.StatusProxyAuthRequired && a.connect.proxyAuthorization != "" &&
				b.connect != nil && b.connect.proxyAuthorization == a.connect.proxyAuthorization:
				t.Fatalf("CONNECT Proxy-Authorization refused with 407 at attempt %d is sent again", i+1)
			}
		}
	}
	for i, u := range n.realmURLs {
		if !fuzzRealmAllowed(reqURL, u) {
			t.Fatalf("a token realm on %s was asked for %s, which the realm policy forbids", redactURL(u), redactURL(reqURL))
		}
		if v := n.realmAuth[i]; v != "" && !strings.HasPrefix(v, "Basic ") {
			t.Fatalf("a token realm got a %s credential", schemeOf(v))
		}
	}

	// Invariant 7: no secret in what the caller and the logs see, unless
	// the hostile network itself echoed it.
	inputs := rawURL + headers[0] + headers[1] + headers[2]
	var out strings.Builder
	if err != nil {
		checkErrorText(t, err.Error(), inputs)
		out.WriteString(err.Error())
	}
	out.WriteString(logs.String())
	for _, e := range events {
		fmt.Fprintf(&out, "%+v", e)
	}
	for _, s := range fuzzSecrets {
		if !strings.Contains(inputs, s) && strings.Contains(out.String(), s) {
			t.Fatalf("a secret (%s…) is in the error, events or log:\n%s", s[:4], out.String())
		}
	}
}

// fuzzBound is the test's own statement of which origins are bound: scheme,
// host and port as in fuzzOrigins, the host compared as reauth's Origins
// documentation says (case-insensitively).
func fuzzBound(u *url.URL) bool {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	for _, o := range []struct{ scheme, host, port string }{
		{"https", "api.example.com", "443"}, {"http", "127.0.0.1", "8080"}, {"http", "plain.example.com", "80"},
	} {
		if strings.EqualFold(u.Scheme, o.scheme) && strings.EqualFold(u.Hostname(), o.host) && port == o.port {
			return true
		}
	}
	return false
}

// fuzzRealmAllowed is the realm policy of RegistryOptions as a test
// oracle: the registry's own host, a host that resolves to public
// addresses, or loopback for a loopback registry; https, or http to
// loopback or for a plain-http registry.
func fuzzRealmAllowed(registry, realm *url.URL) bool {
	host := realm.Hostname()
	loop := func(h string) bool {
		a, err := netip.ParseAddr(h)
		return strings.EqualFold(h, "localhost") || err == nil && a.IsLoopback()
	}
	switch {
	case realm.Scheme != "https" && realm.Scheme != "http":
		return false
	case realm.Scheme == "http" && !loop(host) && registry.Scheme != "http":
		return false
	case strings.EqualFold(host, registry.Hostname()), strings.EqualFold(host, "auth.example.com"):
		return true
	case loop(host):
		return loop(registry.Hostname())
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false // fuzzLookup makes every other name private
	}
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate()
}
