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
	"io"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDPoPProofVerifiesForEachKeyType(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			key := dpopTestKey(t, alg)
			before := time.Now().Unix()
			proof, err := DPoPProof(key, "POST", "HTTPS://API.Example.COM:443/v1/items?secret=q#frag", "the-access-token", "server-nonce_1")
			require.NoError(t, err)
			after := time.Now().Unix()

			jws, err := verifyJWS(proof, nil)
			require.NoError(t, err)
			// The key in the header is the signer's, and only its public part.
			hk, err := publicKeyFromJWK(jws.Header["jwk"].(map[string]any))
			require.NoError(t, err)
			assert.True(t, hk.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()), "the jwk is not the signer's public key")
			assert.Equal(t, "dpop+jwt", jws.Header["typ"])
			assert.Equal(t, alg, jws.Header["alg"])

			c := jws.Claims
			assert.Equal(t, "POST", c["htm"])
			assert.Equal(t, "https://api.example.com/v1/items", c["htu"], "htu: no query, no fragment, lower-case scheme and host, no default port")
			ath := sha256.Sum256([]byte("the-access-token"))
			assert.Equal(t, base64.RawURLEncoding.EncodeToString(ath[:]), c["ath"])
			assert.Equal(t, "server-nonce_1", c["nonce"])
			iat, ok := c["iat"].(float64)
			require.True(t, ok, "iat is a number")
			assert.True(t, int64(iat) >= before && int64(iat) <= after, "iat is now")
			jti, _ := c["jti"].(string)
			raw, err := base64.RawURLEncoding.DecodeString(jti)
			require.NoError(t, err)
			assert.Len(t, raw, 16, "jti carries 128 random bits")
			assert.Len(t, c, 6, "jti, htm, htu, iat, ath, nonce and nothing else")

			// Another proof with the same input has another jti and still verifies.
			again, err := DPoPProof(key, "POST", "https://api.example.com/v1/items", "the-access-token", "server-nonce_1")
			require.NoError(t, err)
			jws2, err := verifyJWS(again, key.Public())
			require.NoError(t, err)
			assert.NotEqual(t, jti, jws2.Claims["jti"])
		})
	}
}

func TestDPoPProofOmitsAthAndNonceWhenEmpty(t *testing.T) {
	proof, err := DPoPProof(dpopTestKey(t, "ES256"), "GET", "http://127.0.0.1:8080", "", "")
	require.NoError(t, err)
	jws, err := verifyJWS(proof, nil)
	require.NoError(t, err)
	assert.NotContains(t, jws.Claims, "ath")
	assert.NotContains(t, jws.Claims, "nonce")
	assert.Equal(t, "http://127.0.0.1:8080/", jws.Claims["htu"])
}

func TestDPoPProofTargetURI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example.com/a/b?x=1#f", "https://api.example.com/a/b"},
		{"HTTP://Example.COM:80/", "http://example.com/"},
		{"https://example.com:8443", "https://example.com:8443/"},
		{"http://example.com:443/p", "http://example.com:443/p"},
		{"https://user:pass@example.com/p", "https://example.com/p"},
		{"https://example.com/a%20b/%2F", "https://example.com/a%20b/%2F"},
		{"https://[::1]:8443/x?", "https://[::1]:8443/x"},
	} {
		proof, err := DPoPProof(dpopTestKey(t, "EdDSA"), "GET", tc.in, "", "")
		require.NoError(t, err, tc.in)
		jws, err := verifyJWS(proof, nil)
		require.NoError(t, err)
		assert.Equal(t, tc.want, jws.Claims["htu"], tc.in)
	}
}

func TestDPoPProofRefusesBadInput(t *testing.T) {
	key := dpopTestKey(t, "ES256")
	for _, tc := range []struct {
		name, method, url, nonce, want string
	}{
		{"method with a space", "GE T", "https://a.example/", "", "not an HTTP method"},
		{"empty method", "", "https://a.example/", "", "not an HTTP method"},
		{"relative URL", "GET", "/only/a/path?token=s3cr3t", "", "not an absolute http or https URL"},
		{"ftp URL", "GET", "ftp://u:s3cr3t@a.example/", "", "not an absolute http or https URL"},
		{"URL that does not parse", "GET", "https://a.example/%zz?token=s3cr3t", "", "does not parse"},
		{"nonce with a quote", "GET", "https://a.example/", `n"},"x":"`, "nonce"},
		{"nonce with a space", "GET", "https://a.example/", "a b", "nonce"},
		{"nonce with a newline", "GET", "https://a.example/", "a\nb", "nonce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DPoPProof(key, tc.method, tc.url, "tok-s3cr3t", tc.nonce)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "reauth: ") && strings.Count(err.Error(), "reauth: ") == 1, "one prefix")
			assert.NotContains(t, err.Error(), "s3cr3t", "no URL secret, no token in the error")
		})
	}
	_, err := DPoPProof(nil, "GET", "https://a.example/", "", "")
	require.Error(t, err)
}

// otherSigner is a crypto.Signer whose public key no JWS algorithm here
// takes (an X25519 key).
type otherSigner struct{ pub *ecdh.PublicKey }

func (s otherSigner) Public() crypto.PublicKey { return s.pub }
func (otherSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	panic("Sign must not be called for a refused key")
}

func TestDPoPProofRefusesOtherKeys(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		want string
	}{
		{"ECDSA P-384", p384, "P-384"},
		{"RSA 1024", rsa1024, "1024 bits"},
		{"X25519", otherSigner{x.PublicKey()}, "*ecdh.PublicKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DPoPProof(tc.key, "GET", "https://a.example/", "", "")
			require.Error(t, err)
			msg := err.Error()
			assert.Contains(t, msg, tc.want, "names the key")
			assert.Contains(t, msg, "P-256 (ES256)", "says what works")
			assert.Contains(t, msg, "Ed25519 (EdDSA)")
			assert.Contains(t, msg, "2048 bits (PS256)")
			_, err = JWKThumbprint(tc.key.Public())
			assert.Error(t, err)
		})
	}
	// The private key is in no error.
	_, err = DPoPProof(rsa1024, "GET", "https://a.example/", "", "")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), rsa1024.D.String())
	assert.NotContains(t, err.Error(), base64.RawURLEncoding.EncodeToString(rsa1024.D.Bytes()))
}

// TestJWKThumbprintRFC7638 is the example of RFC 7638 §3.1.
func TestJWKThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	require.NoError(t, err)
	got, err := JWKThumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	require.NoError(t, err)
	assert.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", got)
}

// TestJWKThumbprintMatchesHeaderKey checks the thumbprint of EC and OKP
// keys against one computed here from the proof's jwk, members in RFC 7638
// §3.2 order.
func TestJWKThumbprintMatchesHeaderKey(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		key := dpopTestKey(t, alg)
		proof, err := DPoPProof(key, "GET", "https://a.example/", "", "")
		require.NoError(t, err)
		jws, err := verifyJWS(proof, nil)
		require.NoError(t, err)
		jwk := jws.Header["jwk"].(map[string]any)
		var input string
		if alg == "ES256" {
			input = `{"crv":"P-256","kty":"EC","x":"` + jwk["x"].(string) + `","y":"` + jwk["y"].(string) + `"}`
		} else {
			input = `{"crv":"Ed25519","kty":"OKP","x":"` + jwk["x"].(string) + `"}`
		}
		sum := sha256.Sum256([]byte(input))
		got, err := JWKThumbprint(key.Public())
		require.NoError(t, err)
		assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), got, alg)
	}
}

// kmsSigner stands for a key held elsewhere: only Public and Sign, and it
// counts calls to Public.
type kmsSigner struct {
	inner   crypto.Signer
	publics atomic.Int32
}

func (k *kmsSigner) Public() crypto.PublicKey { k.publics.Add(1); return k.inner.Public() }
func (k *kmsSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return k.inner.Sign(r, d, o)
}

// valueSigner is a signer that is not a pointer: never cached, still works.
type valueSigner struct{ inner crypto.Signer }

func (k valueSigner) Public() crypto.PublicKey { return k.inner.Public() }
func (k valueSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return k.inner.Sign(r, d, o)
}

func TestDPoPProofWorksWithAnySigner(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		kms := &kmsSigner{inner: dpopTestKey(t, alg)}
		for range 3 {
			proof, err := DPoPProof(kms, "GET", "https://a.example/", "tok", "")
			require.NoError(t, err, alg)
			_, err = verifyJWS(proof, dpopTestKey(t, alg).Public())
			require.NoError(t, err, alg)
		}
		assert.Equal(t, int32(1), kms.publics.Load(), "%s: the header of a pointer signer is worked out once", alg)

		proof, err := DPoPProof(valueSigner{dpopTestKey(t, alg)}, "GET", "https://a.example/", "tok", "")
		require.NoError(t, err, alg)
		_, err = verifyJWS(proof, dpopTestKey(t, alg).Public())
		require.NoError(t, err, alg)
	}
}

func TestDPoPKeyCacheIsBounded(t *testing.T) {
	for range 3 * maxCachedKeys {
		k := &kmsSigner{inner: dpopTestKey(t, "EdDSA")}
		_, err := DPoPProof(k, "GET", "https://a.example/", "", "")
		require.NoError(t, err)
		_, seed, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		_, err = DPoPProof(seed, "GET", "https://a.example/", "", "")
		require.NoError(t, err)
	}
	jwsKeys.RLock()
	defer jwsKeys.RUnlock()
	assert.LessOrEqual(t, len(jwsKeys.byPointer)+len(jwsKeys.byEd25519), maxCachedKeys)
}

// offlineSigner fails to sign with an error that carries reauth's prefix.
type offlineSigner struct{ crypto.Signer }

func (f offlineSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, dpopTestError("reauth: the HSM is offline")
}

type dpopTestError string

func (e dpopTestError) Error() string { return string(e) }

func TestDPoPProofSignerErrorHasOnePrefix(t *testing.T) {
	_, err := DPoPProof(offlineSigner{dpopTestKey(t, "ES256")}, "GET", "https://a.example/", "", "")
	require.Error(t, err)
	assert.Equal(t, "reauth: signing with the ES256 key: the HSM is offline", err.Error())
}

func TestRawECDSASignatureRefusesMalformedDER(t *testing.T) {
	for _, der := range [][]byte{
		nil,
		{0x30, 0x00},
		{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x02, 0x01},                                                               // s runs past the end
		{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00},                                                         // trailing byte
		{0x30, 0x06, 0x02, 0x00, 0x02, 0x02, 0x01, 0x01},                                                               // empty r
		append([]byte{0x30, 0x26, 0x02, 0x21}, append(append([]byte{0x01}, make([]byte, 32)...), 0x02, 0x01, 0x01)...), // r of 33 significant bytes
	} {
		_, err := rawECDSASignature(der)
		assert.Error(t, err, "%x", der)
	}
	// Leading zeros and short integers are padded to 32 bytes each.
	got, err := rawECDSASignature([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x05})
	require.NoError(t, err)
	want := make([]byte, 64)
	want[31], want[63] = 0x80, 0x05
	assert.Equal(t, want, got)
}

func BenchmarkDPoPProof(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		key := dpopTestKeys()[alg]
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DPoPProof(key, "GET", "https://api.example.com/v1/items", "an-access-token", "a-nonce"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestJWKThumbprintOfAPrivateKeyIsItsPublicKeys(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		key := dpopTestKey(t, alg)
		a, err := JWKThumbprint(key)
		require.NoError(t, err)
		b, err := JWKThumbprint(key.Public())
		require.NoError(t, err)
		assert.Equal(t, b, a, alg)
	}
}
