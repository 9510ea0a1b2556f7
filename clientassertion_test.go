package reauth

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientAssertionClaims(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			key := dpopTestKey(t, alg)
			ck := &clientKey{key: key, keyID: "key-2026", clientID: "my-client"}
			now := time.Unix(1_800_000_000, 0)
			a, err := ck.assertion("https://AS.example.com/oauth/token?x=1", now)
			require.NoError(t, err)
			jws, err := verifyJWS(a, key.Public())
			require.NoError(t, err)
			assert.Equal(t, map[string]any{"alg": alg, "kid": "key-2026", "typ": "JWT"}, jws.Header, "no jwk: the server knows the client's key")
			c := jws.Claims
			assert.Equal(t, "my-client", c["iss"])
			assert.Equal(t, "my-client", c["sub"])
			assert.Equal(t, "https://as.example.com/oauth/token", c["aud"])
			assert.Equal(t, float64(1_800_000_000), c["iat"])
			assert.Equal(t, float64(1_800_000_060), c["exp"])
			assert.Len(t, c["jti"], 22)

			b, err := ck.assertion("https://as.example.com/oauth/token", now)
			require.NoError(t, err)
			jws2, err := verifyJWS(b, key.Public())
			require.NoError(t, err)
			assert.NotEqual(t, c["jti"], jws2.Claims["jti"], "a new jti per assertion")
		})
	}
}

func TestClientAssertionWithoutKeyID(t *testing.T) {
	ck := &clientKey{key: dpopTestKey(t, "ES256"), clientID: `odd"id`}
	a, err := ck.assertion("https://as.example/token", time.Now())
	require.NoError(t, err)
	jws, err := verifyJWS(a, ck.key.Public())
	require.NoError(t, err)
	assert.NotContains(t, jws.Header, "kid")
	assert.Equal(t, `odd"id`, jws.Claims["iss"], "the client ID is escaped, not cut")
}

func TestClientAssertionReplacesTheSecret(t *testing.T) {
	ck := &clientKey{key: dpopTestKey(t, "EdDSA"), clientID: "my-client"}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"my-client"}, "client_secret": {"s3cr3t"}, "scope": {"a b"}}
	require.NoError(t, ck.authenticate(form, "https://as.example/token", time.Now()))
	assert.NotContains(t, form, "client_secret")
	assert.Equal(t, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", form.Get("client_assertion_type"))
	assert.Equal(t, "client_credentials", form.Get("grant_type"))
	assert.Equal(t, "a b", form.Get("scope"))
	_, err := verifyJWS(form.Get("client_assertion"), ck.key.Public())
	require.NoError(t, err)
}

func TestClientAssertionRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		ck   *clientKey
		url  string
		want string
	}{
		{"no key", &clientKey{clientID: "c"}, "https://as.example/token", "key is nil"},
		{"no client ID", &clientKey{key: dpopTestKey(t, "ES256")}, "https://as.example/token", "client ID is empty"},
		{"relative token URL", &clientKey{key: dpopTestKey(t, "ES256"), clientID: "c"}, "/token?s3cr3t", "not an absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.ck.assertion(tc.url, time.Now())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, 1, strings.Count(err.Error(), "reauth: "))
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}
