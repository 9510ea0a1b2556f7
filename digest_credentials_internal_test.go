package reauth

import (
	"fmt"
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
