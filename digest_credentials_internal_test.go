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
		v, err := answerValue(d, originAuthRequest(req), "", &Refusal{StatusCode: 401, Challenges: []Challenge{ch}})
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
	ar := originAuthRequest(httptest.NewRequest("GET", "https://api.example.com/x", nil))
	v, err := answerValue(d, ar, "", &Refusal{StatusCode: 401, Challenges: []Challenge{{Scheme: "Digest", Params: params}}})
	require.NoError(t, err)
	require.NotEmpty(t, v)
	st, _ := ar.State.(*digestState)
	require.NotNil(t, st)
	return st.answer.nc
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
	// One request whose every answer is declared stale: its State holds
	// the answer refused, whose nonce is then retired.
	ar := originAuthRequest(httptest.NewRequest("GET", "https://api.example.com/x", nil))
	sent := ""
	for i := range 3 * maxDigestNonces {
		nonce := fmt.Sprintf("n-%d", i)
		ch := Challenge{Scheme: "Digest", Params: map[string]string{"realm": "r", "nonce": nonce, "qop": "auth", "stale": "true"}}
		v, err := answerValue(d, ar, sent, &Refusal{StatusCode: 401, Challenges: []Challenge{ch}})
		require.NoError(t, err)
		require.Equal(t, uint32(1), ar.State.(*digestState).answer.nc, "nonce %d", i)
		sent = v
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
	ar := originAuthRequest(httptest.NewRequest("GET", "https://api.example.com/x", nil))
	ch := Challenge{Scheme: "Digest", Params: map[string]string{"realm": "r", "nonce": "n", "qop": "auth"}}
	_, err := answerValue(d, ar, "", &Refusal{StatusCode: 401, Challenges: []Challenge{ch}})
	assert.ErrorIs(t, err, ErrNoCredentials)
	ar = originAuthRequest(httptest.NewRequest("GET", "https://api.example.com/x", nil))
	v, err := authorizeValue(d, ar)
	assert.NoError(t, err)
	assert.Empty(t, v, "nothing is sent up front with a used-up nonce")
}
