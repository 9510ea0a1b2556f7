package reauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingServer answers 200 to everything and keeps the Authorization of
// the last request.
func recordingServer(t *testing.T) (*httptest.Server, *atomic.Pointer[string]) {
	t.Helper()
	var seen atomic.Pointer[string]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		seen.Store(&v)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

// sendWith sends a GET to url through a Transport bound to url's origin with
// c (no credentials when c is nil) and returns the Authorization the server
// saw.
func sendWith(t *testing.T, url string, c Credentials, seen *atomic.Pointer[string]) string {
	t.Helper()
	var rt http.RoundTripper = http.DefaultTransport
	if c != nil {
		rt = &Transport{Credentials: c, Origins: []string{url}}
	}
	resp, err := (&http.Client{Transport: rt}).Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return *seen.Load()
}

type fixedKeychain struct {
	c     Credentials
	err   error
	calls atomic.Int32
}

func (f *fixedKeychain) Resolve(context.Context, string) (Credentials, error) {
	f.calls.Add(1)
	return f.c, f.err
}

func TestKeychainsFirstThatResolves(t *testing.T) {
	a, b := Basic("a", "1"), Basic("b", "2")
	none := &fixedKeychain{}
	first, second := &fixedKeychain{c: a}, &fixedKeychain{c: b}
	c, err := Keychains(nil, none, first, second).Resolve(context.Background(), "https://h")
	require.NoError(t, err)
	assert.Same(t, a, c)
	assert.Zero(t, second.calls.Load(), "keychains after the one that resolved are not asked")

	c, err = Keychains(none, none).Resolve(context.Background(), "https://h")
	assert.NoError(t, err, "nothing for an origin is not an error")
	assert.Nil(t, c)
}

func TestKeychainsErrorNamesTheKeychain(t *testing.T) {
	broken := &fixedKeychain{err: errors.New("reauth: helper failed")}
	later := &fixedKeychain{c: Basic("b", "2")}
	_, err := Keychains(&fixedKeychain{}, broken, later).Resolve(context.Background(), "https://h")
	require.Error(t, err)
	assert.ErrorIs(t, err, broken.err)
	assert.Equal(t, "reauth: Keychains[1] (*reauth.fixedKeychain): helper failed", err.Error())
	assert.Zero(t, later.calls.Load(), "an error ends the search")
}

func TestKeychainOriginMustBeAnOrigin(t *testing.T) {
	kc, err := NetrcKeychain(writeNetrc(t, ""))
	require.NoError(t, err)
	for _, o := range []string{"ftp://h", "https://u:secret@h", "https://h/path", "h", "https://h?q"} {
		_, err := kc.Resolve(context.Background(), o)
		assert.Error(t, err, o)
		if err != nil {
			assert.NotContains(t, err.Error(), "secret")
		}
	}
}

// countingKeychain resolves a new Basic for each call, after release is
// closed.
type countingKeychain struct {
	calls   atomic.Int32
	release chan struct{}
	fail    atomic.Bool
}

func (k *countingKeychain) Resolve(ctx context.Context, origin string) (Credentials, error) {
	n := k.calls.Add(1)
	if k.release != nil {
		<-k.release
	}
	if k.fail.Load() {
		return nil, errors.New("reauth: helper failed")
	}
	return Basic(origin, fmt.Sprint(n)), nil
}

func TestOriginCacheResolvesOncePerOrigin(t *testing.T) {
	kc := &countingKeychain{release: make(chan struct{})}
	oc := newOriginCache(kc, 0)
	var wg sync.WaitGroup
	got := make([]Credentials, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _, _ = oc.get(context.Background(), "https://a")
		}()
	}
	close(kc.release)
	wg.Wait()
	assert.Equal(t, int32(1), kc.calls.Load(), "concurrent requests share one resolution")
	for _, c := range got {
		assert.Same(t, got[0], c)
	}
	other, _, err := oc.get(context.Background(), "https://b")
	require.NoError(t, err)
	assert.NotSame(t, got[0], other, "each origin has its own")
}

func TestOriginCacheForgetsAfterRefusal(t *testing.T) {
	kc := &countingKeychain{}
	oc := newOriginCache(kc, 0)
	c1, id1, err := oc.get(context.Background(), "https://a")
	require.NoError(t, err)
	oc.forget("https://a", id1)
	c2, id2, err := oc.get(context.Background(), "https://a")
	require.NoError(t, err)
	assert.NotSame(t, c1, c2, "resolved again after a refusal")

	oc.forget("https://a", id1) // a late refusal of the old resolution
	c3, _, err := oc.get(context.Background(), "https://a")
	require.NoError(t, err)
	assert.Same(t, c2, c3, "a newer resolution is kept")
	_ = id2
	assert.Equal(t, int32(2), kc.calls.Load())
}

func TestOriginCacheKeepsNoErrors(t *testing.T) {
	kc := &countingKeychain{}
	kc.fail.Store(true)
	oc := newOriginCache(kc, 0)
	_, _, err := oc.get(context.Background(), "https://a")
	require.Error(t, err)
	kc.fail.Store(false)
	c, _, err := oc.get(context.Background(), "https://a")
	require.NoError(t, err)
	assert.NotNil(t, c, "a failed resolution is tried again")
}

func TestOriginCacheIsBounded(t *testing.T) {
	kc := &countingKeychain{}
	oc := newOriginCache(kc, 3)
	for i := range 10 {
		_, _, err := oc.get(context.Background(), fmt.Sprintf("https://h%d", i))
		require.NoError(t, err)
	}
	assert.Len(t, oc.entries, 3)
	assert.Equal(t, []string{"https://h7", "https://h8", "https://h9"}, oc.order)
	_, _, err := oc.get(context.Background(), "https://h0")
	require.NoError(t, err)
	assert.Equal(t, int32(11), kc.calls.Load(), "an evicted origin resolves again")
}

func TestOriginCacheWaitEndsWithContext(t *testing.T) {
	kc := &countingKeychain{release: make(chan struct{})}
	oc := newOriginCache(kc, 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = oc.get(context.Background(), "https://a")
	}()
	for kc.calls.Load() == 0 {
		runtime.Gosched() // until the first resolution has started
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := oc.get(ctx, "https://a")
	assert.ErrorIs(t, err, context.Canceled)
	close(kc.release)
	<-done
}
