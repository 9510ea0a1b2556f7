package reauth

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// This file is the tests' own JWS verifier: it shares no code with dpop.go
// or clientassertion.go (encoding/json, math/big and the crypto packages'
// Verify functions do the work), so that a bug in how reauth builds a JWS
// is not repeated here and passed over.

// verifiedJWS is a compact JWS whose signature checked out.
type verifiedJWS struct {
	Header map[string]any
	Claims map[string]any
}

// verifyJWS checks the compact JWS s with pub (nil: the public key in the
// header's jwk, as a DPoP proof carries it) and returns its header and
// claims.
func verifyJWS(s string, pub crypto.PublicKey) (*verifiedJWS, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%d parts, want 3", len(parts))
	}
	var out verifiedJWS
	for i, dst := range []*map[string]any{&out.Header, &out.Claims} {
		if strings.ContainsAny(parts[i], "=+/") {
			return nil, fmt.Errorf("part %d is not unpadded base64url", i)
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, fmt.Errorf("part %d is not a JSON object: %v", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("signature: %v", err)
	}
	if pub == nil {
		jwk, ok := out.Header["jwk"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("no jwk in the header")
		}
		if pub, err = publicKeyFromJWK(jwk); err != nil {
			return nil, err
		}
	}
	input := []byte(parts[0] + "." + parts[1])
	digest := sha256.Sum256(input)
	switch alg := out.Header["alg"]; alg {
	case "ES256":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || len(sig) != 64 {
			return nil, fmt.Errorf("ES256: key %T, signature of %d bytes (want 64: R||S)", pub, len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, digest[:], r, s) {
			return nil, fmt.Errorf("ES256 signature does not verify")
		}
	case "EdDSA":
		k, ok := pub.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, input, sig) {
			return nil, fmt.Errorf("EdDSA signature does not verify")
		}
	case "PS256":
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PS256 with key %T", pub)
		}
		if err := rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: sha256.Size}); err != nil {
			return nil, fmt.Errorf("PS256 signature does not verify (salt = hash length): %v", err)
		}
	default:
		return nil, fmt.Errorf("alg %v", alg)
	}
	return &out, nil
}

// publicKeyFromJWK reads a public JWK (RFC 7517, RFC 8037), refusing any
// private member.
func publicKeyFromJWK(jwk map[string]any) (crypto.PublicKey, error) {
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := jwk[m]; ok {
			return nil, fmt.Errorf("the jwk has the private member %q", m)
		}
	}
	b := func(name string) []byte {
		s, _ := jwk[name].(string)
		v, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil
		}
		return v
	}
	switch jwk["kty"] {
	case "EC":
		x, y := b("x"), b("y")
		if jwk["crv"] != "P-256" || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("EC jwk: crv %v, x %d bytes, y %d bytes", jwk["crv"], len(x), len(y))
		}
		if _, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, x...), y...)); err != nil {
			return nil, fmt.Errorf("EC jwk: the point is not on P-256")
		}
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
	case "OKP":
		x := b("x")
		if jwk["crv"] != "Ed25519" || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("OKP jwk: crv %v, x %d bytes", jwk["crv"], len(x))
		}
		return ed25519.PublicKey(x), nil
	case "RSA":
		n, e := b("n"), b("e")
		if len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 || len(e) > 4 {
			return nil, fmt.Errorf("RSA jwk: n or e missing or not minimal")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	return nil, fmt.Errorf("jwk kty %v", jwk["kty"])
}

// testKeys are one key of each kind DPoPProof signs with; the RSA key is
// made once, as making it is slow.
var dpopTestKeys = sync.OnceValue(func() map[string]crypto.Signer {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return map[string]crypto.Signer{"ES256": ec, "EdDSA": ed, "PS256": rk}
})

func dpopTestKey(t *testing.T, alg string) crypto.Signer {
	t.Helper()
	k := dpopTestKeys()[alg]
	require.NotNil(t, k, alg)
	return k
}
