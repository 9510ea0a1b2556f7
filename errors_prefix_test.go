package reauth

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// TestErrorStringsSayReauthOnce drives the failures whose errors wrap other
// reauth errors, and checks that no error in the chain, from the outermost
// to each one it wraps, repeats the "reauth: " prefix.
func TestErrorStringsSayReauthOnce(t *testing.T) {
	digestServer := func(challenge string) *recorder {
		return newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
		})
	}
	cases := []struct {
		name string
		run  func(t *testing.T) error
		is   error // a wrapped error the case must still match
	}{
		{"Digest challenge with an unknown algorithm", func(t *testing.T) error {
			srv := digestServer(`Digest realm="r", nonce="n", qop="auth", algorithm=SHA-3`)
			_, err := clientFor(&Transport{Credentials: Digest("u", testPassword), Origins: []string{srv.URL}}).Get(srv.URL)
			return err
		}, ErrDigestChallenge},
		{"Digest MD5 challenge with MD5 disallowed", func(t *testing.T) error {
			srv := digestServer(`Digest realm="r", nonce="n", qop="auth", algorithm=MD5`)
			creds := DigestWithOptions("u", testPassword, DigestOptions{DisallowMD5: true})
			_, err := clientFor(&Transport{Credentials: creds, Origins: []string{srv.URL}}).Get(srv.URL)
			return err
		}, ErrNoCredentials},
		{"CONNECT answered by a Digest challenge with an unknown algorithm", func(t *testing.T) error {
			proxy := newTestProxy(t, `Digest realm="p", nonce="n", qop="auth", algorithm=SHA-3`, func(string) bool { return false })
			target := newTLSRecorder(t, okHandler)
			_, err := (&http.Client{Transport: viaProxy(t, proxy, target, Digest("proxyuser", proxyPassword))}).Get(target.URL)
			if err == nil { // the first CONNECT learns the challenge; the next one answers it
				_, err = (&http.Client{Transport: viaProxy(t, proxy, target, Digest("proxyuser", proxyPassword))}).Get(target.URL)
			}
			return err
		}, ErrUnauthorized},
		{"a token endpoint that issues a DPoP token", func(t *testing.T) error {
			srv := newRecorder(t, okHandler)
			src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "abc", TokenType: "DPoP"})
			_, err := clientFor(&Transport{Credentials: OAuth2(src), Origins: []string{srv.URL}}).Get(srv.URL)
			return err
		}, ErrTokenEndpoint},
		{"a registry token realm reached through a Base that fails with a reauth error", func(t *testing.T) error {
			reg := newMockRegistry(t)
			realm := frontOf(t, reg.mock)
			reg.realm = realm.realmURL()
			// The Base is itself a reauth Transport, misconfigured: Origins
			// without Credentials.
			base := &Transport{Origins: []string{realm.URL}}
			tr := &Transport{Base: base, Credentials: Registry("alice", testPassword), Origins: []string{reg.URL, realm.URL}}
			_, err := clientFor(tr).Get(reg.URL + "/v2/team/app/manifests/latest")
			return err
		}, ErrNoCredentialsForOrigins},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is, "the chain still wraps what it wrapped")
			walkErrors(err, func(e error) {
				text := e.Error()
				assert.LessOrEqual(t, strings.Count(text, "reauth:"), 1, "%T repeats the prefix: %s", e, text)
				assertNoSecret(t, "the text", text)
			})
		})
	}
}

// walkErrors calls f with err and every error it wraps.
func walkErrors(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, f)
		}
	}
}

// TestErrorfWrapsLikeFmtErrorf: errorf changes only the text.
func TestErrorfWrapsLikeFmtErrorf(t *testing.T) {
	inner := errors.New("reauth: inner")
	err := errorf("%w: %w", ErrNoCredentials, inner)
	assert.Equal(t, "reauth: no credentials answer the challenges: inner", err.Error())
	assert.ErrorIs(t, err, ErrNoCredentials)
	assert.ErrorIs(t, err, inner)

	err = errorf("reauth: fetching %s: %w", "x", inner)
	assert.Equal(t, "reauth: fetching x: inner", err.Error())
	assert.ErrorIs(t, err, inner)

	foreign := errors.New("dial tcp: refused")
	assert.Equal(t, "reauth: fetching x: dial tcp: refused", errorf("reauth: fetching %s: %w", "x", foreign).Error())
}
