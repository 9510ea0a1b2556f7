package reauth_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/reauth/reauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answerWith is a scheme outside the package whose Refused gives a fixed result.
type answerWith struct {
	value string
	err   error
}

func (a answerWith) Authorize(r *reauth.AuthRequest) error {
	if r.State != nil {
		r.Set("Authorization", a.value)
	}
	return nil
}

func (a answerWith) Refused(r *reauth.AuthRequest, _ *reauth.Refusal) (reauth.Retry, error) {
	if a.err != nil || a.value == "" {
		return 0, a.err
	}
	r.State = true
	return reauth.RetryChallenge, nil
}

func (answerWith) Observe(*reauth.AuthRequest, *http.Response) error { return nil }

// TestCredentialsDeclineWithAReasonOrFail is the rule DESIGN.md, the seam,
// states: "" or an error wrapping ErrNoCredentials declines, and the caller
// gets an *UnauthorizedError whose Err is the reason; any other error fails
// the request with that error. Either way there is no retry.
func TestCredentialsDeclineWithAReasonOrFail(t *testing.T) {
	errReason := fmt.Errorf("%w: this scheme wants a hardware key", reauth.ErrNoCredentials)
	errBroken := errors.New("custom scheme: key store unreachable")
	for _, tc := range []struct {
		name     string
		creds    answerWith
		declined bool  // an *UnauthorizedError rather than the credentials' error
		is       error // what the error must match
	}{
		{"nothing new to offer", answerWith{}, true, reauth.ErrNoCredentials},
		{"declined with a reason", answerWith{err: errReason}, true, errReason},
		{"failed", answerWith{err: errBroken}, false, errBroken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Header().Set("WWW-Authenticate", `Custom realm="api"`)
				w.WriteHeader(http.StatusUnauthorized)
			}))
			defer srv.Close()
			c := &http.Client{Transport: &reauth.Transport{Credentials: tc.creds, Origins: []string{srv.URL}}}
			_, err := c.Get(srv.URL)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			var ue *reauth.UnauthorizedError
			if assert.Equal(t, tc.declined, errors.As(err, &ue)) && tc.declined {
				assert.ErrorIs(t, ue.Err, tc.is, "the reason is the credentials' own")
			}
			assert.Equal(t, int32(1), requests.Load(), "no retry")
		})
	}
}
