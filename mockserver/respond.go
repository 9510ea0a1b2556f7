package mockserver

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// okInfo is the body of a successful response: whom the server took the
// client for, so that a test can check more than the status.
type okInfo struct {
	Scenario  string   `json:"scenario"`
	Path      string   `json:"path"`
	User      string   `json:"user,omitempty"`
	Client    string   `json:"client,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	Algorithm string   `json:"algorithm,omitempty"`
	Qop       string   `json:"qop,omitempty"`
	JKT       string   `json:"jkt,omitempty"` // DPoP: the thumbprint of the key the token is bound to
}

func okBody(i okInfo) []byte {
	b, _ := json.Marshal(i)
	return append(b, '\n')
}

func writeOK(w http.ResponseWriter, i okInfo) {
	writeJSONBytes(w, http.StatusOK, okBody(i))
}

// writeProblem answers with p's status and message; a 401 caller adds its
// challenge first.
func writeProblem(w http.ResponseWriter, p *problem) {
	writeText(w, p.status, p.msg)
}

func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "encoding the response failed")
		return
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
