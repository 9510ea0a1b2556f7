package mockserver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The server's Digest computation reproduces the published examples.
func TestDigestComputationMatchesPublishedExamples(t *testing.T) {
	rfc7616 := digestExchange{
		username: "Mufasa", realm: "http-auth@example.org", password: "Circle of Life",
		nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
		nc: "00000001", qop: "auth", method: "GET", uri: "/dir/index.html",
	}
	rfc2617 := digestExchange{
		username: "Mufasa", realm: "testrealm@host.com", password: "Circle Of Life",
		nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", cnonce: "0a4f113b",
		nc: "00000001", qop: "auth", method: "GET", uri: "/dir/index.html",
	}
	// RFC 7616 §3.9.2 with the values of erratum 4897 (the RFC's own
	// username hash and response do not follow from its inputs).
	userhashExample := digestExchange{
		username: "J\u00e4s\u00f8n Doe", realm: "api@example.org", password: "Secret, or not?",
		nonce: "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", cnonce: "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
		nc: "00000001", qop: "auth", method: "GET", uri: "/doe.json",
	}
	tests := []struct {
		name, algorithm string
		x               digestExchange
		want            string
	}{
		{"RFC 7616 §3.9.1 MD5", "MD5", rfc7616, "8ca523f5e9506fed4657c9700eebdbec"},
		{"RFC 7616 §3.9.1 SHA-256", "SHA-256", rfc7616, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
		{"RFC 2617 §3.5 MD5", "md5", rfc2617, "6629fae49393a05397450978507c4ef1"},
		{"RFC 7616 §3.9.2 SHA-512-256 (erratum 4897)", "SHA-512-256", userhashExample, "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alg, ok := findDigestAlgorithm(tt.algorithm)
			require.True(t, ok)
			assert.Equal(t, tt.want, alg.response(tt.x))
		})
	}

	alg, _ := findDigestAlgorithm("SHA-512-256")
	assert.Equal(t, "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b",
		alg.userhash(userhashExample.username, userhashExample.realm), "userhash of RFC 7616 §3.9.2 (erratum 4897)")
}

func TestDigestSessAndAuthIntFollowTheRFCFormulas(t *testing.T) {
	// -sess: HA1 = H(H(user:realm:pass):nonce:cnonce) (RFC 7616 §3.4.2);
	// auth-int: A2 = method:uri:H(body) (§3.4.3). Checked against the
	// formulas spelled out with the plain hash.
	x := digestExchange{username: "u", realm: "r", password: "p", nonce: "n", cnonce: "c", nc: "00000001", qop: "auth-int", method: "POST", uri: "/x", body: []byte("body")}
	sess, ok := findDigestAlgorithm("SHA-256-sess")
	require.True(t, ok)
	plain, _ := findDigestAlgorithm("SHA-256")
	H := plain.h
	ha1 := H(H("u:r:p") + ":n:c")
	ha2 := H("POST:/x:" + H("body"))
	assert.Equal(t, H(ha1+":n:00000001:c:auth-int:"+ha2), sess.response(x))
	assert.Equal(t, H(ha1+":n:00000001:c:auth-int:"+H(":/x:"+H("body"))), sess.rspauth(x), "rspauth leaves the method out of A2")
	assert.Equal(t, "SHA-256-sess", sess.name)
}

func TestFindDigestAlgorithmKnowsTheRegistry(t *testing.T) {
	for _, name := range []string{"MD5", "md5-SESS", "SHA-256", "SHA-256-sess", "SHA-512-256", "sha-512-256-sess"} {
		_, ok := findDigestAlgorithm(name)
		assert.True(t, ok, name)
	}
	for _, name := range []string{"", "SHA-1", "-sess", "SHA-512", "MD5-sess-sess"} {
		_, ok := findDigestAlgorithm(name)
		assert.False(t, ok, name)
	}
}
