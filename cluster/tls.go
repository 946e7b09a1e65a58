package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// LoadMemberTLS reads the cluster's CA certificate and this member's
// certificate and key (PEM files) into a configuration for mutual TLS
// between members (see MemberTLS).
func LoadMemberTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load member certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return MemberTLS(caPEM, cert)
}

// MemberTLS is the configuration for mutual TLS between members: each side
// presents cert and accepts only a peer whose certificate the cluster's CA
// (caPEM) signed. Host names are not checked: members are dialled at the
// addresses they advertise, which come and go, so holding a certificate of
// the cluster's CA is what makes a member. Keep that CA for the cluster
// alone.
func MemberTLS(caPEM []byte, cert tls.Certificate) (*tls.Config, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("cluster CA: no PEM certificate in it")
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("member certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	if cert.Leaf == nil {
		return nil, errors.New("member certificate: none given")
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: usages}); err != nil {
		return nil, fmt.Errorf("member certificate is not one of the cluster CA's: %w", err)
	}
	verifyPeer := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the peer presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: usages})
		if err != nil {
			return fmt.Errorf("the peer's certificate is not the cluster's: %w", err)
		}
		return nil
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Both sides verify the other in VerifyConnection, against the
		// cluster's CA and without a host name (see above).
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyConnection:   verifyPeer,
	}, nil
}

// checkMemberTLS dials a would-be member's raft address and completes the
// cluster's TLS handshake: the leader adds only members that pass, so a
// node without the cluster's certificate never enters the configuration.
// Without TLS there is nothing to check.
func (n *Node) checkMemberTLS(raftAddr string) error {
	if n.tls == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := n.dialTLS(ctx, raftAddr)
	if err != nil {
		return err
	}
	return conn.Close()
}
