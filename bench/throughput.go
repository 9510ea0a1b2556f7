package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/reauth/reauth"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// client is one way of sending GETs that a comparison measures.
type client struct {
	name     string
	baseline string // the name of the client it is compared with
	reauth   bool   // a reauth configuration: its ratio is held to the target
	get      func(ctx context.Context) error
	close    func()
}

// httpGetter sends GETs to url through c, reading each body to its end so
// that the connection is kept alive. The caller's context bounds each call.
// A non-empty authorization is set on each request by hand, as a client
// without any auth library would.
func httpGetter(c *http.Client, url, authorization string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		return finish(resp)
	}
}

func retryableGetter(c *retryablehttp.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		return finish(resp)
	}
}

func finish(resp *http.Response) error {
	_, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

func newRetryable(rt http.RoundTripper) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: rt}
	c.Logger = nil // its default logger writes every request to stderr
	return c
}

// clientTimeout is the http.Client.Timeout of the rows that set one.
const clientTimeout = 30 * time.Second

// Names of the baselines of section 1.
const (
	bareNone   = "bare http.Transport"
	bareBasic  = "bare, Basic header set by hand"
	bareBearer = "bare, Bearer header set by hand"
	bareDigest = "bare, a fixed Digest header set by hand"
)

// throughputClients returns bare net/http, the baselines Go users build by
// hand, and reauth with each scheme, each over a base of its own with the
// same settings.
//
// A client that sends credentials is compared with bare net/http sending
// the same header, set by hand on each request: what the credentials cost
// on the wire and at the server is no library's overhead. Those bare
// clients are compared with bare net/http without credentials in rows of
// their own.
//
// Calls are bounded by their context, not by http.Client.Timeout: for any
// RoundTripper but *http.Transport itself, a Client with a Timeout starts a
// goroutine and a timer per request (net/http's setRequestCancel), which
// oauth2.Transport and reauth pay alike. The rows marked
// "+ Client.Timeout" show that cost.
func throughputClients(srv *loopServer) ([]*client, error) {
	origins := []string{srv.url}
	staticToken := &oauth2.Token{AccessToken: benchToken, TokenType: "Bearer", Expiry: time.Now().Add(24 * time.Hour)}
	// What oauth2.Config.TokenSource hands out: a ReuseTokenSource.
	o2src := func() oauth2.TokenSource { return oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(staticToken)) }
	cc := func() reauth.Credentials {
		return reauth.ClientCredentials(&clientcredentials.Config{
			ClientID: benchClientID, ClientSecret: benchSecret, TokenURL: srv.url + "/token",
		}, reauth.OAuth2Options{HTTPClient: &http.Client{Transport: newBase()}})
	}
	hc := func(rt http.RoundTripper) *http.Client { return &http.Client{Transport: rt} }
	withTimeout := func(rt http.RoundTripper) *http.Client { return &http.Client{Transport: rt, Timeout: clientTimeout} }
	basicValue := "Basic " + base64.StdEncoding.EncodeToString([]byte(benchUser+":"+benchPassword))
	bearerValue := "Bearer " + benchToken
	chs, err := reauth.ParseChallenges(digestChallenge)
	if err != nil {
		return nil, err
	}
	digestValue, err := reauth.DigestAuthorization(chs[0], reauth.DigestInput{Username: benchUser, Password: benchPassword, URI: "/digest"})
	if err != nil {
		return nil, err
	}

	var out []*client
	add := func(name, baseline string, isReauth bool, base *http.Transport, get func(context.Context) error) {
		out = append(out, &client{name: name, baseline: baseline, reauth: isReauth, get: get, close: base.CloseIdleConnections})
	}
	b := newBase()
	add(bareNone, "", false, b, httpGetter(hc(b), srv.url+"/open", ""))
	b = newBase()
	add("bare http.Transport (control: a second one)", bareNone, false, b, httpGetter(hc(b), srv.url+"/open", ""))
	b = newBase()
	add(bareBasic, bareNone, false, b, httpGetter(hc(b), srv.url+"/basic", basicValue))
	b = newBase()
	add(bareBearer, bareNone, false, b, httpGetter(hc(b), srv.url+"/bearer", bearerValue))
	b = newBase()
	add(bareDigest, bareNone, false, b, httpGetter(hc(b), srv.url+"/digest", digestValue))
	b = newBase()
	add("retryablehttp", bareNone, false, b, retryableGetter(newRetryable(b), srv.url+"/open"))

	b = newBase()
	add("oauth2.Transport", bareBearer, false, b, httpGetter(hc(&oauth2.Transport{Base: b, Source: o2src()}), srv.url+"/bearer", ""))
	b = newBase()
	add("retryablehttp + oauth2.Transport", bareBearer, false, b, retryableGetter(newRetryable(&oauth2.Transport{Base: b, Source: o2src()}), srv.url+"/bearer"))

	b = newBase()
	add("reauth Basic", bareBasic, true, b, httpGetter(hc(&reauth.Transport{Base: b, Credentials: reauth.Basic(benchUser, benchPassword), Origins: origins}), srv.url+"/basic", ""))
	b = newBase()
	add("reauth Bearer", bareBearer, true, b, httpGetter(hc(&reauth.Transport{Base: b, Credentials: reauth.Bearer(benchToken), Origins: origins}), srv.url+"/bearer", ""))
	b = newBase()
	add("reauth OAuth2 (client credentials)", bareBearer, true, b, httpGetter(hc(&reauth.Transport{Base: b, Credentials: cc(), Origins: origins}), srv.url+"/bearer", ""))
	b = newBase()
	add("reauth Digest (SHA-256)", bareDigest, true, b, httpGetter(hc(&reauth.Transport{Base: b, Credentials: reauth.Digest(benchUser, benchPassword), Origins: origins}), srv.url+"/digest", ""))
	b = newBase()
	add("reauth.NewClient (retryablehttp) + OAuth2", bareBearer, false, b, retryableGetter(reauth.NewClient(&reauth.Transport{Base: b, Credentials: cc(), Origins: origins}), srv.url+"/bearer"))

	b = newBase()
	add("bare, Bearer by hand + Client.Timeout", bareBearer, false, b, httpGetter(withTimeout(b), srv.url+"/bearer", bearerValue))
	b = newBase()
	add("reauth Bearer + Client.Timeout", bareBearer, false, b, httpGetter(withTimeout(&reauth.Transport{Base: b, Credentials: reauth.Bearer(benchToken), Origins: origins}), srv.url+"/bearer", ""))
	return out, nil
}

// throughputRun is what one measured run of a client saw.
type throughputRun struct {
	rate   float64 // completed calls per second
	calls  int64
	cpu    float64 // process CPU time (user + system) per call, ns: client and server
	served int64   // requests the server answered meanwhile
}

// measureThroughput runs conc goroutines that send GETs one after another
// for d.
func measureThroughput(srv *loopServer, get func(context.Context) error, conc int, d time.Duration) (throughputRun, error) {
	runtime.GC()
	var (
		total   atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		firstEr error
	)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	// The calls' own bound: the run, and time for the last calls to end.
	callCtx, cancelCalls := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancelCalls()
	served0, cpu0 := srv.requests.Load(), processCPU()
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			for ctx.Err() == nil {
				if err := get(callCtx); err != nil {
					errOnce.Do(func() { firstEr = err })
					cancel()
					break
				}
				n++
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstEr != nil {
		return throughputRun{}, firstEr
	}
	n := total.Load()
	return throughputRun{
		rate:   float64(n) / elapsed.Seconds(),
		calls:  n,
		cpu:    float64(processCPU()-cpu0) / float64(max(n, 1)),
		served: srv.requests.Load() - served0,
	}, nil
}

// processCPU returns the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runThroughput is section 1.
func runThroughput(cfg *config) ([]*table, []verdict, error) {
	srv, err := startLoopServer()
	if err != nil {
		return nil, nil, err
	}
	defer srv.close()
	clients, err := throughputClients(srv)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	byName := map[string]*client{}
	for _, c := range clients {
		byName[c.name] = c
	}

	t := &table{header: []string{"client", "clients", "compared with", "cost", "middle half", "CPU/call ratio", "req/s baseline", "req/s this", "CPU/call this", "server req per call"}}
	t.note("cost: baseline req/s ÷ this req/s, the median over %d pairs of %s runs (A B, B A, …); 1.000× is free. Target ≤ 1.03× for the four reauth rows.", cfg.pairs, cfg.duration)
	t.note("compared with: a client that sends credentials is compared with bare net/http sending the same header, set by hand; those are compared with bare net/http without credentials.")
	t.note("middle half: the 25th to 75th percentile of the pairs' ratios, the noise of this machine; the control row is bare against bare.")
	t.note("CPU/call: the process's CPU time (client and server) per call, less swayed by other load on the machine than req/s; its ratio is the median over the pairs.")
	t.note("server req per call: requests the server answered per completed call (1.00: no challenge, no retry).")
	t.note("+ Client.Timeout: http.Client.Timeout set; net/http then starts a goroutine and a timer per request for any RoundTripper that is not *http.Transport.")
	var verdicts []verdict
	for _, conc := range cfg.concurrency {
		// Warm up: connections open, Basic and Digest challenged once,
		// the OAuth2 token fetched.
		for _, c := range clients {
			if _, err := measureThroughput(srv, c.get, conc, cfg.duration/2); err != nil {
				return nil, nil, fmt.Errorf("%s: warm-up: %w", c.name, err)
			}
		}
		for _, c := range clients[1:] {
			base := byName[c.baseline]
			var runsA, runsB []throughputRun
			run := func(c *client, runs *[]throughputRun) func() (float64, error) {
				return func() (float64, error) {
					r, err := measureThroughput(srv, c.get, conc, cfg.duration)
					*runs = append(*runs, r)
					return r.rate, err
				}
			}
			as, bs, err := paired(cfg.pairs, run(base, &runsA), run(c, &runsB))
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", c.name, err)
			}
			costs := ratios(bs, as) // bare req/s ÷ this req/s
			cost := median(costs)
			var cpuRatios, cpuB []float64
			var calls, served int64
			for i := range runsA {
				cpuRatios = append(cpuRatios, runsB[i].cpu/runsA[i].cpu)
				cpuB = append(cpuB, runsB[i].cpu)
				calls += runsB[i].calls
				served += runsB[i].served
			}
			t.add(c.name, fmt.Sprint(conc), base.name, fmtRatio(cost),
				fmt.Sprintf("%.2f–%.2f", percentile(costs, 25), percentile(costs, 75)),
				fmtRatio(median(cpuRatios)),
				fmt.Sprintf("%.0f", median(as)), fmt.Sprintf("%.0f", median(bs)), fmtNs(median(cpuB)),
				fmt.Sprintf("%.2f", float64(served)/float64(max(calls, 1))))
			if c.reauth {
				verdicts = append(verdicts, verdict{
					target: fmt.Sprintf("%s, %d clients: throughput ≥ 1/1.03 of %s", c.name, conc, base.name),
					result: fmt.Sprintf("%s, middle half %.2f–%.2f (CPU/call %s)", fmtRatio(cost), percentile(costs, 25), percentile(costs, 75), fmtRatio(median(cpuRatios))),
					met:    cost <= 1.03,
				})
			}
		}
	}
	return []*table{t}, verdicts, nil
}
