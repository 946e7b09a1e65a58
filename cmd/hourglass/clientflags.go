package main

import (
	"flag"
	"fmt"

	"github.com/hourglass-scheduler/hourglass/client"
)

// clientFlags are the flags of every command that calls a server.
type clientFlags struct {
	addr, token                   string
	caCert, clientCert, clientKey string
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	f := &clientFlags{}
	fs.StringVar(&f.addr, "addr", client.DefaultAddr, "the server's HTTP address (https://... for a server with --tls-cert)")
	fs.StringVar(&f.token, "token", "", "bearer token, if the server requires one")
	fs.StringVar(&f.caCert, "ca-cert", "", "CA certificate (PEM) that signed the server's, if not one the system trusts")
	fs.StringVar(&f.clientCert, "client-cert", "", "client certificate (PEM), for a server started with --tls-client-ca")
	fs.StringVar(&f.clientKey, "client-key", "", "the client certificate's key (PEM)")
	return f
}

// connect returns a client for the server the flags name.
func (f *clientFlags) connect() (*client.Client, error) {
	if f.caCert == "" && f.clientCert == "" && f.clientKey == "" {
		return client.New(f.addr, f.token), nil
	}
	cfg, err := client.LoadTLS(f.caCert, f.clientCert, f.clientKey)
	if err != nil {
		return nil, fmt.Errorf("%w: --ca-cert, --client-cert, --client-key: %v", errUsage, err)
	}
	return client.New(f.addr, f.token, client.WithTLS(cfg)), nil
}
