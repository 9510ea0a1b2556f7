package negotiate

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The tests here need no KDC: a ticket is opaque to its client (only the
// service can decrypt it), so a made-up one carries a made-up session key as
// well as a real one would, and the "server" below reads the AP-REQ and
// writes the AP-REP with gokrb5's own messages and crypto, as mod_auth_gssapi
// does with MIT's. The integration tests do the same against the real thing.

const testSPN = "HTTP/localhost"

func randomKey(t *testing.T) types.EncryptionKey {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: k}
}

func testTicket(t *testing.T) messages.Ticket {
	t.Helper()
	cipher := make([]byte, 64)
	if _, err := rand.Read(cipher); err != nil {
		t.Fatal(err)
	}
	return messages.Ticket{
		TktVNO:  5,
		Realm:   "REAUTH.TEST",
		SName:   types.NewPrincipalName(nametype.KRB_NT_SRV_INST, testSPN),
		EncPart: types.EncryptedData{EType: etypeID.AES256_CTS_HMAC_SHA1_96, KVNO: 1, Cipher: cipher},
	}
}

// clientToken builds a Negotiate token for a made-up ticket under key.
func clientToken(t *testing.T, key types.EncryptionKey) (string, *secContext) {
	t.Helper()
	tok, ctx, err := initTokenFor(credentials.New("alice", "REAUTH.TEST"), testSPN, testTicket(t), key)
	if err != nil {
		t.Fatalf("initTokenFor: %v", err)
	}
	return tok, ctx
}

// acceptedAPReq plays the acceptor: it reads the AP-REQ out of a Negotiate
// token and decrypts its authenticator with the session key.
func acceptedAPReq(t *testing.T, token string, key types.EncryptionKey) messages.APReq {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("token is not base64: %v", err)
	}
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(raw); err != nil || !st.Init {
		t.Fatalf("token is not a SPNEGO NegTokenInit (init=%v): %v", st.Init, err)
	}
	if len(st.NegTokenInit.MechTypes) != 1 || !st.NegTokenInit.MechTypes[0].Equal(gssapi.OIDKRB5.OID()) {
		t.Fatalf("mechTypes = %v, want Kerberos 5 only", st.NegTokenInit.MechTypes)
	}
	var mt spnego.KRB5Token
	if err := mt.Unmarshal(st.NegTokenInit.MechTokenBytes); err != nil || !mt.IsAPReq() {
		t.Fatalf("mechToken is not an AP-REQ: %v", err)
	}
	if err := mt.APReq.DecryptAuthenticator(key); err != nil {
		t.Fatalf("authenticator does not decrypt with the session key: %v", err)
	}
	return mt.APReq
}

// apRepToken plays the acceptor's answer: a NegTokenResp (state, mech)
// carrying an AP-REP that echoes ctime/cusec, encrypted under key.
func apRepToken(t *testing.T, key types.EncryptionKey, ctime time.Time, cusec int, state int, mech asn1.ObjectIdentifier) []byte {
	t.Helper()
	part, err := asn1.Marshal(messages.EncAPRepPart{CTime: ctime, Cusec: cusec, SequenceNumber: 7})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := crypto.GetEncryptedData(asn1tools.AddASNAppTag(part, asnAppTag.EncAPRepPart), key, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := asn1.Marshal(messages.APRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		t.Fatal(err)
	}
	mech2, err := gssToken(tokIDAPRep, asn1tools.AddASNAppTag(rep, asnAppTag.APREP))
	if err != nil {
		t.Fatal(err)
	}
	return negTokenResp(t, state, mech, mech2)
}

func negTokenResp(t *testing.T, state int, mech asn1.ObjectIdentifier, responseToken []byte) []byte {
	t.Helper()
	b, err := (&spnego.NegTokenResp{NegState: asn1.Enumerated(state), SupportedMech: mech, ResponseToken: responseToken}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInitTokenAsksForMutualAuthentication(t *testing.T) {
	key := randomKey(t)
	tok, ctx := clientToken(t, key)
	req := acceptedAPReq(t, tok, key)

	if !types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired) {
		t.Error("AP-REQ without the MUTUAL-REQUIRED option: MIT sends no AP-REP without it")
	}
	ck := req.Authenticator.Cksum.Checksum
	if len(ck) < 24 || binary.LittleEndian.Uint32(ck[20:24])&gssapi.ContextFlagMutual == 0 {
		t.Errorf("authenticator checksum %x lacks GSS_C_MUTUAL_FLAG", ck)
	}
	if got := req.Ticket.SName.PrincipalNameString(); got != testSPN {
		t.Errorf("ticket for %q, want %q", got, testSPN)
	}
	if got := req.Authenticator.CName.PrincipalNameString(); got != "alice" || req.Authenticator.CRealm != "REAUTH.TEST" {
		t.Errorf("authenticator for %s@%s, want alice@REAUTH.TEST", got, req.Authenticator.CRealm)
	}
	if !req.Authenticator.CTime.Equal(ctx.ctime) || req.Authenticator.Cusec != ctx.cusec {
		t.Errorf("context keeps ctime %v cusec %d, the authenticator sent %v %d",
			ctx.ctime, ctx.cusec, req.Authenticator.CTime, req.Authenticator.Cusec)
	}
}

// Every token is new: a fresh authenticator under a fresh confounder, so a
// retry or a second request never sends what was sent before (DESIGN.md,
// invariant 2), with the same ticket from the cache.
func TestInitTokenIsNeverRepeated(t *testing.T) {
	key := randomKey(t)
	creds := credentials.New("alice", "REAUTH.TEST")
	tkt := testTicket(t)
	seen := map[string]bool{}
	for range 50 {
		tok, _, err := initTokenFor(creds, testSPN, tkt, key)
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatal("the same Negotiate token was built twice")
		}
		seen[tok] = true
	}
}

func TestVerifyAcceptsTheServersAPRep(t *testing.T) {
	key := randomKey(t)
	tok, ctx := clientToken(t, key)
	a := acceptedAPReq(t, tok, key).Authenticator
	for _, mech := range []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID(), gssapi.OIDMSLegacyKRB5.OID()} {
		if err := ctx.verify(apRepToken(t, key, a.CTime, a.Cusec, 0, mech)); err != nil {
			t.Errorf("mech %v: verify of a genuine AP-REP: %v", mech, err)
		}
	}
}

func TestVerifyRefusesWhatDoesNotProveTheServer(t *testing.T) {
	key := randomKey(t)
	tok, ctx := clientToken(t, key)
	a := acceptedAPReq(t, tok, key).Authenticator
	krb5 := gssapi.OIDKRB5.OID()

	genuine := apRepToken(t, key, a.CTime, a.Cusec, 0, krb5)
	flipped := bytes.Clone(genuine)
	flipped[len(flipped)-5] ^= 0x01 // inside the AP-REP's ciphertext (its HMAC)

	errTok := krbErrorMech(t, errorcode.KRB_AP_ERR_MODIFIED)

	cases := []struct {
		name  string
		token []byte
		want  string
	}{
		{"another session key (a server without the service key)", apRepToken(t, randomKey(t), a.CTime, a.Cusec, 0, krb5), "does not decrypt"},
		{"ciphertext tampered", flipped, "does not decrypt"},
		{"an answer to an earlier authenticator (cusec)", apRepToken(t, key, a.CTime, (a.Cusec+1)%1000000, 0, krb5), "another authenticator"},
		{"an answer to an earlier authenticator (ctime)", apRepToken(t, key, a.CTime.Add(-time.Second), a.Cusec, 0, krb5), "another authenticator"},
		{"negState reject", apRepToken(t, key, a.CTime, a.Cusec, 2, krb5), "not accept-completed"},
		{"negState accept-incomplete", apRepToken(t, key, a.CTime, a.Cusec, 1, krb5), "not accept-completed"},
		{"another mechanism (NTLM)", apRepToken(t, key, a.CTime, a.Cusec, 0, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}), "not Kerberos 5"},
		{"no response token", negTokenResp(t, 0, krb5, nil), "carries no AP-REP"},
		{"a KRB-ERROR", negTokenResp(t, 0, krb5, errTok), "KRB-ERROR"},
		{"not SPNEGO", []byte("not a token"), "not a SPNEGO response"},
		{"a NegTokenInit echoed back", mustDecode(t, tok), "not a SPNEGO response"},
		{"empty", nil, "not a SPNEGO response"},
	}
	secret := base64.StdEncoding.EncodeToString(key.KeyValue)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ctx.verify(tc.token)
			if !errors.Is(err, ErrMutualAuthentication) {
				t.Fatalf("verify = %v, want an error matching ErrMutualAuthentication", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if strings.Count(msg, "reauth: ") != 1 || !strings.Contains(msg, testSPN) {
				t.Errorf("error %q: want one \"reauth: \" prefix and the principal", msg)
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, string(key.KeyValue)) {
				t.Error("error text carries the session key")
			}
		})
	}
}

// krbErrorMech is a Kerberos GSS-API token carrying a KRB-ERROR, as an
// acceptor sends when it refuses an AP-REQ.
func krbErrorMech(t *testing.T, code int32) []byte {
	t.Helper()
	krbErr := messages.NewKRBError(types.NewPrincipalName(nametype.KRB_NT_SRV_INST, testSPN), "REAUTH.TEST", code, "")
	b, err := krbErr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := gssToken([2]byte{0x03, 0x00}, b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServerToken(t *testing.T) {
	tok := base64.StdEncoding.EncodeToString([]byte{0xa1, 0x03, 0x02, 0x01, 0x00})
	cases := []struct {
		name    string
		field   string
		values  []string
		proxy   bool
		want    []byte
		found   bool
		wantErr bool
	}{
		{"none", "", nil, false, nil, false, false},
		{"bare Negotiate (no token)", "Www-Authenticate", []string{"Negotiate"}, false, nil, false, false},
		{"one token", "Www-Authenticate", []string{"Negotiate " + tok}, false, []byte{0xa1, 0x03, 0x02, 0x01, 0x00}, true, false},
		{"scheme case-insensitive, among others", "Www-Authenticate", []string{`Basic realm="x"`, "negotiate " + tok}, false, []byte{0xa1, 0x03, 0x02, 0x01, 0x00}, true, false},
		{"two tokens", "Www-Authenticate", []string{"Negotiate " + tok, "Negotiate " + tok}, false, nil, true, true},
		{"not base64", "Www-Authenticate", []string{"Negotiate a-b_cd=="}, false, nil, true, true},
		{"proxy field for the proxy", "Proxy-Authenticate", []string{"Negotiate " + tok}, true, []byte{0xa1, 0x03, 0x02, 0x01, 0x00}, true, false},
		{"origin field ignored for the proxy", "Www-Authenticate", []string{"Negotiate " + tok}, true, nil, false, false},
		{"unparsable field", "Www-Authenticate", []string{`Negotiate a="`}, false, nil, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add(tc.field, v)
			}
			got, found, err := serverToken(h, tc.proxy)
			if (err != nil) != tc.wantErr || found != tc.found || !bytes.Equal(got, tc.want) {
				t.Fatalf("serverToken = %x, %v, %v; want %x, %v, error %v", got, found, err, tc.want, tc.found, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMutualAuthentication) {
				t.Errorf("error %v does not match ErrMutualAuthentication", err)
			}
		})
	}
}

func TestServerTokenBounded(t *testing.T) {
	h := http.Header{"Www-Authenticate": {"Negotiate " + strings.Repeat("A", maxTokenBytes+4)}}
	if _, _, err := serverToken(h, false); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("serverToken of an oversized token = %v, want a limit error", err)
	}
}

func TestInitTokenNeedsAClient(t *testing.T) {
	if _, _, err := initToken(nil, testSPN); err == nil || !strings.Contains(err.Error(), "client.NewWithKeytab") {
		t.Fatalf("initToken(nil) = %v, want an error saying how to build a client", err)
	}
}

// A KDC that cannot be reached is an error naming the principal, with one
// "reauth: " prefix and without the password; nothing is dialled beyond
// loopback (a closed port: the refusal is immediate).
func TestInitTokenWithoutKDC(t *testing.T) {
	cfg, err := config.NewFromString("[libdefaults]\n default_realm = REAUTH.TEST\n dns_lookup_kdc = false\n udp_preference_limit = 1\n[realms]\n REAUTH.TEST = {\n  kdc = 127.0.0.1:1\n }\n")
	if err != nil {
		t.Fatal(err)
	}
	const password = "kdc-unreachable-secret"
	cl := client.NewWithPassword("alice", "REAUTH.TEST", password, cfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	_, sc, err := initToken(cl, testSPN)
	if err == nil || sc != nil {
		t.Fatalf("initToken without a KDC = %v, want an error", err)
	}
	if errors.Is(err, ErrKDCRefused) {
		t.Errorf("an unreachable KDC reads as a refusal (final): %v", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "reauth: negotiate: no service ticket for "+testSPN) || strings.Count(msg, "reauth: ") != 1 {
		t.Errorf("error %q: want one prefix and the principal", msg)
	}
	if strings.Contains(msg, password) {
		t.Error("error text carries the password")
	}
}
