package reauth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// storeBenchTransports are ClientCredentials Transports without and with a
// FileStore, each with its token already cached: bench §2 with a store.
func storeBenchTransports(tb testing.TB) (plain, stored *Transport, req *http.Request) {
	const origin = "https://api.example.com"
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)
	}))
	tb.Cleanup(idp.Close)
	store, err := NewFileStore(filepath.Join(tb.TempDir(), "tokens"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: idp.URL, AuthStyle: oauth2.AuthStyleInHeader}
	plain = &Transport{Base: newNopBase(), Credentials: ClientCredentials(cfg, OAuth2Options{HTTPClient: idp.Client()}), Origins: []string{origin}}
	stored = &Transport{Base: newNopBase(), Credentials: ClientCredentials(cfg, OAuth2Options{HTTPClient: idp.Client(), Store: store}), Origins: []string{origin}}
	req, _ = http.NewRequest("GET", origin+"/v1/items", nil)
	req.Header.Set("Accept", "application/json")
	for _, t := range []*Transport{plain, stored} {
		if resp, err := t.RoundTrip(req); err != nil || resp.StatusCode != 200 {
			tb.Fatal(resp, err)
		}
	}
	return plain, stored, req
}

// BenchmarkRoundTripStore is bench §2 for a cache hit with and without
// OAuth2Options.Store: the store is not asked on a hit.
func BenchmarkRoundTripStore(b *testing.B) {
	plain, stored, req := storeBenchTransports(b)
	for name, rt := range map[string]*Transport{"ClientCredentials": plain, "ClientCredentials+FileStore": stored} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRoundTripAllocsWithStore guards that a cache hit with a Store costs
// the allocations and bytes it costs without one.
func TestRoundTripAllocsWithStore(t *testing.T) {
	plain, stored, req := storeBenchTransports(t)
	measure := func(rt http.RoundTripper) (allocs, bytes int64) {
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
			}
		})
		return r.AllocsPerOp(), r.AllocedBytesPerOp()
	}
	pa, pb := measure(plain)
	sa, sb := measure(stored)
	t.Logf("cache hit: without a store %d allocs, %d B; with a FileStore %d allocs, %d B per RoundTrip", pa, pb, sa, sb)
	if sa != pa || sb != pb {
		t.Errorf("a cache hit with a Store costs %d allocs, %d B; without %d allocs, %d B", sa, sb, pa, pb)
	}
}
