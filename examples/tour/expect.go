package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/reauth/reauth"
)

// expect is what DESIGN.md says a scenario ends in.
type expect struct {
	// requests is how many requests the mock server sees, per call; the
	// scenario makes one call per entry, all on the same Transport.
	requests []int
	// status is every call's status when no error is expected.
	status int
	// errs, when set, must all match every call's error (errors.Is).
	errs []error
	// check tests what more the scenario shows (a scope surfaced, an
	// algorithm chosen); it returns "" when that holds, else what differs.
	check func(calls []call) string
}

// succeeds expects status on every call, with the given request counts.
func succeeds(status int, requests ...int) expect {
	return expect{status: status, requests: requests}
}

// fails expects one call of requests requests that ends in an error matching
// each of errs.
func fails(requests int, errs ...error) expect {
	return expect{requests: []int{requests}, errs: errs}
}

// and adds a check.
func (x expect) and(check func(calls []call) string) expect {
	x.check = check
	return x
}

// compare lists how calls differ from x.
func (x expect) compare(calls []call) []string {
	var d []string
	for i, c := range calls {
		n := fmt.Sprintf("call %d", i+1)
		if got := len(c.requests); got != x.requests[i] {
			d = append(d, fmt.Sprintf("%s: the server saw %d request(s), DESIGN.md says %d", n, got, x.requests[i]))
		}
		switch {
		case len(x.errs) == 0 && c.err != nil:
			d = append(d, fmt.Sprintf("%s: error %s, want status %d", n, errSummary(c.err), x.status))
		case len(x.errs) == 0 && c.status != x.status:
			d = append(d, fmt.Sprintf("%s: status %d, want %d", n, c.status, x.status))
		case len(x.errs) > 0 && c.err == nil:
			d = append(d, fmt.Sprintf("%s: status %d, want an error matching %s", n, c.status, errNames(x.errs)))
		case len(x.errs) > 0:
			for _, want := range x.errs {
				if !errors.Is(c.err, want) {
					d = append(d, fmt.Sprintf("%s: error %s does not match %s", n, errSummary(c.err), errName(want)))
				}
			}
		}
	}
	if x.check != nil && len(calls) == len(x.requests) {
		if s := x.check(calls); s != "" {
			d = append(d, s)
		}
	}
	return d
}

// sentinels are reauth's errors for errors.Is, by name, in the order a
// summary names them: the class first, then the reason.
var sentinels = []struct {
	err  error
	name string
}{
	{reauth.ErrUnauthorized, "ErrUnauthorized"},
	{reauth.ErrForbidden, "ErrForbidden"},
	{reauth.ErrInvalidRequest, "ErrInvalidRequest"},
	{reauth.ErrNoCredentials, "ErrNoCredentials"},
	{reauth.ErrSameCredentials, "ErrSameCredentials"},
	{reauth.ErrRefusedAfterRetry, "ErrRefusedAfterRetry"},
	{reauth.ErrBodyNotReplayable, "ErrBodyNotReplayable"},
	{reauth.ErrDigestChallenge, "ErrDigestChallenge"},
	{reauth.ErrDigestRspauth, "ErrDigestRspauth"},
	{reauth.ErrNoOrigins, "ErrNoOrigins"},
	{reauth.ErrInsecureCredentials, "ErrInsecureCredentials"},
}

func errName(err error) string {
	for _, s := range sentinels {
		if s.err == err {
			return s.name
		}
	}
	return err.Error()
}

func errNames(errs []error) string {
	names := make([]string, len(errs))
	for i, e := range errs {
		names[i] = errName(e)
	}
	return strings.Join(names, "+")
}

// errSummary names the sentinels err matches, with the fields of reauth's
// typed errors that say why: "401 ErrUnauthorized (ErrRefusedAfterRetry)
// Bearer.Scope=admin". reauth's error strings hold no secrets (DESIGN.md,
// invariant 7), so an error that matches no sentinel is shown as it is.
func errSummary(err error) string {
	class, fields := errParts(err)
	return class + fields
}

// errClass is errSummary without the fields: the status and the sentinels,
// "401 ErrUnauthorized (ErrRefusedAfterRetry)".
func errClass(err error) string {
	class, _ := errParts(err)
	return class
}

func errParts(err error) (class, fields string) {
	var matched []string
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			matched = append(matched, s.name)
		}
	}
	if len(matched) == 0 {
		return err.Error(), ""
	}
	var b strings.Builder
	var (
		ue *reauth.UnauthorizedError
		fe *reauth.ForbiddenError
		ie *reauth.InvalidRequestError
	)
	var be reauth.BearerError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(&b, "%d ", ue.StatusCode)
		be = ue.Bearer
	case errors.As(err, &fe):
		fmt.Fprintf(&b, "%d ", fe.StatusCode)
		be = fe.Bearer
	case errors.As(err, &ie):
		fmt.Fprintf(&b, "%d ", ie.StatusCode)
		be = ie.Bearer
	}
	b.WriteString(matched[0])
	if len(matched) > 1 {
		b.WriteString(" (" + strings.Join(matched[1:], ", ") + ")")
	}
	class = b.String()
	b.Reset()
	// The fields of the typed error that tell the caller what to do next.
	for _, f := range []struct{ name, v string }{
		{"Bearer.Scope", be.Scope}, {"Bearer.ACRValues", be.ACRValues}, {"Bearer.MaxAge", be.MaxAge},
	} {
		if f.v != "" {
			fmt.Fprintf(&b, " %s=%s", f.name, f.v)
		}
	}
	if fe != nil {
		for _, re := range fe.RegistryErrors() {
			b.WriteString(" RegistryErrors=" + re.Code)
		}
	}
	if ue != nil && ue.ParseErr != nil {
		b.WriteString(" ParseErr set")
	}
	return class, b.String()
}

// The checks scenarios add to their status or error.

// lastError returns the error of the last call as T.
func lastError[T error](calls []call) (T, bool) {
	var target T
	ok := errors.As(calls[len(calls)-1].err, &target)
	return target, ok
}

// bearerErrorIs checks a field of the Bearer error fields that the final
// UnauthorizedError, ForbiddenError or InvalidRequestError carries.
func bearerErrorIs(field string, get func(reauth.BearerError) string, want string) func([]call) string {
	return func(calls []call) string {
		var be reauth.BearerError
		if ue, ok := lastError[*reauth.UnauthorizedError](calls); ok {
			be = ue.Bearer
		} else if fe, ok := lastError[*reauth.ForbiddenError](calls); ok {
			be = fe.Bearer
		} else if ie, ok := lastError[*reauth.InvalidRequestError](calls); ok {
			be = ie.Bearer
		}
		if got := get(be); got != want {
			return fmt.Sprintf("Bearer %s is %q, want %q", field, got, want)
		}
		return ""
	}
}

// challengesMalformed checks that the final UnauthorizedError says whether
// the challenges were malformed, and carries no challenge when none parsed.
func challengesMalformed(malformed bool) func([]call) string {
	return func(calls []call) string {
		ue, ok := lastError[*reauth.UnauthorizedError](calls)
		switch {
		case !ok:
			return "no *UnauthorizedError"
		case malformed && ue.ParseErr == nil:
			return "UnauthorizedError.ParseErr is nil for a malformed challenge"
		case !malformed && ue.ParseErr != nil:
			return "UnauthorizedError.ParseErr is set for a well-formed field: " + ue.ParseErr.Error()
		}
		return ""
	}
}

// noChallenges checks that the final UnauthorizedError carries no challenge.
func noChallenges(calls []call) string {
	ue, ok := lastError[*reauth.UnauthorizedError](calls)
	if !ok || len(ue.Challenges) != 0 {
		return "want an UnauthorizedError without challenges"
	}
	return ""
}

// registryErrorIs checks the registry error code of the final ForbiddenError.
func registryErrorIs(code string) func([]call) string {
	return func(calls []call) string {
		fe, ok := lastError[*reauth.ForbiddenError](calls)
		if !ok || len(fe.RegistryErrors()) == 0 || fe.RegistryErrors()[0].Code != code {
			return "want a ForbiddenError with registry error " + code
		}
		return ""
	}
}

// digestAnswered checks that every Digest request used the algorithm and qop.
func digestAnswered(algorithm, qop string) func([]call) string {
	return func(calls []call) string {
		n := 0
		for _, c := range calls {
			for _, req := range c.requests {
				if req.Scheme != "Digest" {
					continue
				}
				n++
				d := parseDigestLog(req.Credential)
				if d.algorithm != algorithm || d.qop != qop {
					return fmt.Sprintf("answered with algorithm=%s qop=%s, want %s %s", d.algorithm, d.qop, algorithm, qop)
				}
			}
		}
		if n == 0 {
			return "no Digest request"
		}
		return ""
	}
}

// digestStrength is the order in which reauth prefers Digest algorithms: the
// strongest algorithm, a -sess variant just below its base (RFC 7616 §3.7 leaves
// the choice to the client's policy).
var digestStrength = []string{"MD5-sess", "MD5", "SHA-256-sess", "SHA-256", "SHA-512-256-sess", "SHA-512-256"}

// digestAnsweredStrongest checks that the Digest answers use the strongest
// algorithm the server's first 401 offered, whichever the mock offers.
func digestAnsweredStrongest(qop string) func([]call) string {
	return func(calls []call) string {
		best := -1
		for _, w := range calls[0].wire {
			for _, ch := range w.challenges {
				if !ch.Is("Digest") {
					continue
				}
				alg := ch.Params["algorithm"]
				if alg == "" {
					alg = "MD5" // RFC 7616 §3.3
				}
				for i, a := range digestStrength {
					if strings.EqualFold(a, alg) {
						best = max(best, i)
					}
				}
			}
			if best >= 0 {
				break // the first response that challenged
			}
		}
		if best < 0 {
			return "the server offered no Digest algorithm reauth knows"
		}
		return digestAnswered(digestStrength[best], qop)(calls)
	}
}

// all runs checks in order and returns the first difference.
func all(checks ...func([]call) string) func([]call) string {
	return func(calls []call) string {
		for _, c := range checks {
			if s := c(calls); s != "" {
				return s
			}
		}
		return ""
	}
}

// digestNote checks that the row's "REAUTH DID" column carries a note, which
// is derived from the server's request log: userhash, nextnonce adopted, …
func digestNote(note string) func([]call) string {
	return func(calls []call) string {
		for _, n := range digestNotes(calls) {
			if n == note {
				return ""
			}
		}
		return "the server's log does not show " + note
	}
}

// sameBody checks that every request of the scenario carried the same,
// non-empty body: a retry resends it intact (DESIGN.md, invariant 5).
func sameBody(calls []call) string {
	var first string
	for _, c := range calls {
		for _, req := range c.requests {
			switch {
			case req.BodyHash == "":
				return "a request arrived without its body"
			case first == "":
				first = req.BodyHash
			case req.BodyHash != first:
				return "a retry carried a different body"
			}
		}
	}
	return ""
}

// retryAfterHonoured checks that the refusals carried Retry-After and that
// the call still succeeded through NewClient.
func retryAfterHonoured(calls []call) string {
	for _, c := range calls {
		for _, w := range c.wire {
			if w.status == http.StatusTooManyRequests || w.status == http.StatusServiceUnavailable {
				if w.retryAfter == "" {
					return "a refusal without Retry-After"
				}
				return ""
			}
		}
	}
	return "no 429 or 503 was seen"
}
