package negotiate

import (
	"errors"
	"fmt"

	"github.com/reauth/reauth"
)

// ErrMutualAuthentication is matched (errors.Is) by the error returned when
// the server fails to prove itself: its final Negotiate token is missing
// where one is required, is not a SPNEGO answer accepting Kerberos, does not
// decrypt with the session key of the request's ticket, or answers another
// authenticator than the one that request sent. The response is withheld.
// The error also matches [reauth.ErrMutualAuthentication] and
// [reauth.ErrFinal]: the same server will not prove itself on a retry.
var ErrMutualAuthentication error = &sentinel{
	msg: "reauth: negotiate: mutual authentication failed",
	is:  []error{reauth.ErrMutualAuthentication, reauth.ErrFinal},
}

// ErrKDCRefused is matched (errors.Is) by the error returned when the KDC
// answers with a KRB-ERROR instead of a ticket: a wrong password, a keytab
// whose key version the KDC has replaced, a client or service principal it
// does not know. Asking again gets the same answer: the error is final (it
// matches [reauth.ErrFinal]). The error text carries the KRB-ERROR's code
// and name, never a key.
var ErrKDCRefused error = &sentinel{
	msg: "reauth: negotiate: the KDC refused a ticket",
	is:  []error{reauth.ErrFinal},
}

// ErrTokenRefused is matched (errors.Is) by the reason a Transport gives,
// in the [*reauth.UnauthorizedError] it returns, when the server answered a
// Negotiate token with another 401 (407 from a proxy). Another token would
// carry the same ticket for the same principal, so the request ends there.
// It also matches [reauth.ErrNoCredentials].
var ErrTokenRefused error = &sentinel{
	msg: "reauth: negotiate: the server refused the Kerberos token",
	is:  []error{reauth.ErrNoCredentials},
}

// errNoClient is returned for New(nil) and a client without credentials.
var errNoClient = reauth.Final(errors.New("reauth: negotiate: no Kerberos client: build one with gokrb5's client.NewWithKeytab, NewWithPassword or NewFromCCache"))

// sentinel is an error value that errors.Is also matches against the
// errors in is.
type sentinel struct {
	msg string
	is  []error
}

func (e *sentinel) Error() string { return e.msg }

func (e *sentinel) Is(target error) bool {
	for _, x := range e.is {
		if x == target {
			return true
		}
	}
	return false
}

// kindError is an error with a text of its own that matches a sentinel
// (kind) and the error it wraps, without repeating the sentinel's text.
type kindError struct {
	msg     string
	kind    error
	wrapped error
}

// kindErrorf returns an error whose text is the formatted one, matching
// kind and the error that %w wraps in format, if any.
func kindErrorf(kind error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &kindError{msg: err.Error(), kind: kind, wrapped: errors.Unwrap(err)}
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.wrapped == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.wrapped}
}
