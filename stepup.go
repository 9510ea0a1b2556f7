package reauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Bearer error codes that ask for a different token rather than a fresh one.
const (
	// RFC 9470 §3: the authentication behind the token is not strong or
	// recent enough; acr_values and max_age say what is needed.
	errInsufficientUserAuthentication = "insufficient_user_authentication"
	// The claims challenge of OpenID Connect / Azure continuous access
	// evaluation: the token lacks claims, listed in claims as base64 JSON.
	errInsufficientClaims = "insufficient_claims"
)

// ErrStepUpRequired is the reason an [*UnauthorizedError] gives when the
// server asked for step-up authentication (RFC 9470) or more claims and no
// OAuth2Options.StepUp hook supplied a token. The error's Bearer field holds
// acr_values, max_age and claims, for the application to act on. An error
// that wraps it matches [ErrNoCredentials] too.
var ErrStepUpRequired = errors.New("reauth: the server requires step-up authentication or more claims (RFC 9470) and no StepUp hook supplied a token")

// errStepUpRequired is ErrStepUpRequired as the credentials give it: a
// decline, wrapping ErrNoCredentials.
var errStepUpRequired = errorf("%w (%w)", ErrStepUpRequired, ErrNoCredentials)

// StepUpChallenge is what a step-up (RFC 9470) or claims challenge asks for,
// as passed to OAuth2Options.StepUp. The hook typically sends the user
// through the authorization endpoint again with these as parameters
// (acr_values, max_age, claims: OpenID Connect Core §3.1.2.1, §5.5).
type StepUpChallenge struct {
	// Error is insufficient_user_authentication or insufficient_claims.
	Error string
	// ACRValues are the authentication context class references acceptable,
	// in the server's order of preference (RFC 9470 §3).
	ACRValues []string
	// MaxAge is the largest acceptable time since the user authenticated;
	// meaningful only when HasMaxAge (max_age=0 asks for a fresh login).
	MaxAge    time.Duration
	HasMaxAge bool // the challenge carried max_age
	// Claims is the claims request, decoded from base64 to JSON; "" when the
	// challenge has none.
	Claims string
	// Challenge is the Bearer challenge as the server sent it.
	Challenge Challenge
}

// stepUpChallengeOf reads ch's step-up parameters. A malformed max_age or
// claims is an error naming it: a hook handed a guess would ask the user
// for the wrong thing.
func stepUpChallengeOf(ch Challenge) (*StepUpChallenge, error) {
	s := &StepUpChallenge{Error: ch.Param("error"), Challenge: ch}
	s.ACRValues = strings.Fields(ch.Param("acr_values"))
	if v, ok := ch.Params["max_age"]; ok {
		secs, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return nil, errorf("reauth: the step-up challenge's max_age is not a number of seconds (RFC 9470 §3) (%w)", ErrNoCredentials)
		}
		s.MaxAge, s.HasMaxAge = time.Duration(secs)*time.Second, true
	}
	if v := ch.Param("claims"); v != "" {
		claims, ok := decodeClaims(v)
		if !ok {
			return nil, errorf("reauth: the claims challenge's claims is neither base64-encoded JSON nor JSON (%w)", ErrNoCredentials)
		}
		s.Claims = claims
	}
	return s, nil
}

// decodeClaims decodes a claims auth-param. Servers send it base64-encoded
// (padded or not, either alphabet); some send the JSON as it is.
func decodeClaims(v string) (string, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil && json.Valid(b) {
			return string(b), true
		}
	}
	if json.Valid([]byte(v)) {
		return v, true
	}
	return "", false
}
