package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
)

const tlsUsage = `Usage:
  hourglass tls ca [--dir DIR] [--days 1825]
      make a certificate authority for the cluster: DIR/ca.pem (give it to
      every node as --cluster-ca, and to clients as --ca-cert) and
      DIR/ca-key.pem (keep it secret, and off the nodes)
  hourglass tls cert --name NAME --host HOST[,HOST...] [--dir DIR] [--days 365]
      make a certificate signed by DIR/ca.pem for a node: DIR/NAME.pem and
      DIR/NAME-key.pem, for --cluster-cert/--cluster-key and, naming the
      hosts (IP addresses or DNS names) clients and other nodes reach the
      node's API at, for --tls-cert/--tls-key; or a client certificate for
      --client-cert/--client-key
`

func runTLS(args []string, stdout, stderr io.Writer) error {
	fset, err := subcommand("tls", tlsUsage, args, stderr)
	if err != nil {
		return err
	}
	dir := fset.String("dir", ".", "directory of the CA's files, and for the new files")
	var days *int
	var name *string
	var hosts listFlag
	switch args[0] {
	case "ca":
		days = fset.Int("days", 5*365, "days the CA is valid for")
	case "cert":
		days = fset.Int("days", 365, "days the certificate is valid for")
		name = fset.String("name", "", "the certificate's name (its file names and common name), e.g. node-1")
		fset.Var(&hosts, "host", "IP address or DNS name the node is reached at; repeatable, or comma-separated")
	default:
		fmt.Fprint(stderr, tlsUsage)
		return fmt.Errorf("%w: unknown tls command %q", errUsage, args[0])
	}
	rest, err := parseFlags(fset, args[1:])
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: tls %s takes no arguments, got %q", errUsage, args[0], rest)
	}
	if *days <= 0 {
		return fmt.Errorf("%w: --days %d: want a positive number", errUsage, *days)
	}
	validFor := time.Duration(*days) * 24 * time.Hour
	caCert, caKey := filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca-key.pem")
	if args[0] == "ca" {
		certPEM, keyPEM, err := cluster.NewCA("Hourglass cluster CA", validFor)
		if err != nil {
			return err
		}
		if err := writeNew(caCert, caKey, certPEM, keyPEM); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (the CA certificate, for every node and client)\nwrote %s (the CA's key: keep it secret, and off the nodes)\n", caCert, caKey)
		return nil
	}
	if err := checkTokenName(*name); err != nil {
		return err
	}
	caCertPEM, err := os.ReadFile(caCert)
	if err != nil {
		return fmt.Errorf("read the CA (hourglass tls ca makes one): %w", err)
	}
	caKeyPEM, err := os.ReadFile(caKey)
	if err != nil {
		return fmt.Errorf("read the CA's key: %w", err)
	}
	certPEM, keyPEM, err := cluster.NewCert(caCertPEM, caKeyPEM, *name, hosts, validFor)
	if err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(*dir, *name+".pem"), filepath.Join(*dir, *name+"-key.pem")
	if err := writeNew(certFile, keyFile, certPEM, keyPEM); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s (for %s, valid %d days, hosts %v)\n", certFile, keyFile, *name, *days, []string(hosts))
	return nil
}

// writeNew writes a certificate and its key (the key readable by its
// owner only; the directory made if need be), refusing to replace either.
func writeNew(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("%s exists: not replacing it", f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, certPEM, 0o644)
}

const gossipKeyUsage = `Usage:
  hourglass gossip-key create
      print a new gossip encryption key (32 random bytes in base64) for
      every node's --gossip-key
`

func runGossipKey(args []string, stdout, stderr io.Writer) error {
	return createKey("gossip-key", gossipKeyUsage, "", args, stdout, stderr)
}
