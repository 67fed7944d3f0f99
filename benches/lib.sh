# benches/lib.sh: what the bench scripts share, sourced by them (`. "$REPO/benches/lib.sh"`).

# A free TCP port on 127.0.0.1 (the kernel's choice; the caller binds it soon after).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# One self-signed ECDSA P-256 certificate for localhost, the one every server of a run uses:
# $1/cert.pem and $1/key.pem.
bench_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
        -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}

# The start of a presenced configuration for a bench: domain localhost, data in $1, XMPP with STARTTLS on
# 127.0.0.1:$2 with the certificate in $3 (no direct TLS), SIP and HTTP on free loopback ports, no federation.
# The caller appends its own sections ([limits], [log], [runtime], ...).
presenced_listeners() {
    cat <<CONF
domain = "localhost"
data_dir = "$1"

[xmpp]
c2s_bind = "127.0.0.1:$2"
c2s_tls_bind = "off"
tls_cert = "$3/cert.pem"
tls_key = "$3/key.pem"

[sip]
bind = "127.0.0.1:$(free_port)"
tls_bind = "off"

[http]
bind = "127.0.0.1:$(free_port)"

# No federation in the benchmark (and nothing on all interfaces).
[s2s]
bind = "off"
CONF
}
