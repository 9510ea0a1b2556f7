package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/reauth/reauth"
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
	return []*table{t}, verdicts, nil
}
