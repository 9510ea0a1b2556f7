package reauth

import "net/http"

// authorizeValue runs c.Authorize for one attempt of ar's request and
// returns the value it set in ar's own field ("" for none): tests that drive
// one scheme without a Transport.
func authorizeValue(c Credentials, ar *AuthRequest) (string, error) {
	ar.req.Header = make(http.Header)
	ar.reset(ar.req)
	if err := c.Authorize(ar); err != nil {
		return "", err
	}
	if err := ar.setError(); err != nil {
		return "", err
	}
	return ar.req.Header.Get(ar.Field()), nil
}

// answerValue tells c that the attempt carrying sent in ar's own field was
// refused with ref, and returns the value c sets for the retry ("" when it
// declines).
func answerValue(c Credentials, ar *AuthRequest, sent string, ref *Refusal) (string, error) {
	ar.req.Header = make(http.Header)
	if sent != "" {
		ar.req.Header.Set(ar.Field(), sent)
	}
	if ref.Allowed == 0 {
		ref.Allowed = RetryChallenge | RetryNonce
	}
	want, err := c.Refused(ar, ref)
	if err != nil || want == 0 {
		return "", err
	}
	return authorizeValue(c, ar)
}

// testAuthRequest is NewAuthRequest on the origin leg.
func originAuthRequest(req *http.Request) *AuthRequest { return NewAuthRequest(req, nil, nil) }
