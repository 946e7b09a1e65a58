package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/hourglass-scheduler/hourglass/cluster"
)

// serverTLS is what the server's TLS flags configure; every field is nil
// when its flags are not given.
type serverTLS struct {
	// api serves the HTTP API (--tls-cert, --tls-key, --tls-client-ca).
	api *tls.Config
	// forward is how a follower reaches the leader's API when that is
	// served over TLS.
	forward *tls.Config
	// member is mutual TLS between members (--cluster-ca, --cluster-cert,
	// --cluster-key), for raft.
	member *tls.Config
	// gossipKeys encrypt gossip (--gossip-key).
	gossipKeys [][]byte
}

func loadServerTLS(f serverFlags) (*serverTLS, error) {
	var s serverTLS
	var clusterCA []byte
	switch given := countSet(f.clusterCA, f.clusterCert, f.clusterKey); {
	case given == 3:
		var err error
		if clusterCA, err = os.ReadFile(f.clusterCA); err != nil {
			return nil, fmt.Errorf("--cluster-ca: %w", err)
		}
		if s.member, err = cluster.LoadMemberTLS(f.clusterCA, f.clusterCert, f.clusterKey); err != nil {
			return nil, fmt.Errorf("--cluster-ca, --cluster-cert, --cluster-key: %w", err)
		}
	case given > 0:
		return nil, fmt.Errorf("%w: --cluster-ca, --cluster-cert and --cluster-key go together (raft's mutual TLS needs all three)", errUsage)
	}
	for i, k := range f.gossipKeys {
		key, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return nil, fmt.Errorf("%w: --gossip-key #%d is not base64 (hourglass gossip-key create makes one)", errUsage, i+1)
		}
		if n := len(key); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("%w: --gossip-key #%d is %d bytes: want 16, 24 or 32 (hourglass gossip-key create makes one)", errUsage, i+1, n)
		}
		s.gossipKeys = append(s.gossipKeys, key)
	}

	if countSet(f.tlsCert, f.tlsKey) == 1 {
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	if f.tlsCert == "" {
		if f.tlsClientCA != "" {
			return nil, fmt.Errorf("%w: --tls-client-ca needs --tls-cert and --tls-key (client certificates are checked over TLS)", errUsage)
		}
		return &s, nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
	}
	s.api = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	// Followers forward to the leader over https: they trust the system's
	// roots and the cluster's CA, and show their member certificate.
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if clusterCA != nil {
		roots.AppendCertsFromPEM(clusterCA)
	}
	s.forward = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if s.member != nil {
		s.forward.Certificates = s.member.Certificates
	}
	if f.tlsClientCA != "" {
		pem, err := os.ReadFile(f.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it", f.tlsClientCA)
		}
		if f.clustered() {
			if s.member == nil {
				return nil, fmt.Errorf("%w: --tls-client-ca in a cluster needs --cluster-cert: followers forward requests to the leader with it", errUsage)
			}
			pool.AppendCertsFromPEM(clusterCA)
		}
		// A certificate that is given is verified in the handshake; one
		// that is missing is answered by the API with a clear 401 (the
		// health checks need none).
		s.api.ClientCAs, s.api.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return &s, nil
}

func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}
