#!/bin/sh
# Prints "ok" when the certificate CERT with key KEY is signed by the CA whose certificate is
# CA_PEM, stays valid for RENEW more seconds and names exactly SAN; otherwise the first reason
# it does not. Usage: tls-cert-status.sh CERT KEY SAN RENEW CA_PEM. Reads only.
cert=$1 key=$2 san=$3 renew=$4 ca=$5
san_of() {
    # openssl prints the names on the line after the extension's title.
    openssl "$1" -noout -text 2>/dev/null | sed -n '/X509v3 Subject Alternative Name/{n;s/^ *//;p;q}'
}
if [ ! -s "$cert" ]; then echo "no certificate yet"; exit 0; fi
if [ ! -s "$key" ]; then echo "its key $key is missing"; exit 0; fi
if [ -z "$ca" ]; then echo "the cluster CA does not exist yet"; exit 0; fi
if ! printf '%s\n' "$ca" | openssl verify -CAfile /dev/stdin "$cert" >/dev/null 2>&1; then
    echo "not signed by the cluster CA"; exit 0
fi
if ! openssl x509 -in "$cert" -noout -checkend "$renew" >/dev/null; then
    echo "it expires within the renewal period"; exit 0
fi
have=$(san_of x509 < "$cert")
# The names as openssl would print them in a certificate issued now.
want=$(openssl req -new -key "$key" -subj /CN=probe -addext "subjectAltName=$san" 2>/dev/null | san_of req)
if [ -z "$want" ] || [ "$have" != "$want" ]; then
    echo "it names ${have:-nothing}, not $san"; exit 0
fi
if [ "$(openssl x509 -in "$cert" -noout -pubkey)" != "$(openssl pkey -in "$key" -pubout)" ]; then
    echo "it does not match its key"; exit 0
fi
echo ok
