package reauth

import (
	"context"
	"log/slog"
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
	// EventForbidden: a 403 from a bound origin, final.
	EventForbidden
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
	Err    error // for EventGiveUp: why; for EventChallenge: a parse error, if any
}

// event reports e when anyone listens, and costs nothing otherwise. Callers
// pass a credential's scheme, never its value; what a server echoed of the
// credentials sent is redacted from the challenges here.
func (x *exchange) event(e Event) {
	t := x.t
	logging := t.Logger != nil && t.Logger.Enabled(context.Background(), slog.LevelDebug)
	if t.OnEvent == nil && !logging {
		return
	}
	e.Method, e.URL, e.Attempt = x.req.Method, redactURL(x.req.URL), x.attempts
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
