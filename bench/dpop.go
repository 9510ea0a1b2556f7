package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// dpopProofTarget is the target: a proof costs at most this many
// times the bare signature with the same key.
const dpopProofTarget = 1.2

// The request a proof is made for: a resource request with a token and a
// server nonce, so that every claim is there (jti, htm, htu, iat, ath,
// nonce).
const (
	dpopURL   = "https://api.example.com/v1/items?page=2"
	dpopNonce = "eyJ7S_zG.yH3xb9kR2f5Q"
)

// runDPoP measures reauth.DPoPProof against the signature alone: the same
// key signing an input of the proof's length, the way the JWS algorithm
// signs (SHA-256 then ECDSA for ES256; Ed25519 over the input for EdDSA).
// The difference is what the proof adds: the claims, the jti's random
// bytes, the ath hash, base64url, the cached header.
func runDPoP(cfg *config) ([]*table, []verdict, error) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	t := &table{header: []string{"alg", "proof ns/op", "signature ns/op", "proof / signature", "fastest / fastest", "proof allocs/op", "proof B/op", "signature allocs/op", "signature B/op"}}
	t.note("reauth.DPoPProof(key, GET, URL, token, nonce) against key.Sign over an input of the proof's length. Median over %d paired testing.Benchmark runs.", cfg.benchPairs)
	t.note("fastest / fastest: the fastest proof run over the fastest signature run, less sensitive to a loaded machine than the median.")
	t.note("Target: a proof costs at most %.1f× the bare signature (median of the paired ratios).", dpopProofTarget)
	var verdicts []verdict
	token := strings.Repeat("t", 43)
	for _, k := range []struct {
		alg string
		key crypto.Signer
	}{{"ES256", ec}, {"EdDSA", ed}} {
		proof, err := reauth.DPoPProof(k.key, "GET", dpopURL, token, dpopNonce)
		if err != nil {
			return nil, nil, err
		}
		input := []byte(proof[:strings.LastIndexByte(proof, '.')])
		sign := func() error {
			if k.alg == "EdDSA" {
				_, err := k.key.Sign(rand.Reader, input, crypto.Hash(0))
				return err
			}
			h := sha256.Sum256(input)
			_, err := k.key.Sign(rand.Reader, h[:], crypto.SHA256)
			return err
		}
		prove := func() error {
			_, err := reauth.DPoPProof(k.key, "GET", dpopURL, token, dpopNonce)
			return err
		}
		type figures struct{ ns, allocs, bytes []float64 }
		measure := func(op func() error, f *figures) func() (float64, error) {
			return func() (float64, error) {
				var opErr error
				r := testing.Benchmark(func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := op(); err != nil {
							opErr = err
							b.FailNow()
						}
					}
				})
				if opErr != nil {
					return 0, opErr
				}
				f.ns = append(f.ns, float64(r.NsPerOp()))
				f.allocs = append(f.allocs, float64(r.AllocsPerOp()))
				f.bytes = append(f.bytes, float64(r.AllocedBytesPerOp()))
				return float64(r.NsPerOp()), nil
			}
		}
		var fs, fp figures
		sigs, proofs, err := paired(cfg.benchPairs, measure(sign, &fs), measure(prove, &fp))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", k.alg, err)
		}
		r := median(ratios(sigs, proofs))
		t.add(k.alg, fmtNs(median(proofs)), fmtNs(median(sigs)), fmtRatio(r), fmtRatio(slices.Min(proofs)/slices.Min(sigs)),
			fmt.Sprintf("%.0f", median(fp.allocs)), fmt.Sprintf("%.0f", median(fp.bytes)),
			fmt.Sprintf("%.0f", median(fs.allocs)), fmt.Sprintf("%.0f", median(fs.bytes)))
		verdicts = append(verdicts, verdict{
			target: fmt.Sprintf("DPoP proof (%s) ≤ %.1f× its bare signature", k.alg, dpopProofTarget),
			result: fmtRatio(r),
			met:    r <= dpopProofTarget,
		})
	}
	lt, lv, err := runDPoPLoopback(cfg)
	if err != nil {
		return nil, nil, err
	}
	return []*table{t, lt}, append(verdicts, lv...), nil
}

// runDPoPLoopback compares a GET with a DPoP-bound token (a proof per
// request, the server's nonces required) with a GET with a Bearer token,
// through a reauth Transport to the bundled mock server over loopback, and
// counts the requests per call in steady state with nonces required.
func runDPoPLoopback(cfg *config) (*table, []verdict, error) {
	srv := mockserver.New(mockserver.DefaultConfig())
	defer srv.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	client := func(creds reauth.Credentials) (*http.Client, *http.Transport) {
		base := newBase()
		return &http.Client{Timeout: 30 * time.Second, Transport: &reauth.Transport{Base: base, Credentials: creds, Origins: []string{srv.URL()}}}, base
	}
	bc, bb := client(reauth.ClientCredentials(mockClientConfig(srv), reauth.OAuth2Options{}))
	defer bb.CloseIdleConnections()
	dcfg := &clientcredentials.Config{ClientID: mockClient, ClientSecret: mockSecret, TokenURL: srv.URL() + "/dpop/nonce/token"}
	dc, db := client(reauth.ClientCredentials(dcfg, reauth.OAuth2Options{DPoP: key}))
	defer db.CloseIdleConnections()
	bearer := httpGetter(bc, srv.URL()+"/oauth2/resource", "")
	dpop := httpGetter(dc, srv.URL()+"/dpop/nonce/resource", "")
	for _, g := range []func(context.Context) error{bearer, dpop} {
		if err := g(context.Background()); err != nil {
			return nil, nil, fmt.Errorf("DPoP over loopback: first call: %w", err)
		}
	}
	measure := func(get func(context.Context) error) func() (float64, error) {
		return func() (float64, error) {
			var opErr error
			r := testing.Benchmark(func(b *testing.B) {
				for b.Loop() {
					if err := get(context.Background()); err != nil {
						opErr = err
						b.FailNow()
					}
				}
			})
			srv.ResetRequests() // the log is bounded; keep it small
			return float64(r.NsPerOp()), opErr
		}
	}
	bs, ds, err := paired(cfg.benchPairs, measure(bearer), measure(dpop))
	if err != nil {
		return nil, nil, fmt.Errorf("DPoP over loopback: %w", err)
	}
	calls := 400
	if cfg.quick {
		calls = 60
	}
	srv.ResetRequests()
	if err := parallelCalls(dpop, 16, calls); err != nil {
		return nil, nil, fmt.Errorf("DPoP steady state: %w", err)
	}
	per := float64(len(srv.RequestsTo("/dpop/nonce/resource"))) / float64(calls)
	tokens := len(srv.RequestsTo("/dpop/nonce/token"))

	t := &table{header: []string{"GET over loopback", "ns/op", "vs Bearer", "requests per call (16 clients, " + fmt.Sprint(calls) + " calls)", "token requests"}}
	t.note("A reauth Transport to the bundled mock server over loopback: /oauth2/resource with a Bearer token, /dpop/nonce/resource with a DPoP-bound token, a fresh ES256 proof per request and the server's nonce required. Median over %d paired testing.Benchmark runs.", cfg.benchPairs)
	t.note("The difference is the proof: made by the client (the table above) and verified by the mock (a JWS verification, a jti replay check, the nonce).")
	t.note("Target: 1.00 request per call in steady state with nonces required: the nonce of each 200 is used by the next request.")
	mb, md := median(bs), median(ds)
	t.add("Bearer", fmtNs(mb), "1.000×", "", "")
	t.add("DPoP (nonces)", fmtNs(md), fmtRatio(median(ratios(bs, ds))), fmt.Sprintf("%.2f", per), fmt.Sprint(tokens))
	t.add("difference (the proof)", fmtNs(md-mb), "", "", "")
	return t, []verdict{{
		target: "DPoP with nonces: 1.00 request per call in steady state",
		result: fmt.Sprintf("%.2f", per),
		met:    per == 1,
	}}, nil
}
