#!/bin/sh
# Signs the certificate request on stdin with the cluster CA and prints the certificate.
# Usage: tls-sign.sh CA_DIR DAYS SAN USAGE. Changes nothing on this host.
set -e
dir=$1 days=$2 san=$3 usage=$4
ext=$(mktemp)
trap 'rm -f "$ext"' EXIT
# The request carries only a key and a name: every extension is the CA's own choice.
printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=$usage" "subjectAltName=$san" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" > "$ext"
openssl x509 -req -in /dev/stdin -CA "$dir/cacert.pem" -CAkey "$dir/cakey.pem" -days "$days" \
    -sha256 -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" 2>/dev/null
