package reauth

import (
	"fmt"
	"math"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDigestProtectionSpacesAreBounded(t *testing.T) {
	d := Digest("alice", "pw").(*digestCredentials)
	req := httptest.NewRequest("GET", "https://api.example.com/x", nil)
	for i := 0; i < 10*maxDigestSpaces; i++ {
		ch := Challenge{Scheme: "Digest", Params: map[string]string{"realm": fmt.Sprintf("realm-%d", i), "nonce": "n", "qop": "auth"}}
		v, err := d.Answer(&AuthRequest{Request: req}, &Refusal{StatusCode: 401, Challenges: []Challenge{ch}})
		require.NoError(t, err)
		require.NotEmpty(t, v)
	}
	assert.Len(t, d.spaces, maxDigestSpaces)
	assert.Equal(t, fmt.Sprintf("realm-%d", 10*maxDigestSpaces-1), d.spaces[maxDigestSpaces-1].realm, "the newest is kept")
}

// answerNC answers a Digest challenge for realm and nonce as d and returns
// the nonce count of the answer.
func answerNC(t *testing.T, d *digestCredentials, realm, nonce string, extra ...string) uint32 {
	t.Helper()
	params := map[string]string{"realm": realm, "nonce": nonce, "qop": "auth"}
	for i := 0; i+1 < len(extra); i += 2 {
		params[extra[i]] = extra[i+1]
	}
	ar := &AuthRequest{Request: httptest.NewRequest("GET", "https://api.example.com/x", nil)}
	v, err := d.Answer(ar, &Refusal{StatusCode: 401, Challenges: []Challenge{{Scheme: "Digest", Params: params}}})
	require.NoError(t, err)
	require.NotEmpty(t, v)
	require.NotNil(t, ar.stash)
	return ar.stash.answer.nc
}

func TestDigestNonceCountsContinueAcrossChallenges(t *testing.T) {
	d := Digest("alice", "pw").(*digestCredentials)
	assert.Equal(t, uint32(1), answerNC(t, d, "r", "reused"))
	assert.Equal(t, uint32(2), answerNC(t, d, "r", "reused"), "the same nonce, challenged again")
	assert.Equal(t, uint32(1), answerNC(t, d, "other realm", "fresh"), "a new nonce starts at 1")
	assert.Equal(t, uint32(3), answerNC(t, d, "other realm", "reused"), "the count is the nonce's, whatever the space")
}

func TestDigestForgottenNonceNeverRestartsItsCount(t *testing.T) {
	d := Digest("alice", "pw").(*digestCredentials)
	for range 5 {
		answerNC(t, d, "r", "old")
	}
	// Enough other nonces, each still in use, to push "old" out.
	for i := range 2 * maxDigestNonces {
		answerNC(t, d, fmt.Sprintf("realm-%d", i%maxDigestSpaces), fmt.Sprintf("n-%d", i))
	}
	assert.Len(t, d.counts.m, maxDigestNonces, "the table is bounded")
	assert.Greater(t, answerNC(t, d, "r", "old"), uint32(5), "a forgotten nonce continues above its last count")
}

func TestDigestRetiredNoncesAreForgottenFirst(t *testing.T) {
	d := Digest("alice", "pw").(*digestCredentials)
	// A server handing out one nonce at a time, each declared stale in
	// turn: the table never holds more than its bound, and a new nonce
	// still starts at 1 (a server checking strict order wants 1).
	prev := ""
	for i := range 3 * maxDigestNonces {
		nonce := fmt.Sprintf("n-%d", i)
		ar := &AuthRequest{Request: httptest.NewRequest("GET", "https://api.example.com/x", nil)}
		ch := Challenge{Scheme: "Digest", Params: map[string]string{"realm": "r", "nonce": nonce, "qop": "auth", "stale": "true"}}
		sent := ""
		if prev != "" {
			sent = `Digest username="alice", realm="r", nonce="` + prev + `", uri="/x", nc=00000002, cnonce="c", qop=auth, response="00"`
		}
		_, err := d.Answer(ar, &Refusal{StatusCode: 401, Challenges: []Challenge{ch}, Sent: sent})
		require.NoError(t, err)
		require.Equal(t, uint32(1), ar.stash.answer.nc, "nonce %d", i)
		prev = nonce
	}
	assert.LessOrEqual(t, len(d.counts.m), maxDigestNonces)
	assert.Zero(t, d.counts.floor)
}

func TestDigestNonceCountsEndRatherThanWrap(t *testing.T) {
	d := Digest("alice", "pw").(*digestCredentials)
	answerNC(t, d, "r", "n")
	for _, e := range d.counts.m {
		e.last = math.MaxUint32
	}
	ar := &AuthRequest{Request: httptest.NewRequest("GET", "https://api.example.com/x", nil)}
	ch := Challenge{Scheme: "Digest", Params: map[string]string{"realm": "r", "nonce": "n", "qop": "auth"}}
	_, err := d.Answer(ar, &Refusal{StatusCode: 401, Challenges: []Challenge{ch}})
	assert.ErrorIs(t, err, ErrNoCredentials)
	v, err := d.Authorization(ar)
	assert.NoError(t, err)
	assert.Empty(t, v, "nothing is sent up front with a used-up nonce")
}
