package main

// Fault tests with Docker: the nodes run as containers built FROM scratch
// around a static binary, on a network of their own, so a node can be cut
// off (docker network disconnect). Skipped, saying why, where Docker is
// not available.

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/internal/history"
)

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		t.Fatalf("docker %s: %s", strings.Join(args, " "), msg)
	}
	return strings.TrimSpace(string(out))
}

// requireDocker skips the test, with the reason, when there is no usable
// Docker daemon; with HOURGLASS_REQUIRE_DOCKER=1 (scripts/test.sh sets it
// where a docker command is installed, as on CI) it fails instead.
func requireDocker(t *testing.T) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("HOURGLASS_REQUIRE_DOCKER") == "1" {
		skip = t.Fatalf
	}
	if _, err := exec.LookPath("docker"); err != nil {
		skip("no docker command on this machine")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		skip("the Docker daemon is not reachable: %s", strings.TrimSpace(string(out)))
	}
}

// buildImage builds a FROM scratch image (deploy/Dockerfile) around a
// static build of this binary and returns its tag.
func buildImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "hourglass"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt") // empty is fine here
	for name, data := range map[string][]byte{"Dockerfile": dockerfile, "ca-certificates.crt": certs} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tag := fmt.Sprintf("hourglass-e2e:%d", rand.Uint32())
	docker(t, "build", "-q", "-t", tag, dir)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// dockerNet creates a network with a subnet of its own and returns its
// name and a function giving host n's address in it.
func dockerNet(t *testing.T) (string, func(int) string) {
	t.Helper()
	name := fmt.Sprintf("hg-e2e-%d", rand.Uint32())
	for tries := 0; ; tries++ {
		prefix := fmt.Sprintf("172.29.%d", 10+rand.IntN(240))
		out, err := exec.Command("docker", "network", "create", "--subnet", prefix+".0/24", name).CombinedOutput()
		if err == nil {
			t.Cleanup(func() { exec.Command("docker", "network", "rm", name).Run() })
			return name, func(n int) string { return fmt.Sprintf("%s.%d", prefix, 10+n) }
		}
		if tries == 5 {
			t.Fatalf("docker network create: %s", out)
		}
	}
}

// removeContainer removes a container with its anonymous volumes (the
// image declares VOLUME /data, so every container gets one) and fails the
// test if any of them is left behind.
func removeContainer(t *testing.T, name string) {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", `{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}`, name).Output()
	if err != nil {
		return // never started
	}
	exec.Command("docker", "rm", "-f", "-v", name).Run()
	for _, volume := range strings.Fields(string(out)) {
		if exec.Command("docker", "volume", "inspect", volume).Run() == nil {
			t.Errorf("container %s left its volume %s behind", name, volume)
			exec.Command("docker", "volume", "rm", "-f", volume).Run()
		}
	}
}

var receivedLine = regexp.MustCompile(`^(\S+) \S+ \S+ Task-Id=(\S+) Attempt=(\d+) .*Fencing-Token=(\d+)\.`)

// receivedByContainer parses what an "hourglass receive" container printed.
func receivedByContainer(t *testing.T, name string) map[string][]checkedDelivery {
	t.Helper()
	got := map[string][]checkedDelivery{}
	sc := bufio.NewScanner(strings.NewReader(docker(t, "logs", name)))
	for sc.Scan() {
		m := receivedLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("receiver line %q: %v", sc.Text(), err)
		}
		attempt, _ := strconv.Atoi(m[3])
		term, _ := strconv.Atoi(m[4])
		got[m[2]] = append(got[m[2]], checkedDelivery{at: at, attempt: attempt, term: term})
	}
	return got
}

// TestDockerLeaderPartition cuts the leader off from the others for 5 s
// while it fires, then reconnects it.
func TestDockerLeaderPartition(t *testing.T) {
	requireDocker(t)
	image := buildImage(t)
	network, ip := dockerNet(t)
	run := func(name string, n int, args ...string) {
		docker(t, append([]string{"run", "-d", "--name", name, "--network", network, "--ip", ip(n), "-p", "127.0.0.1::7070", image}, args...)...)
		t.Cleanup(func() { removeContainer(t, name) })
	}
	suffix := fmt.Sprint(rand.Uint32())
	receiver := "hg-recv-" + suffix
	run(receiver, 0, "receive", "--addr", "0.0.0.0:8080")
	var join []string
	for i := 1; i <= 3; i++ {
		join = append(join, ip(i)+":7072")
	}
	names := map[string]string{}
	addrs := map[string]string{}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		names[id] = "hg-" + id + "-" + suffix
		run(names[id], i, "server", "--node-id", id, "--raft-advertise", ip(i)+":7071",
			"--http-advertise", ip(i)+":7070", "--join", strings.Join(join, ","), "--bootstrap-expect", "3")
		addrs[id] = "http://" + docker(t, "port", names[id], "7070/tcp")
	}
	var info *client.ClusterInfo
	waitFor(t, 60*time.Second, "the containers' cluster ready", func() bool {
		for _, a := range addrs {
			if client.New(a, "").Ready(context.Background()) != nil {
				return false
			}
		}
		var err error
		info, err = client.New(addrs["n1"], "").Cluster(context.Background())
		return err == nil && info.Leader != nil
	})
	leader := info.Leader.ID
	var follower string
	for id := range addrs {
		if id != leader {
			follower = id
			break
		}
	}
	target := "http://" + ip(0) + ":8080/"
	hist := history.NewRecorder()
	due := createSpread(t, client.New(addrs[follower], "", client.WithTransport(hist.Transport)), "d", 2000, time.Now().Add(2*time.Second), 3*time.Millisecond, target)
	count := func() int { return len(receivedByContainer(t, receiver)) }
	waitFor(t, 30*time.Second, "firing under way", func() bool { return count() >= 300 })
	oldTerm := 0
	for _, ds := range receivedByContainer(t, receiver) {
		oldTerm = max(oldTerm, ds[0].term)
	}
	cut := time.Now()
	docker(t, "network", "disconnect", network, names[leader])
	time.Sleep(5 * time.Second)
	docker(t, "network", "connect", "--ip", ip(int(leader[1]-'0')), network, names[leader])
	waitFor(t, 60*time.Second, "every task delivered", func() bool { return count() >= len(due) })
	time.Sleep(time.Second)
	r := &checkedReceiver{got: receivedByContainer(t, receiver), hist: hist}
	for id, ds := range r.got {
		for _, d := range ds {
			hist.Delivered(id, d.at)
		}
	}
	r.verdict(t, "leader partitioned 5s (docker)", due, nil, cut, oldTerm)
}
