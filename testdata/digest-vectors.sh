#!/bin/sh
# Computes the Digest vectors of digest_test.go that no RFC publishes, with
# OpenSSL rather than Go, so that the test compares two implementations.
# Each line is hashed with printf '%s' (no newline); H is lower-case hex.
# Run: sh testdata/digest-vectors.sh (OpenSSL 3 for sha512-256).
h() { printf '%s' "$2" | openssl dgst "-$1" -r | cut -d' ' -f1; }

# RFC 7616 §3.9.1 inputs.
U=Mufasa P='Circle of Life' R=http-auth@example.org
N=7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v
C=f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ
URI=/dir/index.html
for a in md5 sha256 sha512-256; do
	HA1=$(h $a "$(h $a "$U:$R:$P"):$N:$C")
	echo "$a-sess auth GET $URI: $(h $a "$HA1:$N:00000001:$C:auth:$(h $a "GET:$URI")")"
done
HA1=$(h md5 "$U:$R:$P")
echo "md5 auth-int POST /api/items body {\"name\":\"value\"}: $(h md5 "$HA1:$N:00000001:$C:auth-int:$(h md5 "POST:/api/items:$(h md5 '{"name":"value"}')")")"
HA1=$(h sha256 "$U:$R:$P")
echo "sha256 auth-int POST /api/items empty body: $(h sha256 "$HA1:$N:00000001:$C:auth-int:$(h sha256 "POST:/api/items:$(h sha256 '')")")"
echo "sha256 userhash: $(h sha256 "$U:$R")"
echo "sha256 rspauth auth-int /api/items response body hello: $(h sha256 "$HA1:$N:00000001:$C:auth-int:$(h sha256 ":/api/items:$(h sha256 hello)")")"

# RFC 2617 §3.5 inputs.
P='Circle Of Life' R=testrealm@host.com N=dcd98b7102dd2f0e8b11d0f600bfb0c093 C=0a4f113b
HA1=$(h md5 "$U:$R:$P") HA2=$(h md5 "GET:$URI")
echo "md5 no qop (RFC 2069 form): $(h md5 "$HA1:$N:$HA2")"
echo "md5 auth nc 0000001a: $(h md5 "$HA1:$N:0000001a:$C:auth:$HA2")"
echo "md5 rspauth auth: $(h md5 "$HA1:$N:00000001:$C:auth:$(h md5 ":$URI")")"
echo "md5 rspauth no qop: $(h md5 "$HA1:$N:$(h md5 ":$URI")")"
U='a"b\c' URI='/p?q="x"\y'
printf 'md5 auth, user and uri with quote and backslash: %s\n' "$(h md5 "$(h md5 "$U:$R:$P"):$N:00000001:$C:auth:$(h md5 "GET:$URI")")"
