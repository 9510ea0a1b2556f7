package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// callTimeout bounds each call of a scenario, so that a broken scenario shows
// up as an error in the table instead of a tour that hangs.
const callTimeout = 20 * time.Second

// env is what the scenarios run against: the mock server on its embedded
// default configuration, with a clock the tour can move and short
// Retry-After delays so that the tour takes seconds.
type env struct {
	srv   *mockserver.Server
	cfg   mockserver.Config
	clock *mockserver.ManualClock
	url   string
	conns *http.Transport // one connection pool for every scenario
}

func newEnv() (*env, error) {
	cfg := mockserver.DefaultConfig()
	clock := mockserver.NewManualClock(time.Now())
	cfg.Clock = clock                   // moved on by the max_age step-up scenario
	cfg.Status.FailFirst = 1            // one 429 or 503 before success …
	cfg.Status.RetryAfter = time.Second // … with the shortest Retry-After delay-seconds can say
	srv, err := mockserver.NewUnstarted(cfg)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	conns := http.DefaultTransport.(*http.Transport).Clone()
	return &env{srv: srv, cfg: cfg, clock: clock, url: srv.URL(), conns: conns}, nil
}

func (e *env) close() {
	e.conns.CloseIdleConnections()
	e.srv.Close()
}

// call is one request of a scenario as seen from both ends.
type call struct {
	status   int   // the response's status; 0 when err is set
	err      error // what the client returned
	requests []mockserver.Request
	wire     []wireResponse // every response reauth's base transport received
	events   []reauth.Event
}

// wireResponse is what the server answered to one request on the wire.
type wireResponse struct {
	status     int
	challenges []reauth.Challenge
	parseErr   error
	retryAfter string
}

// result is a scenario's run and how it compares with DESIGN.md.
type result struct {
	sc      scenario
	calls   []call
	pending bool     // its credentials are not in reauth yet
	differs []string // what is not as DESIGN.md says; empty when it is
}

// summary counts the outcomes of a tour.
type summary struct {
	total, asDesigned, pending, differ int
}

// run runs every scenario against a new mock server and writes the report
// to w: one line per scenario that fits 100 columns, or with verbose every
// detail. Only setting up the mock server can fail; a scenario that goes
// wrong is counted in differ.
func run(w io.Writer, verbose bool) (summary, error) {
	e, err := newEnv()
	if err != nil {
		return summary{}, fmt.Errorf("starting the mock server: %w", err)
	}
	defer e.close()
	return writeReport(w, e.url, e.runAll(scenarios()), verbose)
}

// runAll runs the scenarios in order: some move the server's clock or
// revoke its tokens, for themselves only, before their own calls.
func (e *env) runAll(list []scenario) []result {
	results := make([]result, 0, len(list))
	for _, sc := range list {
		results = append(results, e.run(sc))
	}
	return results
}

// run runs one scenario: a fresh Transport (so no scenario sees another's
// protection spaces or nonces), its calls in order, and the check.
func (e *env) run(sc scenario) result {
	r := result{sc: sc}
	if sc.creds == nil {
		r.pending = true
		return r
	}
	creds, err := sc.creds(e)
	if err != nil {
		r.differs = append(r.differs, "setting up the credentials: "+err.Error())
		return r
	}
	wire := &wireRecorder{base: e.conns}
	var evMu sync.Mutex
	var events []reauth.Event
	t := &reauth.Transport{
		Base:        wire,
		Credentials: creds,
		Origins:     []string{e.url},
		OnEvent: func(ev reauth.Event) {
			evMu.Lock()
			events = append(events, ev)
			evMu.Unlock()
		},
	}
	do := (&http.Client{Transport: t}).Do
	if sc.retrying {
		c := reauth.NewClient(t)
		c.RetryWaitMin, c.RetryWaitMax = 10*time.Millisecond, 100*time.Millisecond
		do = func(req *http.Request) (*http.Response, error) {
			rr, err := retryablehttp.FromRequest(req)
			if err != nil {
				return nil, err
			}
			return c.Do(rr)
		}
	}
	for i := range sc.want.requests {
		if sc.before != nil {
			if err := sc.before(e, i); err != nil {
				r.differs = append(r.differs, fmt.Sprintf("before call %d: %v", i+1, err))
				return r
			}
		}
		seen := len(e.srv.RequestsTo(sc.path))
		c := call{}
		c.status, c.err = e.send(do, sc)
		c.requests = e.srv.RequestsTo(sc.path)[seen:]
		c.wire = wire.take()
		evMu.Lock()
		c.events, events = events, nil
		evMu.Unlock()
		r.calls = append(r.calls, c)
	}
	r.differs = append(r.differs, sc.want.compare(r.calls)...)
	r.differs = append(r.differs, invariants(r.calls)...)
	return r
}

// freshNonceAsked reports whether challenges refuse only the freshness of a
// nonce: Digest stale=true (RFC 7616 §3.3), DPoP use_dpop_nonce (RFC 9449 §8).
func freshNonceAsked(chs []reauth.Challenge) bool {
	for _, c := range chs {
		if strings.EqualFold(c.Params["stale"], "true") || c.Params["error"] == "use_dpop_nonce" {
			return true
		}
	}
	return false
}

// invariants checks, on every row, the invariants (DESIGN.md, invariants) that the
// events and the server's log can show.
func invariants(calls []call) []string {
	var d []string
	for i, c := range calls {
		// Invariant 1 and the retry ceiling (DESIGN.md, Retry ceiling): per
		// leg (401, 407), one challenge retry and at most one fresh-nonce
		// retry, which answers a challenge that refused only the nonce
		// (Digest stale=true, DPoP use_dpop_nonce). (NewClient's backoff
		// retries are new requests, and never follow an auth failure, so
		// they send no EventRetry.)
		type legRetry struct{ proxy, nonce bool }
		retries := map[legRetry]int{}
		nonceOnly := map[bool]bool{} // per leg: the last challenge refused only the nonce
		for _, ev := range c.events {
			switch ev.Kind {
			case reauth.EventChallenge:
				nonceOnly[ev.Proxy] = freshNonceAsked(ev.Challenges)
			case reauth.EventRetry:
				retries[legRetry{ev.Proxy, nonceOnly[ev.Proxy]}]++
			}
		}
		for _, proxy := range []bool{false, true} {
			if n := retries[legRetry{proxy, false}]; n > 1 {
				d = append(d, fmt.Sprintf("call %d: %d challenge retries after %d; the retry ceiling allows one", i+1, n, map[bool]int{false: 401, true: 407}[proxy]))
			}
			if n := retries[legRetry{proxy, true}]; n > 1 {
				d = append(d, fmt.Sprintf("call %d: %d fresh-nonce retries after %d; the retry ceiling allows one", i+1, n, map[bool]int{false: 401, true: 407}[proxy]))
			}
		}
		// Invariant 2: credentials refused are never sent again. Equal
		// credentials give equal redacted strings in the server's log. A
		// DPoP request's set is the token and a proof with a unique jti,
		// which the log does not show: the mock refuses a proof sent twice
		// itself (invalid_dpop_proof), so those are left to it.
		refused := map[string]bool{}
		for _, req := range c.requests {
			if req.Credential == "" || req.Scheme == "DPoP" {
				continue
			}
			if refused[req.Credential] {
				d = append(d, fmt.Sprintf("call %d: credentials refused with 401 were sent again; invariant 2 forbids it", i+1))
				break
			}
			if req.Status == http.StatusUnauthorized {
				refused[req.Credential] = true
			}
		}
	}
	return d
}

// send makes one call of sc and reads the response body whole, as a client
// would.
func (e *env) send(do func(*http.Request) (*http.Response, error), sc scenario) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	method := sc.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if sc.body != "" {
		body = strings.NewReader(sc.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+sc.path, body)
	if err != nil {
		return 0, err
	}
	resp, err := do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// wireRecorder is the Transport's base: it notes what the server answered,
// before reauth acts on it.
type wireRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	got  []wireResponse
}

func (w *wireRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	chs, perr := reauth.ResponseChallenges(resp)
	w.mu.Lock()
	w.got = append(w.got, wireResponse{
		status: resp.StatusCode, challenges: chs, parseErr: perr,
		retryAfter: resp.Header.Get("Retry-After"),
	})
	w.mu.Unlock()
	return resp, nil
}

// take returns what was recorded since the last take.
func (w *wireRecorder) take() []wireResponse {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.got
	w.got = nil
	return got
}
