package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/reauth/reauth"
)

// The columns of the table. Nothing here shows a secret: credentials appear
// as the mock server's redacted log entries, reduced to their scheme and
// Digest parameters.

// asked is the SERVER ASKED column: every refusal the server sent, once.
func asked(r result) string {
	if r.pending {
		return "-"
	}
	var seen []string
	last := 0
	for _, c := range r.calls {
		for _, w := range c.wire {
			last = w.status
			if w.status < 300 {
				continue
			}
			if s := wireSummary(w); !slices.Contains(seen, s) {
				seen = append(seen, s)
			}
		}
	}
	if len(seen) == 0 {
		if last == 0 {
			return "-"
		}
		return fmt.Sprintf("nothing (%d)", last)
	}
	return strings.Join(seen, " / ")
}

func wireSummary(w wireResponse) string {
	s := strconv.Itoa(w.status)
	var pe *reauth.ParseError
	if errors.As(w.parseErr, &pe) {
		s += " malformed (" + pe.Reason + ")"
	}
	switch {
	case len(w.challenges) > 0:
		if pe != nil {
			s += " then"
		}
		s += " " + challengeSummary(w.challenges)
	case pe == nil && (w.status == http.StatusUnauthorized || w.status == http.StatusProxyAuthRequired):
		s += " no challenge"
	}
	if w.retryAfter != "" {
		s += " Retry-After: " + w.retryAfter
	}
	return s
}

// challengeSummary names each challenge by its scheme and the parameters
// that decide what a client does; Digest challenges that differ only in
// algorithm are shown as one.
func challengeSummary(chs []reauth.Challenge) string {
	var parts, algs []string
	digestAt := -1
	for _, c := range chs {
		if c.Is("Digest") {
			alg := c.Params["algorithm"]
			if alg == "" {
				alg = "MD5" // RFC 7616 §3.3
			}
			algs = append(algs, alg)
			if digestAt < 0 {
				digestAt = len(parts)
				parts = append(parts, digestSummary(c))
			}
			continue
		}
		s := c.Scheme
		if v := c.Params["error"]; v != "" {
			s += " " + v
		}
		for _, name := range []string{"scope", "acr_values", "max_age"} {
			if v, ok := c.Params[name]; ok {
				s += " " + name + "=" + v
			}
		}
		parts = append(parts, s)
	}
	if digestAt >= 0 {
		parts[digestAt] = strings.Replace(parts[digestAt], "Digest", "Digest "+strings.Join(algs, "|"), 1)
	}
	return strings.Join(parts, ", ")
}

func digestSummary(c reauth.Challenge) string {
	s := "Digest qop=" + strings.ReplaceAll(c.Params["qop"], " ", "")
	if strings.EqualFold(c.Params["userhash"], "true") {
		s += " userhash"
	}
	if strings.EqualFold(c.Params["stale"], "true") {
		s += " stale"
	}
	return s
}

// did is the REAUTH DID column: each request as the server logged it
// (credentials scheme and status), calls separated by "|", and what the
// log shows of Digest: algorithm, qop, nonce handling.
func did(r result) string {
	if r.pending {
		return "-"
	}
	calls := make([]string, len(r.calls))
	for i, c := range r.calls {
		reqs := make([]string, len(c.requests))
		for j, req := range c.requests {
			cred := req.Scheme
			if cred == "" {
				cred = "none"
			}
			reqs[j] = fmt.Sprintf("%s %d", cred, req.Status)
		}
		calls[i] = strings.Join(reqs, ", ")
		if len(reqs) == 0 {
			calls[i] = "no request"
		}
	}
	s := strings.Join(calls, " | ")
	var notes []string
	if d, ok := firstDigest(r.calls); ok {
		notes = append(notes, d.algorithm+" "+d.qop)
	}
	notes = append(notes, digestNotes(r.calls)...)
	if len(r.calls) > 0 && len(r.calls[0].requests) > 1 && sameBody(r.calls) == "" {
		notes = append(notes, "same body on retry")
	}
	if len(notes) > 0 {
		s += " [" + strings.Join(notes, ", ") + "]"
	}
	return s
}

// outcome is each call's status or error, in full (-v).
func outcome(r result) string { return outcomeWith(r, errSummary) }

// shortOutcome is outcome with each error reduced to its status and
// sentinels, for the default report.
func shortOutcome(r result) string { return outcomeWith(r, errClass) }

func outcomeWith(r result, summary func(error) string) string {
	if r.pending {
		return "needs " + r.sc.needs
	}
	out := make([]string, len(r.calls))
	for i, c := range r.calls {
		if c.err != nil {
			out[i] = summary(c.err)
		} else {
			out[i] = strconv.Itoa(c.status)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	if !slices.ContainsFunc(out, func(o string) bool { return o != out[0] }) {
		return out[0] // every call ended the same
	}
	return strings.Join(out, " | ")
}

// digestLog is a Digest credential as the mock server's log shows it:
// Digest username="alice" algorithm=SHA-256 qop=auth nc=00000002 nonce=#5e6f7a8b #1a2b3c4d
type digestLog struct {
	username, algorithm, qop, nc, nonce string
}

func parseDigestLog(credential string) digestLog {
	param := func(name string) string {
		_, rest, ok := strings.Cut(credential, " "+name+"=")
		if !ok {
			return ""
		}
		v, _, _ := strings.Cut(rest, " ")
		return v
	}
	var d digestLog
	if _, rest, ok := strings.Cut(credential, ` username="`); ok {
		d.username, _, _ = strings.Cut(rest, `"`)
	}
	d.algorithm, d.qop, d.nc, d.nonce = param("algorithm"), param("qop"), param("nc"), param("nonce")
	return d
}

func firstDigest(calls []call) (digestLog, bool) {
	for _, c := range calls {
		for _, req := range c.requests {
			if req.Scheme == "Digest" {
				return parseDigestLog(req.Credential), true
			}
		}
	}
	return digestLog{}, false
}

// digestNotes says what the server's log shows of how reauth handled Digest
// nonces: a nonce reused up front, a nextnonce adopted, a stale nonce
// replaced, a hashed user name.
func digestNotes(calls []call) []string {
	var notes []string
	add := func(n string) {
		if !slices.Contains(notes, n) {
			notes = append(notes, n)
		}
	}
	var prev *digestLog
	prevStatus := 0
	for _, c := range calls {
		for _, req := range c.requests {
			if req.Scheme != "Digest" {
				prev = nil
				continue
			}
			d := parseDigestLog(req.Credential)
			if strings.HasPrefix(d.username, "userhash:") {
				add("userhash")
			}
			if prev != nil && prevStatus == http.StatusOK {
				if d.nonce == prev.nonce {
					add("nonce reused")
				} else {
					add("nextnonce adopted")
				}
			}
			prev, prevStatus = &d, req.Status
		}
		for _, w := range c.wire {
			for _, ch := range w.challenges {
				if ch.Is("Digest") && strings.EqualFold(ch.Params["stale"], "true") && c.err == nil {
					add("stale nonce replaced")
				}
			}
		}
	}
	return notes
}
