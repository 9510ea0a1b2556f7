package reauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// EventKind says what kind of auth decision an [Event] reports.
type EventKind int

// The auth decisions a Transport reports.
const (
	// EventChallenge: a 401 or 407 arrived; Challenges holds what it asked.
	EventChallenge EventKind = iota + 1
	// EventRetry: the request is sent again with new credentials, whose
	// auth-scheme is Scheme.
	EventRetry
	// EventGiveUp: a 401, 407 or 400 is final; Err says why.
	EventGiveUp
	// EventForbidden: a 403 from a bound origin, or on a request that
	// carried proxy credentials, final; Proxy says whose credentials it
	// answered.
	EventForbidden
	// EventUnanswered: a 401 or 407 that reauth saw and did not answer: the
	// origin is not bound (Err wraps ErrUnboundOrigin and names the listed
	// origins close to it), there are no credentials for it, or the 407
	// did not come from a proxy the request went through. Err says which.
	EventUnanswered
	// EventStoreFault: the OAuth2Options.Store failed (unreachable, slow,
	// or it held a corrupt or foreign entry); the credentials went on with
	// their own cache. Err says what failed, never a token.
	EventStoreFault
)

func (k EventKind) String() string {
	switch k {
	case EventChallenge:
		return "challenge"
	case EventRetry:
		return "retry"
	case EventGiveUp:
		return "give-up"
	case EventForbidden:
		return "forbidden"
	case EventUnanswered:
		return "unanswered"
	case EventStoreFault:
		return "store-fault"
	}
	return "unknown"
}

// Event is one auth decision of a [Transport], passed to Transport.OnEvent
// and logged at debug level to Transport.Logger.
type Event struct {
	Kind       EventKind   // what was decided
	Method     string      // the request's method
	URL        string      // without userinfo, query or fragment
	StatusCode int         // the status that led to the decision
	Proxy      bool        // the decision concerns proxy authentication (407)
	Attempt    int         // requests sent so far for this call
	Challenges []Challenge // for EventChallenge
	// Scheme is the auth-scheme of the credentials sent (EventChallenge:
	// those refused; EventRetry: those about to be sent). Never the value.
	Scheme string
	// Err is for EventGiveUp and EventUnanswered: why; for EventChallenge:
	// a parse error, if any.
	Err error
}

// listening reports whether t reports events to anyone.
func (t *Transport) listening() bool {
	return t.OnEvent != nil || t.Logger != nil && t.Logger.Enabled(context.Background(), slog.LevelDebug)
}

// unanswered reports a 401 or 407 to a request that reauth passed through
// without authenticating it, and says why. It costs nothing when no one
// listens.
func (t *Transport) unanswered(req *http.Request, via *url.URL, resp *http.Response) {
	if !t.listening() {
		return
	}
	x := &exchange{t: t, req: req, via: via, attempts: 1}
	x.event(Event{Kind: EventUnanswered, StatusCode: resp.StatusCode, Proxy: resp.StatusCode == http.StatusProxyAuthRequired, Err: x.whyUnanswered(resp.StatusCode)})
}

// whyUnanswered says why reauth did not answer a 401 or 407, in words that
// name the fix.
func (x *exchange) whyUnanswered(status int) error {
	t, u := x.t, x.req.URL
	if status == http.StatusProxyAuthRequired {
		switch {
		case t.ProxyCredentials == nil:
			return fmt.Errorf("%w: Transport.ProxyCredentials is nil; set them to answer a proxy", ErrNoCredentials)
		case u.Scheme != "http":
			return errors.New("reauth: a 407 inside an https tunnel comes from the origin, not from a proxy; proxy credentials go on the CONNECT only")
		case x.via == nil:
			return errors.New("reauth: the request went through no proxy (Transport.Proxy, or Base's, chose none), so the 407 did not come from one")
		}
		return fmt.Errorf("reauth: the request went through the %s proxy %s, where Proxy-Authorization would reach the origin", x.via.Scheme, redactURL(x.via))
	}
	switch {
	case t.Keychain != nil && !x.t.cfg.origins.contains(u):
		return fmt.Errorf("%w: Transport.Keychain has none for this origin", ErrNoCredentials)
	case t.Credentials == nil:
		return fmt.Errorf("%w: Transport.Credentials is nil; set Credentials and Origins to answer it", ErrNoCredentials)
	case !x.t.cfg.origins.contains(u):
		return x.t.cfg.origins.unbound(u)
	}
	return fmt.Errorf("reauth: the request goes through the forward proxy %s to Host %q, another origin than its URL's", redactURL(x.via), x.req.Host)
}

// event reports e when anyone listens, and costs nothing otherwise. Callers
// pass a credential's scheme, never its value; what a server echoed of the
// credentials sent is redacted from the challenges here.
func (x *exchange) event(e Event) {
	t := x.t
	if !t.listening() {
		return
	}
	logging := t.Logger != nil && t.Logger.Enabled(context.Background(), slog.LevelDebug)
	e.Method, e.URL, e.Attempt = x.req.Method, redactURL(x.req.URL), int(x.attempts)
	e.Challenges = redactChallenges(e.Challenges, x.secrets())
	if t.OnEvent != nil {
		t.OnEvent(e)
	}
	if logging {
		attrs := []slog.Attr{
			slog.String("method", e.Method), slog.String("url", e.URL),
			slog.Int("status", e.StatusCode), slog.Bool("proxy", e.Proxy), slog.Int("attempt", e.Attempt),
		}
		if len(e.Challenges) > 0 {
			schemes := make([]string, len(e.Challenges))
			for i, c := range e.Challenges {
				schemes[i] = c.Scheme
			}
			attrs = append(attrs, slog.String("challenges", strings.Join(schemes, ",")))
		}
		if e.Scheme != "" {
			attrs = append(attrs, slog.String("scheme", e.Scheme))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("reason", e.Err.Error()))
		}
		t.Logger.LogAttrs(x.req.Context(), slog.LevelDebug, "reauth: "+e.Kind.String(), attrs...)
	}
}
