package reauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/reauth/reauth"
	"github.com/stretchr/testify/assert"
)

// errHardwareKey is a custom scheme's error type that joins the finality
// rule with an Is method.
type errHardwareKey struct{}

func (errHardwareKey) Error() string        { return "hwkey: the key refused to sign" }
func (errHardwareKey) Is(target error) bool { return target == reauth.ErrFinal }

// TestFinalityIsOneRule: CheckRetry retries an error unless it matches
// ErrFinal, whoever made it: reauth's typed errors and configuration
// errors, and a custom scheme's errors marked by wrapping, by Final or by an
// Is method; wrapped in a *url.Error as http.Client returns them.
func TestFinalityIsOneRule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		final bool
	}{
		{"UnauthorizedError", &reauth.UnauthorizedError{StatusCode: 401}, true},
		{"ForbiddenError", &reauth.ForbiddenError{StatusCode: 403}, true},
		{"InvalidRequestError", &reauth.InvalidRequestError{StatusCode: 400}, true},
		{"a configuration error", reauth.ErrNoOrigins, true},
		{"plain http refused", reauth.ErrInsecureCredentials, true},
		{"malformed credentials", fmt.Errorf("%w: a ':' in the user-id", reauth.ErrMalformedCredentials), true},
		{"a custom error wrapping ErrFinal", fmt.Errorf("%w: hwkey: no key", reauth.ErrFinal), true},
		{"a custom error marked with Final", reauth.Final(errors.New("hwkey: locked")), true},
		{"a custom error type with Is", errHardwareKey{}, true},
		{"a custom error, not final", errors.New("hwkey: agent busy"), false},
		{"a network error", errors.New("connection reset by peer"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrapped := &url.Error{Op: "Get", URL: "https://api.example.com/", Err: tc.err}
			assert.Equal(t, tc.final, errors.Is(wrapped, reauth.ErrFinal))
			retry, err := reauth.CheckRetry(context.Background(), nil, wrapped)
			assert.NoError(t, err)
			assert.Equal(t, !tc.final, retry, "CheckRetry retries exactly the errors that are not final")
		})
	}
	assert.ErrorIs(t, reauth.ErrNoOrigins, reauth.ErrConfig, "configuration errors match ErrConfig")
	assert.Equal(t, "hwkey: locked", reauth.Final(errors.New("hwkey: locked")).Error(), "Final keeps the text")
}

// TestMutualAuthenticationIsOneFinalSentinel: a server that fails to prove
// itself (Digest's rspauth here) gives an error that matches
// ErrMutualAuthentication, which no retry can change.
func TestMutualAuthenticationIsOneFinalSentinel(t *testing.T) {
	assert.ErrorIs(t, reauth.ErrDigestRspauth, reauth.ErrMutualAuthentication)
	assert.ErrorIs(t, reauth.ErrMutualAuthentication, reauth.ErrFinal)
	wrapped := fmt.Errorf("%w: rspauth does not match", reauth.ErrDigestRspauth)
	assert.ErrorIs(t, wrapped, reauth.ErrMutualAuthentication)
	assert.ErrorIs(t, wrapped, reauth.ErrFinal)
	assert.Equal(t, 1, strings.Count(wrapped.Error(), "reauth:"), "one prefix")
}
