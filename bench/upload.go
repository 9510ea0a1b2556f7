package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/reauth/reauth"
)

// uploadVariant is one client of section 6, run in a child process of its
// own so that its peak RSS is its own.
type uploadVariant struct {
	name     string
	flag     string // the -child value
	baseline bool
	note     string
}

var uploadVariants = []uploadVariant{
	{name: "bare http.Transport, sent once", flag: "bare", baseline: true},
	{name: "bare http.Transport, sent twice (GetBody)", flag: "bare-twice"},
	{name: "reauth Basic: 401, retry", flag: "reauth-basic"},
	{name: "reauth Digest: 401, retry", flag: "reauth-digest"},
	{name: "retryablehttp, io.Reader body", flag: "retryablehttp-reader", note: "for contrast: it reads a body that is a plain io.Reader into memory to replay it"},
}

// patternReader yields n bytes of a fixed pattern without holding them.
type patternReader struct{ left int64 }

var pattern = bytes.Repeat([]byte("reauth-upload-0123456789abcdef\n"), 1024)

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p, pattern)
	n = int(min(int64(n), r.left))
	r.left -= int64(n)
	return n, nil
}

// uploadRequest is a PUT of size bytes whose GetBody makes the same body
// again, as http.NewRequest does for its own body types.
func uploadRequest(url string, size int64) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPut, url, io.NopCloser(&patternReader{left: size}))
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(&patternReader{left: size}), nil }
	return req, nil
}

// runUploadChild is the child process: one upload, then its peak RSS on
// stdout for the parent.
func runUploadChild(cfg *config) error {
	if err := upload(cfg); err != nil {
		return err
	}
	hwm, err := peakRSS()
	if err != nil {
		return err
	}
	fmt.Println(hwm)
	return nil
}

// peakRSS returns this process's peak resident set size in bytes: VmHWM of
// /proc/self/status. getrusage's ru_maxrss will not do for a child of the
// bench: Go starts children with vfork semantics, and Linux carries the
// parent's high-water mark across the exec into the child's ru_maxrss, so
// every child would report at least the parent's peak.
func peakRSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM: %w", err)
			}
			return kib << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

func upload(cfg *config) error {
	url, size := cfg.childURL, cfg.childSize
	origins := []string{url}
	send := func(rt http.RoundTripper, path string) error {
		req, err := uploadRequest(url+path, size)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: rt, Timeout: 5 * time.Minute}).Do(req)
		if err != nil {
			return err
		}
		return finish(resp)
	}
	base := newBase()
	switch cfg.child {
	case "bare":
		return send(base, "/open")
	case "bare-twice":
		if err := send(base, "/open"); err != nil {
			return err
		}
		return send(base, "/open")
	case "reauth-basic":
		return send(&reauth.Transport{Base: base, Credentials: reauth.Basic(benchUser, benchPassword), Origins: origins}, "/basic")
	case "reauth-digest":
		return send(&reauth.Transport{Base: base, Credentials: reauth.Digest(benchUser, benchPassword), Origins: origins}, "/digest")
	case "retryablehttp-reader":
		c := newRetryable(base)
		req, err := retryablehttp.NewRequest(http.MethodPut, url+"/open", &patternReader{left: size})
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		return finish(resp)
	}
	return fmt.Errorf("unknown -child %q", cfg.child)
}

// childRSS runs the bench binary as a child for variant and returns its
// peak RSS in bytes and how many requests the server saw for it.
func childRSS(srv *loopServer, variant string, size int64) (float64, int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	before := srv.requests.Load()
	cmd := exec.Command(exe, "-child", variant, "-child-url", srv.url, "-child-size", fmt.Sprint(size))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("child %s: %v: %s", variant, err, strings.TrimSpace(stderr.String()))
	}
	rss, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("child %s: peak RSS %q: %v", variant, out, err)
	}
	return float64(rss), srv.requests.Load() - before, nil
}

// runUpload is section 6.
func runUpload(cfg *config) ([]*table, []verdict, error) {
	srv, err := startLoopServer()
	if err != nil {
		return nil, nil, err
	}
	defer srv.close()
	size := int64(cfg.uploadMiB) << 20
	pairs := min(cfg.benchPairs, 3) // peak RSS varies little; each run uploads the whole body

	t := &table{header: []string{"client", "peak RSS vs baseline", "peak RSS", "baseline peak RSS", "requests"}}
	t.note("A PUT of %d MiB with GetBody, each in a child process of its own (the bench binary re-executed); peak RSS is the child's VmHWM, median over %d paired runs.", cfg.uploadMiB, pairs)
	t.note("The server reads every body to its end before it answers, so a challenged upload is sent whole twice. Target for reauth: peak RSS within 1.10× of sending once (a copy of the body would add %d MiB).", cfg.uploadMiB)
	var baseline uploadVariant
	for _, v := range uploadVariants {
		if v.baseline {
			baseline = v
		}
	}
	var verdicts []verdict
	for _, v := range uploadVariants {
		if v.baseline {
			continue
		}
		var reqs int64
		as, bs, err := paired(pairs,
			func() (float64, error) { rss, _, err := childRSS(srv, baseline.flag, size); return rss, err },
			func() (float64, error) {
				rss, n, err := childRSS(srv, v.flag, size)
				reqs = n
				return rss, err
			})
		if err != nil {
			return nil, nil, err
		}
		r := median(ratios(as, bs))
		if v.note != "" {
			t.note("%s: %s.", v.name, v.note)
		}
		t.add(v.name, fmtRatio(r), fmtMiB(median(bs)), fmtMiB(median(as)), fmt.Sprint(reqs))
		if strings.HasPrefix(v.flag, "reauth") {
			verdicts = append(verdicts, verdict{
				target: fmt.Sprintf("%d MiB upload with a retry, %s: peak RSS near sending once (≤ 1.10×)", cfg.uploadMiB, strings.TrimPrefix(v.flag, "reauth-")),
				result: fmt.Sprintf("%s (%s vs %s)", fmtRatio(r), fmtMiB(median(bs)), fmtMiB(median(as))),
				met:    r <= 1.10,
			})
		}
	}
	return []*table{t}, verdicts, nil
}

func fmtMiB(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
