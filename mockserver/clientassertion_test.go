package mockserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func publicOf(k testKey) crypto.PublicKey {
	switch s := k.signer.(type) {
	case *ecdsa.PrivateKey:
		return &s.PublicKey
	case ed25519.PrivateKey:
		return s.Public()
	default:
		return &k.signer.(*rsa.PrivateKey).PublicKey
	}
}

var assertionCount int

// assertion is a private_key_jwt client assertion by k for client and aud.
func (k testKey) assertion(t *testing.T, client, aud string, now time.Time, edit ...func(c map[string]any)) url.Values {
	t.Helper()
	assertionCount++
	c := map[string]any{"iss": client, "sub": client, "aud": aud, "iat": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix(), "jti": "assertion-" + strconv.Itoa(assertionCount)}
	for _, e := range edit {
		e(c)
	}
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {jwtBearerAssertion},
		"client_assertion":      {k.sign(t, map[string]any{"alg": k.alg, "typ": "JWT"}, c)},
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	keys := map[string]testKey{}
	srv, clock := newTestServer(t, func(c *Config) {
		c.OAuth2.ClientKeys = map[string]crypto.PublicKey{}
		for _, alg := range []string{"ES256", "EdDSA", "PS256", "RS256"} {
			keys[alg] = newTestKey(t, alg)
			c.OAuth2.ClientKeys["jwt-"+alg] = publicOf(keys[alg])
		}
	})
	aud := srv.URL() + "/oauth2/token"
	now := clock.Now()
	for alg, k := range keys {
		t.Run(alg, func(t *testing.T) {
			form := k.assertion(t, "jwt-"+alg, aud, now)
			r := postForm(t, aud, "", form)
			require.Equal(t, http.StatusOK, r.status, r.body)
			assert.Equal(t, "Bearer", r.json(t)["token_type"])
			r = postForm(t, aud, "", form)
			assert.Equal(t, http.StatusUnauthorized, r.status, "the same assertion again")
			assert.Contains(t, r.body, "replay")
		})
	}

	k := keys["ES256"]
	set := func(name string, v any) func(c map[string]any) { return func(c map[string]any) { c[name] = v } }
	tests := []struct {
		name string
		form url.Values
		says string
	}{
		{"aud of another endpoint", k.assertion(t, "jwt-ES256", srv.URL()+"/dpop/token", now), "aud must be the token endpoint's URL"},
		{"aud in a list", k.assertion(t, "jwt-ES256", "", now, set("aud", []string{"x", aud})), ""},
		{"sub not iss", k.assertion(t, "jwt-ES256", aud, now, set("sub", "someone")), "sub must be the client_id"},
		{"unknown client", k.assertion(t, "jwt-nobody", aud, now), "iss names no client"},
		{"signed by another client's key", keys["EdDSA"].assertion(t, "jwt-ES256", aud, now), "alg EdDSA does not fit"},
		{"signed by another key of the same type", newTestKey(t, "ES256").assertion(t, "jwt-ES256", aud, now), "does not verify"},
		{"expired", k.assertion(t, "jwt-ES256", aud, now, set("exp", now.Add(-2*time.Minute).Unix())), "expired"},
		{"no exp", k.assertion(t, "jwt-ES256", aud, now, func(c map[string]any) { delete(c, "exp") }), "exp is missing"},
		{"exp far away", k.assertion(t, "jwt-ES256", aud, now, set("exp", now.Add(time.Hour).Unix())), "more than 10m0s away"},
		{"no jti", k.assertion(t, "jwt-ES256", aud, now, func(c map[string]any) { delete(c, "jti") }), "jti must be"},
		{"nbf later", k.assertion(t, "jwt-ES256", aud, now, set("nbf", now.Add(5*time.Minute).Unix())), "not valid yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postForm(t, aud, "", tt.form)
			if tt.says == "" {
				assert.Equal(t, http.StatusOK, r.status, r.body)
				return
			}
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, "invalid_client", r.json(t)["error"])
			assert.Contains(t, r.body, tt.says)
		})
	}

	t.Run("wrong assertion type", func(t *testing.T) {
		form := k.assertion(t, "jwt-ES256", aud, now)
		form.Set("client_assertion_type", "urn:other")
		assert.Contains(t, postForm(t, aud, "", form).body, "client_assertion_type must be")
	})
	t.Run("assertion and secret", func(t *testing.T) {
		r := postForm(t, aud, basic("reauth-client", "reauth-secret"), k.assertion(t, "jwt-ES256", aud, now))
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Contains(t, r.body, "authenticated twice")
	})

	// At the DPoP token endpoint that wants a nonce, the first request is
	// refused for its nonce before the client is authenticated, so the
	// same body (the same assertion) goes through with a new proof.
	t.Run("DPoP nonce retry resends the assertion", func(t *testing.T) {
		u := srv.URL() + "/dpop/nonce/token"
		form := k.assertion(t, "jwt-ES256", u, now)
		pk := newTestKey(t, "EdDSA")
		r := dpopPost(t, srv, "/dpop/nonce/token", pk.proof(t, now, "POST", u, "", ""), form, "")
		require.Equal(t, "use_dpop_nonce", r.json(t)["error"])
		r = dpopPost(t, srv, "/dpop/nonce/token", pk.proof(t, now, "POST", u, "", r.header.Get("DPoP-Nonce")), form, "")
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Equal(t, "DPoP", r.json(t)["token_type"])
	})
}

func TestClientKeysAreValidated(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OAuth2.ClientKeys = map[string]crypto.PublicKey{"c": "not a key"}
	_, err := NewUnstarted(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "OAuth2.ClientKeys")
}
