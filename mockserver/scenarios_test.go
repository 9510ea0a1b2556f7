package mockserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIndexScenariosAndRoutesAgree: GET / (text and JSON), Scenarios() and
// the routes all come from scenarioTable, so they list the same paths in
// the same order, every listed path reaches the scenario of its name, and
// no path outside the table is served.
func TestIndexScenariosAndRoutesAgree(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.Proxy.Enabled = true; c.Proxy.Schemes = []string{"Basic", "Digest"} })

	var fromTable []Scenario
	for _, e := range scenarioTable() {
		listed := e.list(srv)
		require.NotEmpty(t, listed, "a table entry lists no scenario")
		for _, sc := range listed {
			assert.Equal(t, listed[0].Name, sc.Name, "one handler, one scenario name")
			assert.Equal(t, e.serve == nil, len(scenarioPaths(sc)) == 0, "%s: a handler exactly when there is a path", sc.Name)
		}
		fromTable = append(fromTable, listed...)
	}
	assert.Equal(t, fromTable, srv.Scenarios())

	req, err := http.NewRequest(http.MethodGet, srv.URL()+"/", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var index struct{ Scenarios []Scenario }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&index))
	resp.Body.Close()
	assert.Equal(t, fromTable, index.Scenarios, "GET / as JSON")

	text := get(t, srv.URL()+"/", "").body
	at := 0
	seen := map[string]bool{}
	for _, sc := range fromTable {
		entry := "  " + sc.Path + "\n      asks: " + sc.Auth + "\n      does: " + sc.Description + "\n"
		i := strings.Index(text[at:], entry)
		if assert.GreaterOrEqual(t, i, 0, "GET / lists %s after the one before it", sc.Path) {
			at += i + len(entry)
		}
		if sc.Name == "digest" || sc.Name == "proxy" {
			assert.Contains(t, sc.Description, "curl --", "%s: the index says how curl answers it", sc.Path)
		}
		for _, p := range scenarioPaths(sc) {
			assert.False(t, seen[p], "%s is listed twice", p)
			seen[p] = true
			srv.ResetRequests()
			r := get(t, srv.URL()+p, "")
			assert.NotEqual(t, http.StatusNotFound, r.status, p)
			if reqs := srv.Requests(); assert.Len(t, reqs, 1) {
				assert.Equal(t, sc.Name, reqs[0].Scenario, "%s reaches its scenario", p)
			}
		}
	}
	for _, p := range []string{"/nothing/", "/basicx/", "/oauth2/", "/status/500/"} {
		assert.Equal(t, http.StatusNotFound, get(t, srv.URL()+p, "").status, "%s is in no table entry", p)
	}
}

// TestEveryScenarioFamilyIsInTheMalformedAndFuzzLists: a new scenario that
// reads Authorization is sent malformed fields and fuzzed too; this fails
// until authPaths and fuzzPaths name a path of it.
func TestEveryScenarioFamilyIsInTheMalformedAndFuzzLists(t *testing.T) {
	srv, _ := newTestServer(t)
	inAuth, inFuzz := map[string]bool{}, map[string]bool{}
	for _, sc := range srv.Scenarios() {
		if sc.Name == "status" || len(scenarioPaths(sc)) == 0 { // no Authorization read; the proxy has no path
			continue
		}
		inAuth[sc.Name] = inAuth[sc.Name] || false
		inFuzz[sc.Name] = inFuzz[sc.Name] || false
		for _, p := range scenarioPaths(sc) {
			for _, a := range authPaths {
				inAuth[sc.Name] = inAuth[sc.Name] || strings.HasPrefix(a.path, p)
			}
			for _, f := range fuzzPaths {
				inFuzz[sc.Name] = inFuzz[sc.Name] || strings.HasPrefix(f.path, p)
			}
		}
	}
	for name := range inAuth {
		assert.True(t, inAuth[name], "no path of scenario %s is in authPaths (malformed_test.go)", name)
		assert.True(t, inFuzz[name], "no path of scenario %s is in fuzzPaths (authz_fuzz_test.go)", name)
	}
}
