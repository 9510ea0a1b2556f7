package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/icholy/digest"
	"github.com/reauth/reauth"
	"golang.org/x/oauth2"
)

// nopBase answers without I/O, so that a benchmark over it measures the
// RoundTripper above it. With a challenge set, a request without an
// Authorization field gets 401 and that challenge, as a server's first
// answer would be; everything else gets 200.
type nopBase struct {
	challenge http.Header
}

var emptyHeader = http.Header{}

func (b *nopBase) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.challenge != nil && r.Header.Get("Authorization") == "" {
		return &http.Response{StatusCode: http.StatusUnauthorized, Header: b.challenge, Body: http.NoBody, Request: r}, nil
	}
	return &http.Response{StatusCode: http.StatusOK, Header: emptyHeader, Body: http.NoBody, Request: r}, nil
}

func challengeBase(ch string) *nopBase {
	return &nopBase{challenge: http.Header{"Www-Authenticate": {ch}}}
}

// roundTripBench is one RoundTripper measured by testing.Benchmark.
type roundTripBench struct {
	name     string
	rt       http.RoundTripper
	baseline string // the name of the row it is compared with
	target   bool   // held to "no more allocations and bytes than its baseline"
}

func roundTripBenches() []roundTripBench {
	const origin = "https://api.example.com"
	tok := &oauth2.Token{AccessToken: benchToken, TokenType: "Bearer", Expiry: time.Now().Add(24 * time.Hour)}
	src := func() oauth2.TokenSource { return oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(tok)) }
	o := []string{origin}
	return []roundTripBench{
		{name: "no-op base alone", rt: &nopBase{}},
		{name: "oauth2.Transport", rt: &oauth2.Transport{Base: &nopBase{}, Source: src()}},
		{name: "reauth Bearer", rt: &reauth.Transport{Base: &nopBase{}, Credentials: reauth.Bearer(benchToken), Origins: o}, baseline: "oauth2.Transport", target: true},
		{name: "reauth OAuth2", rt: &reauth.Transport{Base: &nopBase{}, Credentials: reauth.OAuth2(src()), Origins: o}, baseline: "oauth2.Transport", target: true},
		{name: "reauth Basic", rt: &reauth.Transport{Base: challengeBase(`Basic realm="bench"`), Credentials: reauth.Basic(benchUser, benchPassword), Origins: o}, baseline: "oauth2.Transport", target: true},
		{name: "icholy/digest.Transport (SHA-256)", rt: &digest.Transport{Transport: challengeBase(digestChallenge), Username: benchUser, Password: benchPassword}},
		{name: "reauth Digest (SHA-256)", rt: &reauth.Transport{Base: challengeBase(digestChallenge), Credentials: reauth.Digest(benchUser, benchPassword), Origins: o}, baseline: "icholy/digest.Transport (SHA-256)", target: true},
	}
}

// benchRoundTrip measures rt with a GET that carries one header of its own,
// as a client's request would.
func benchRoundTrip(rt http.RoundTripper) (testing.BenchmarkResult, error) {
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/items?page=2", nil)
	if err != nil {
		return testing.BenchmarkResult{}, err
	}
	req.Header.Set("Accept", "application/json")
	// The first request is challenged; from then on credentials are cached.
	if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != http.StatusOK {
		return testing.BenchmarkResult{}, fmt.Errorf("first request: %v %v", resp, err)
	}
	var failed error
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				failed = fmt.Errorf("RoundTrip: status %v, %v", resp, err)
				b.FailNow()
			}
		}
	})
	return res, failed
}

// runAllocs is section 2.
func runAllocs(cfg *config) ([]*table, []verdict, error) {
	benches := roundTripBenches()
	byName := map[string]roundTripBench{}
	for _, b := range benches {
		byName[b.name] = b
	}
	type figures struct{ ns, allocs, bytes []float64 }
	measure := func(rt http.RoundTripper, f *figures) func() (float64, error) {
		return func() (float64, error) {
			r, err := benchRoundTrip(rt)
			if err != nil {
				return 0, err
			}
			f.ns = append(f.ns, float64(r.NsPerOp()))
			f.allocs = append(f.allocs, float64(r.AllocsPerOp()))
			f.bytes = append(f.bytes, float64(r.AllocedBytesPerOp()))
			return float64(r.NsPerOp()), nil
		}
	}

	t := &table{header: []string{"RoundTripper", "baseline", "time vs baseline", "ns/op", "allocs/op", "B/op", "baseline allocs/op", "baseline B/op"}}
	t.note("Over a no-op base RoundTripper (no I/O), credentials cached; a GET with one header. Median over %d paired testing.Benchmark runs.", cfg.benchPairs)
	t.note("Target: a reauth row allocates no more (count and bytes) than its baseline.")
	var verdicts []verdict
	for _, b := range benches {
		baseName := b.baseline
		if baseName == "" {
			var f figures
			if _, _, err := paired(cfg.benchPairs, measure(b.rt, &f), func() (float64, error) { return 0, nil }); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", b.name, err)
			}
			t.add(b.name, "", "", fmtNs(median(f.ns)), fmt.Sprintf("%.0f", median(f.allocs)), fmt.Sprintf("%.0f", median(f.bytes)), "", "")
			continue
		}
		var fa, fb figures
		as, bs, err := paired(cfg.benchPairs, measure(byName[baseName].rt, &fa), measure(b.rt, &fb))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.name, err)
		}
		allocs, bytes := median(fb.allocs), median(fb.bytes)
		baseAllocs, baseBytes := median(fa.allocs), median(fa.bytes)
		t.add(b.name, baseName, fmtRatio(median(ratios(as, bs))), fmtNs(median(bs)),
			fmt.Sprintf("%.0f", allocs), fmt.Sprintf("%.0f", bytes), fmt.Sprintf("%.0f", baseAllocs), fmt.Sprintf("%.0f", baseBytes))
		if b.target {
			verdicts = append(verdicts, verdict{
				target: fmt.Sprintf("%s: allocs and bytes per RoundTrip ≤ %s", b.name, baseName),
				result: fmt.Sprintf("%.0f allocs / %.0f B vs %.0f / %.0f B", allocs, bytes, baseAllocs, baseBytes),
				met:    allocs <= baseAllocs && bytes <= baseBytes,
			})
		}
	}
	return []*table{t}, verdicts, nil
}
