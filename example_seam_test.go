package reauth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/reauth/reauth"
)

// signedKey is a scheme of one's own: an API key (a secret, so Set keeps it
// off plain http to other hosts) and a signature of the method and path
// (a proof bound to the request, so SetProof).
type signedKey struct{ id, key string }

func (s signedKey) Authorize(r *reauth.AuthRequest) error {
	req := r.Request()
	mac := hmac.New(sha256.New, []byte(s.key))
	mac.Write([]byte(req.Method + " " + req.URL.Path))
	r.Set("X-Api-Key", s.id)
	r.SetProof("X-Api-Signature", hex.EncodeToString(mac.Sum(nil)))
	return nil
}

// Refused declines: a fixed key has nothing new to offer.
func (signedKey) Refused(*reauth.AuthRequest, *reauth.Refusal) (reauth.Retry, error) { return 0, nil }

func (signedKey) Observe(*reauth.AuthRequest, *http.Response) error { return nil }

// A scheme of one's own sets the fields it needs on every attempt; the
// Transport binds it to its origins, bounds retries and keeps refused
// fields from going out again.
func Example_customCredentials() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mac := hmac.New(sha256.New, []byte("example-key"))
		mac.Write([]byte(r.Method + " " + r.URL.Path))
		if r.Header.Get("X-Api-Key") != "client-7" || r.Header.Get("X-Api-Signature") != hex.EncodeToString(mac.Sum(nil)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "signed in")
	}))
	defer srv.Close()

	client := &http.Client{Transport: &reauth.Transport{
		Credentials: signedKey{id: "client-7", key: "example-key"},
		Origins:     []string{srv.URL},
	}}
	resp, err := client.Get(srv.URL + "/v1/items")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}
