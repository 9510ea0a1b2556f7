package mockserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandlerMountsInAnotherServer(t *testing.T) {
	srv, err := NewUnstarted(DefaultConfig())
	require.NoError(t, err)
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	r := get(t, ts.URL+"/v2/team/app/tags/list", "")
	require.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `realm="`+ts.URL+`/registry/token"`, "the realm follows the origin reached")
	assert.Contains(t, get(t, ts.URL+"/", "").body, "reauth mock server "+ts.URL)
	assert.Equal(t, http.StatusOK, get(t, ts.URL+"/basic/", basic("alice", "wonderland")).status)
	assert.Len(t, srv.Requests(), 3)
	assert.Empty(t, srv.URL(), "not started")
	assert.Error(t, func() error { s := New(DefaultConfig()); defer s.Close(); return s.Start() }(), "a second Start")
}

func TestClocks(t *testing.T) {
	srv := New(DefaultConfig())
	defer srv.Close()
	assert.WithinDuration(t, time.Now(), srv.Clock().Now(), time.Hour, "the system clock by default")

	c := NewManualClock(testStart)
	c.Advance(time.Minute)
	assert.Equal(t, testStart.Add(time.Minute), c.Now())
	c.Set(testStart)
	assert.Equal(t, testStart, c.Now())
}
