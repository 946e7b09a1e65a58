package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/httpapi"
)

const tokenUsage = `Usage:
  hourglass token create --name NAME --scopes SCOPE[,SCOPE...]
      make a new API token: prints the token (give it to the client) and
      the line to add to the server's --tokens-file (which holds only its
      hash). Scopes: tasks:read, tasks:write, worker, worker:QUEUE (leases
      of that queue only), admin.
`

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, err := subcommand("token", tokenUsage, args, stderr)
	if err != nil {
		return err
	}
	if args[0] != "create" {
		fmt.Fprint(stderr, tokenUsage)
		return fmt.Errorf("%w: unknown token command %q", errUsage, args[0])
	}
	name := fs.String("name", "", "the token's name, shown in logs and errors (letters, digits, - _ .)")
	scopes := fs.String("scopes", "", "what the token may do: tasks:read, tasks:write, worker, worker:QUEUE, admin (comma-separated)")
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: token create takes no arguments, got %q", errUsage, rest)
	}
	if err := checkTokenName(*name); err != nil {
		return err
	}
	if *scopes == "" {
		return fmt.Errorf("%w: --scopes is required: tasks:read, tasks:write, worker or admin", errUsage)
	}
	list, err := httpapi.ParseScopes(*scopes)
	if err != nil {
		return fmt.Errorf("%w: --scopes: %v", errUsage, err)
	}
	secret, err := httpapi.NewToken()
	if err != nil {
		return err
	}
	names := make([]string, len(list))
	for i, s := range list {
		names[i] = string(s)
	}
	fmt.Fprintf(stdout, "token (give it to the client; it is not stored anywhere):\n  %s\nline for the server's --tokens-file:\n  %s %s %s\n",
		secret, *name, strings.Join(names, ","), httpapi.HashToken(secret))
	return nil
}

func checkTokenName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: --name is required", errUsage)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%w: --name %q: only letters, digits, - _ and . are allowed", errUsage, name)
		}
	}
	return nil
}

const signingKeyUsage = `Usage:
  hourglass signing-key create
      print a new webhook signing key (whsec_ and 32 random bytes in
      base64): add it to the server's --signing-keys-file and to the
      receivers' verification keys.
`

func runSigningKey(args []string, stdout, stderr io.Writer) error {
	return createKey("signing-key", signingKeyUsage, client.SigningKeyPrefix, args, stdout, stderr)
}

// createKey runs "hourglass GROUP create": it prints prefix and 32 random
// bytes in base64.
func createKey(group, usage, prefix string, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || args[0] != "create" {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: want %s create", errUsage, group)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("new %s: %w", group, err)
	}
	fmt.Fprintln(stdout, prefix+base64.StdEncoding.EncodeToString(key))
	return nil
}

// readSigningKeys reads --signing-keys-file: one whsec_ key a line, blank
// lines and # comments ignored. Every key signs every delivery.
func readSigningKeys(path string) ([][]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--signing-keys-file: %w", err)
	}
	var keys [][]byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := client.ParseSigningKey(line)
		if err != nil {
			return nil, fmt.Errorf("--signing-keys-file %s line %d: %w", path, i+1, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--signing-keys-file %s: no keys in it", path)
	}
	return keys, nil
}
