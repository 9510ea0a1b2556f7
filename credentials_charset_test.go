package reauth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBasicIsNormalisedToNFCWhenTheChallengeAsksForUTF8 is RFC 7617 §2.1: with
// charset="UTF-8" the user-id and password are normalised to Unicode
// Normalization Form C before encoding; without it they go as given.
func TestBasicIsNormalisedToNFCWhenTheChallengeAsksForUTF8(t *testing.T) {
	const (
		nfdUser = "jose\u0301" // e + COMBINING ACUTE ACCENT, as some keyboards type it
		nfdPass = "pa\u0301ss" // the password is normalised too
		nfcUser = "jos\u00e9"
		nfcPass = "p\u00e1ss"
	)
	encode := func(u, p string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
	}
	// The issue's own check of the encoding: "josé" in NFC starts am9zw6k6.
	require.Equal(t, "Basic am9zw6k6", encode(nfcUser, "")[:len("Basic am9zw6k6")])

	for _, tc := range []struct {
		name      string
		challenge string
		want      string
	}{
		{"charset UTF-8", `Basic realm="r", charset="UTF-8"`, encode(nfcUser, nfcPass)},
		{"charset in another case", `Basic realm="r", charset=utf-8`, encode(nfcUser, nfcPass)},
		{"no charset: the bytes as given", `Basic realm="r"`, encode(nfdUser, nfdPass)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != tc.want {
					w.Header().Set("WWW-Authenticate", tc.challenge)
					w.WriteHeader(http.StatusUnauthorized)
				}
			})
			c := clientFor(&Transport{Credentials: Basic(nfdUser, nfdPass), Origins: []string{srv.URL}})
			for range 2 { // the challenged value, then the same value up front
				resp, err := get(t, c, srv.URL+"/")
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
			reqs := srv.requests()
			require.Len(t, reqs, 3)
			assert.Empty(t, reqs[0].Authorization)
			assert.True(t, reqs[1].Authorization == tc.want, "the retry carries the expected encoding")
			assert.True(t, reqs[2].Authorization == tc.want, "later requests carry the same value up front")
		})
	}
}

// TestBearerWithAnEmptyTokenSaysItIsEmpty: Bearer(os.Getenv("UNSET")) fails
// at first use with an error that names the cause and the fix, and sends
// nothing.
func TestBearerWithAnEmptyTokenSaysItIsEmpty(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {})
	c := clientFor(&Transport{Credentials: Bearer(""), Origins: []string{srv.URL}})
	_, err := c.Get(srv.URL + "/")
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrMalformedCredentials))
	assert.Contains(t, err.Error(), "the Bearer token is empty")
	assert.Contains(t, err.Error(), "environment variable")
	assert.Zero(t, srv.count(), "nothing is sent with an empty token")
}
