package main

import (
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"

	cdauth "github.com/containerd/containerd/v2/core/remotes/docker/auth"
	dockerchallenge "github.com/docker/distribution/registry/client/auth/challenge"
	"github.com/icholy/digest"
	"github.com/reauth/reauth"
)

// The parsers compared, with the module versions of go.mod.
const (
	parserReauth     = "reauth"
	parserDocker     = "docker/distribution"
	parserContainerd = "containerd"
	parserIcholy     = "icholy/digest"
)

var otherParsers = []string{parserDocker, parserContainerd, parserIcholy}

// challengeOf is a parsed challenge in a form every parser's result can be
// brought to: scheme lower-cased, token68, auth-params.
type challengeOf struct {
	scheme  string
	token68 string
	params  map[string]string
}

// parseWith runs one parser on the WWW-Authenticate field values of a 401.
// A parser that only knows some schemes sees only those (applicable says
// which); icholy/digest answers with the first Digest challenge it can use.
func parseWith(parser string, fields []string) (got []challengeOf, err error) {
	resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": fields}}
	switch parser {
	case parserReauth:
		chs, err := reauth.ResponseChallenges(resp)
		for _, c := range chs {
			got = append(got, challengeOf{scheme: strings.ToLower(c.Scheme), token68: c.Token68, params: c.Params})
		}
		return got, err
	case parserDocker:
		for _, c := range dockerchallenge.ResponseChallenges(resp) {
			got = append(got, challengeOf{scheme: strings.ToLower(c.Scheme), params: c.Parameters})
		}
		return got, nil
	case parserContainerd:
		names := map[cdauth.AuthenticationScheme]string{cdauth.BasicAuth: "basic", cdauth.DigestAuth: "digest", cdauth.BearerAuth: "bearer"}
		for _, c := range cdauth.ParseAuthHeader(resp.Header) {
			got = append(got, challengeOf{scheme: names[c.Scheme], params: c.Parameters})
		}
		return got, nil
	case parserIcholy:
		c, err := digest.FindChallenge(resp.Header)
		if err != nil {
			return nil, err
		}
		p := map[string]string{"realm": c.Realm, "nonce": c.Nonce}
		set := func(k, v string) {
			if v != "" {
				p[k] = v
			}
		}
		set("opaque", c.Opaque)
		set("algorithm", c.Algorithm)
		set("domain", strings.Join(c.Domain, " "))
		set("charset", c.Charset)
		if len(c.QOP) > 0 {
			// The options as SupportsQOP compares them.
			p["qop"] = fmt.Sprintf("%q", c.QOP)
		}
		if c.Stale {
			p["stale"] = "true"
		}
		if c.Userhash {
			p["userhash"] = "true"
		}
		return []challengeOf{{scheme: "digest", params: p}}, nil
	}
	panic("unknown parser " + parser)
}

// applicable narrows the expected challenges to what parser claims to
// handle: containerd only Basic, Digest and Bearer (sorted Bearer first);
// icholy/digest only the first Digest challenge, and only the parameters
// its Challenge has.
func applicable(parser string, want []challengeOf) []challengeOf {
	switch parser {
	case parserContainerd:
		var out []challengeOf
		for _, s := range []string{"bearer", "digest", "basic"} {
			for _, c := range want {
				if c.scheme == s {
					out = append(out, c)
				}
			}
		}
		return out
	case parserIcholy:
		for _, c := range want {
			if c.scheme != "digest" {
				continue
			}
			p := map[string]string{}
			for _, k := range []string{"realm", "nonce", "opaque", "algorithm", "domain", "charset", "qop", "stale", "userhash"} {
				if v, ok := c.params[k]; ok {
					p[k] = v
				}
			}
			if q, ok := p["qop"]; ok {
				// What a correct reading of qop-options gives.
				opts := strings.Split(q, ",")
				for i := range opts {
					opts[i] = strings.TrimSpace(opts[i])
				}
				p["qop"] = fmt.Sprintf("%q", opts)
			}
			if strings.EqualFold(p["stale"], "true") {
				p["stale"] = "true"
			} else {
				delete(p, "stale")
			}
			return []challengeOf{{scheme: "digest", params: p}}
		}
		return nil
	}
	return want
}

// parseCase is one input of the correctness table. want is nil for
// malformed input, which a parser should report rather than return a
// partial result as if nothing were wrong.
type parseCase struct {
	name   string
	fields []string
	want   []challengeOf
}

func ch(scheme string, kv ...string) challengeOf {
	c := challengeOf{scheme: scheme, params: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		c.params[kv[i]] = kv[i+1]
	}
	return c
}

var (
	bearerRegistry = `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"`
	basicRealm     = `Basic realm="Registry Realm", charset="UTF-8"`
	// RFC 7616 §3.9.1, the SHA-256 challenge.
	digestRFC = `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, ` +
		`nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`
	digestRFCMD5 = `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, ` +
		`nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`
)

func digestRFCParams(alg string) challengeOf {
	return ch("digest", "realm", "http-auth@example.org", "qop", "auth, auth-int", "algorithm", alg,
		"nonce", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
}

func parseCases() []parseCase {
	return []parseCase{
		{"Bearer, registry token realm", []string{bearerRegistry},
			[]challengeOf{ch("bearer", "realm", "https://auth.docker.io/token", "service", "registry.docker.io", "scope", "repository:library/ubuntu:pull")}},
		{"Basic with charset", []string{basicRealm}, []challengeOf{ch("basic", "realm", "Registry Realm", "charset", "UTF-8")}},
		{"Digest, RFC 7616 §3.9.1 (two field lines)", []string{digestRFC, digestRFCMD5}, []challengeOf{digestRFCParams("SHA-256"), digestRFCParams("MD5")}},
		{"two challenges in one field line (RFC 9110 §11.6.1)", []string{`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`},
			[]challengeOf{ch("newauth", "realm", "apps", "type", "1", "title", `Login to "apps"`), ch("basic", "realm", "simple")}},
		{"Bearer and Digest in one field line", []string{`Bearer realm="api", Digest realm="api", nonce="abc", qop="auth"`},
			[]challengeOf{ch("bearer", "realm", "api"), ch("digest", "realm", "api", "nonce", "abc", "qop", "auth")}},
		{"token68 (Negotiate)", []string{`Negotiate YIIFyQYGKwYBBQUCoIIFvTCC==`}, []challengeOf{{scheme: "negotiate", token68: "YIIFyQYGKwYBBQUCoIIFvTCC==", params: map[string]string{}}}},
		{"escaped quotes in a value", []string{`Bearer realm="api", error="invalid_token", error_description="the token \"t1\" expired"`},
			[]challengeOf{ch("bearer", "realm", "api", "error", "invalid_token", "error_description", `the token "t1" expired`)}},
		{"empty quoted value", []string{`Bearer realm="", scope="repository:a/b:pull"`}, []challengeOf{ch("bearer", "realm", "", "scope", "repository:a/b:pull")}},
		{"whitespace around '=' (BWS)", []string{`Basic realm = "simple"`}, []challengeOf{ch("basic", "realm", "simple")}},
		{"upper-case parameter names", []string{`Digest Realm="r", Nonce="n", QOP="auth"`}, []challengeOf{ch("digest", "realm", "r", "nonce", "n", "qop", "auth")}},
		{"empty list element", []string{`Digest realm="r", , nonce="n", qop="auth"`}, []challengeOf{ch("digest", "realm", "r", "nonce", "n", "qop", "auth")}},
		{"tab as whitespace", []string{"Digest realm=\"r\",\tnonce=\"n\",\tqop=\"auth\""}, []challengeOf{ch("digest", "realm", "r", "nonce", "n", "qop", "auth")}},
		{"qop-options auth-int first", []string{`Digest realm="r", nonce="n", qop="auth-int, auth"`}, []challengeOf{ch("digest", "realm", "r", "nonce", "n", "qop", "auth-int, auth")}},
		{"extension auth-param name with '_'", []string{`Digest realm="r", nonce="n", qop="auth", x_trace=1`}, []challengeOf{ch("digest", "realm", "r", "nonce", "n", "qop", "auth", "x_trace", "1")}},
		{"malformed: unterminated quoted-string", []string{`Digest realm="r", qop="auth", nonce="n`}, nil},
		{"malformed: auth-param without '='", []string{`Digest realm="r", qop, nonce="n"`}, nil},
	}
}

// judge compares a parser's result with the expected one and says what is
// wrong, in a few words; "ok" when nothing is.
func judge(parser string, c parseCase) string {
	got, err := parseWith(parser, c.fields)
	if c.want == nil {
		if err != nil {
			return "ok (error)"
		}
		if parser == parserContainerd || parser == parserDocker {
			return "wrong: accepted silently (no error API)"
		}
		return "wrong: accepted silently"
	}
	want := applicable(parser, c.want)
	if len(want) == 0 {
		return "n/a"
	}
	if err != nil {
		return "wrong: error on valid input"
	}
	var problems []string
	for i, w := range want {
		if i >= len(got) {
			problems = append(problems, "lost "+w.scheme+" challenge")
			continue
		}
		g := got[i]
		if g.scheme != w.scheme {
			problems = append(problems, fmt.Sprintf("scheme %q for %q", g.scheme, w.scheme))
			continue
		}
		if g.token68 != w.token68 {
			problems = append(problems, "lost token68")
		}
		for _, k := range slices.Sorted(maps.Keys(w.params)) {
			gv, ok := g.params[k]
			switch {
			case !ok:
				problems = append(problems, "lost "+k)
			case gv != w.params[k] && parser == parserIcholy && k == "qop":
				problems = append(problems, "qop options "+gv)
			case gv != w.params[k]:
				problems = append(problems, k+" "+quoteShort(gv))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(g.params)) {
			if _, ok := w.params[k]; !ok {
				problems = append(problems, "extra param "+quoteShort(k))
			}
		}
	}
	if len(got) > len(want) {
		problems = append(problems, fmt.Sprintf("%d extra challenges", len(got)-len(want)))
	}
	if len(problems) == 0 {
		return "ok"
	}
	if len(problems) > 2 {
		problems = append(problems[:2], "…")
	}
	return "wrong: " + strings.Join(problems, ", ")
}

func quoteShort(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%q…", s[:24])
	}
	return fmt.Sprintf("%q", s)
}

// parseBench is one input of the speed comparison, with the parsers that
// support it.
type parseBench struct {
	name    string
	fields  []string
	parsers []string
}

func parseBenches() []parseBench {
	return []parseBench{
		{"Bearer, registry", []string{bearerRegistry}, []string{parserDocker, parserContainerd}},
		{"Basic", []string{basicRealm}, []string{parserDocker, parserContainerd}},
		{"Digest, RFC 7616 SHA-256", []string{digestRFC}, []string{parserDocker, parserContainerd, parserIcholy}},
	}
}

// parseFunc returns a call of parser on fields, made once per iteration.
func parseFunc(parser string, fields []string) func() {
	resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": fields}}
	switch parser {
	case parserReauth:
		return func() {
			if _, err := reauth.ResponseChallenges(resp); err != nil {
				panic(err)
			}
		}
	case parserDocker:
		return func() { _ = dockerchallenge.ResponseChallenges(resp) }
	case parserContainerd:
		return func() { _ = cdauth.ParseAuthHeader(resp.Header) }
	case parserIcholy:
		return func() {
			if _, err := digest.FindChallenge(resp.Header); err != nil {
				panic(err)
			}
		}
	}
	panic("unknown parser " + parser)
}

// resultAllocs counts the allocations of building reauth's result for
// fields by hand: the slice and a map per challenge with parameters. A
// parser that allocates nothing else allocates exactly this.
func resultAllocs(fields []string) float64 {
	chs, _ := reauth.ParseChallenges(fields...)
	return testing.AllocsPerRun(200, func() {
		out := make([]reauth.Challenge, len(chs))
		for i, c := range chs {
			out[i] = reauth.Challenge{Scheme: c.Scheme, Token68: c.Token68}
			if c.Params != nil {
				m := make(map[string]string, 4)
				for k, v := range c.Params {
					m[k] = v
				}
				out[i].Params = m
			}
		}
		runtime.KeepAlive(out)
	})
}

func benchFunc(f func()) func() (testing.BenchmarkResult, error) {
	return func() (testing.BenchmarkResult, error) {
		return testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
		}), nil
	}
}

// pairedBench runs two benchmarks A B A B … and returns the median ns/op
// ratio b/a and each side's median figures.
func pairedBench(n int, a, b func() (testing.BenchmarkResult, error)) (ratio float64, ra, rb benchFigures, err error) {
	var as, bs []float64
	wrap := func(f func() (testing.BenchmarkResult, error), fig *benchFigures, xs *[]float64) func() (float64, error) {
		return func() (float64, error) {
			r, err := f()
			if err != nil {
				return 0, err
			}
			ns := float64(r.T.Nanoseconds()) / float64(r.N)
			fig.ns = append(fig.ns, ns)
			fig.allocs = append(fig.allocs, float64(r.AllocsPerOp()))
			fig.bytes = append(fig.bytes, float64(r.AllocedBytesPerOp()))
			*xs = append(*xs, ns)
			return ns, nil
		}
	}
	if _, _, err = paired(n, wrap(a, &ra, &as), wrap(b, &rb, &bs)); err != nil {
		return 0, ra, rb, err
	}
	return median(ratios(as, bs)), ra, rb, nil
}

type benchFigures struct{ ns, allocs, bytes []float64 }

func (f benchFigures) summary() string {
	return fmt.Sprintf("%s, %.0f allocs, %.0f B", fmtNs(median(f.ns)), median(f.allocs), median(f.bytes))
}

// runParsers is section 5.
func runParsers(cfg *config) ([]*table, []verdict, error) {
	var verdicts []verdict

	speed := &table{title: "Challenge parsing: the WWW-Authenticate fields of a 401 response to challenges",
		header: []string{"input", "other parser", "reauth time vs other", "reauth", "other", "reauth allocs beyond the result"}}
	speed.note("reauth.ResponseChallenges vs docker/distribution challenge.ResponseChallenges, containerd auth.ParseAuthHeader, icholy/digest FindChallenge; each on a response with the input.")
	speed.note("Median over %d paired testing.Benchmark runs. Target: faster than each (< 1.000×), no allocation beyond the result (the slice and a map per challenge).", cfg.benchPairs)
	for _, pb := range parseBenches() {
		own := resultAllocs(pb.fields)
		for _, other := range pb.parsers {
			ratio, ra, rb, err := pairedBench(cfg.benchPairs, benchFunc(parseFunc(other, pb.fields)), benchFunc(parseFunc(parserReauth, pb.fields)))
			if err != nil {
				return nil, nil, err
			}
			extra := median(rb.allocs) - own
			speed.add(pb.name, other, fmtRatio(ratio), rb.summary(), ra.summary(), fmt.Sprintf("%.0f", extra))
			verdicts = append(verdicts, verdict{
				target: fmt.Sprintf("parse %s: faster than %s, no allocation beyond the result", pb.name, other),
				result: fmt.Sprintf("%s, %.0f extra allocs", fmtRatio(ratio), extra),
				met:    ratio < 1 && extra <= 0,
			})
		}
	}

	digestT, dv, err := digestComparison(cfg)
	if err != nil {
		return nil, nil, err
	}
	verdicts = append(verdicts, dv...)

	correct := &table{title: "Which inputs each parser gets wrong",
		header: append([]string{"input", parserReauth}, otherParsers...)}
	correct.note("n/a: the parser does not handle that scheme (containerd: Basic, Digest, Bearer only; icholy/digest: Digest only, the first one it can answer).")
	correct.note("docker/distribution and containerd return no error, so malformed input cannot be reported.")
	for _, c := range parseCases() {
		row := []string{c.name, judge(parserReauth, c)}
		for _, p := range otherParsers {
			row = append(row, judge(p, c))
		}
		correct.add(row...)
	}
	return []*table{speed, digestT, correct}, verdicts, nil
}

// digestComparison compares reauth.DigestAuthorization with icholy/digest's
// Digest and Credentials.String, the whole answer to a parsed challenge.
func digestComparison(cfg *config) (*table, []verdict, error) {
	t := &table{title: "Digest computation: a parsed challenge to the Authorization field value",
		header: []string{"algorithm", "other", "reauth time vs other", "reauth", "other", "reauth allocs beyond the result"}}
	t.note("reauth.DigestAuthorization vs icholy/digest Digest(…).String(), same user, URI, cnonce and nonce count; the response values are checked to agree. The result is the one string.")
	var verdicts []verdict
	const (
		user, pass = "Mufasa", "Circle of Life"
		uri        = "/dir/index.html"
		cnonce     = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	)
	for _, alg := range []string{"MD5", "SHA-256", "SHA-512-256"} {
		field := strings.Replace(digestRFC, "SHA-256", alg, 1)
		chs, err := reauth.ParseChallenges(field)
		if err != nil {
			return nil, nil, err
		}
		ic, err := digest.ParseChallenge(field)
		if err != nil {
			return nil, nil, err
		}
		in := reauth.DigestInput{Username: user, Password: pass, Method: "GET", URI: uri, Cnonce: cnonce, Count: 1}
		opts := digest.Options{Method: "GET", URI: uri, Username: user, Password: pass, Cnonce: cnonce, Count: 1}
		ours, err := reauth.DigestAuthorization(chs[0], in)
		if err != nil {
			return nil, nil, err
		}
		cred, err := digest.Digest(ic, opts)
		if err != nil {
			return nil, nil, err
		}
		parsed, err := reauth.ParseChallenges(ours)
		if err != nil || parsed[0].Params["response"] != cred.Response {
			return nil, nil, fmt.Errorf("digest %s: reauth and icholy/digest disagree on the response", alg)
		}
		a := benchFunc(func() {
			c, err := digest.Digest(ic, opts)
			if err != nil {
				panic(err)
			}
			runtime.KeepAlive(c.String())
		})
		b := benchFunc(func() {
			s, err := reauth.DigestAuthorization(chs[0], in)
			if err != nil {
				panic(err)
			}
			runtime.KeepAlive(s)
		})
		ratio, ra, rb, err := pairedBench(cfg.benchPairs, a, b)
		if err != nil {
			return nil, nil, err
		}
		extra := median(rb.allocs) - 1
		t.add(alg, parserIcholy, fmtRatio(ratio), rb.summary(), ra.summary(), fmt.Sprintf("%.0f", extra))
		verdicts = append(verdicts, verdict{
			target: fmt.Sprintf("Digest %s: faster than icholy/digest, no allocation beyond the result", alg),
			result: fmt.Sprintf("%s, %.0f extra allocs", fmtRatio(ratio), extra),
			met:    ratio < 1 && extra <= 0,
		})
	}
	return t, verdicts, nil
}
