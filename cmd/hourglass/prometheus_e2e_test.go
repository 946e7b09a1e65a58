package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// TestPrometheusScrapesCluster runs a real Prometheus against a three-node
// cluster, with deploy/prometheus/alerts.yml loaded: every node is
// scraped (up == 1), the lateness histogram has data, each alert rule
// evaluates without error, every metric the rules and the Grafana
// dashboard name exists, and a killed node shows up == 0.
func TestPrometheusScrapesCluster(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	nodes := startCluster(t)
	rcv := newReceiver(t)
	c := client.New(nodes[0].addr(), "")
	const tasks = 50
	reqs := make([]client.CreateTaskRequest, tasks)
	for i := range reqs {
		reqs[i] = client.CreateTaskRequest{Queue: "prom", Delay: "300ms", Target: &client.Target{URL: rcv.URL}}
	}
	createAll(t, c, reqs)
	waitFor(t, 30*time.Second, "every task delivered", func() bool { ids, _ := rcv.count(); return ids == tasks })

	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, n := range nodes {
		targets = append(targets, strconv.Quote(strings.TrimPrefix(n.addr(), "http://")))
	}
	config := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: hourglass
    static_configs: [{targets: [%s]}]
`, rules, strings.Join(targets, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddr(t)
	prom := exec.Command(promBin, "--config.file", filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path", filepath.Join(dir, "data"), "--web.listen-address", promAddr)
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	prom.Stdout, prom.Stderr = logFile, logFile
	prom.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prom.Process.Kill(); prom.Wait() })
	api := &promAPI{t: t, base: "http://" + promAddr, logPath: logPath}

	// Every node scraped and up.
	waitForQuery(t, api, 60*time.Second, `up{job="hourglass"} == 1`, func(r []promSample) bool { return len(r) == 3 })
	// The lateness histogram holds every fire (on the leader).
	waitForQuery(t, api, 30*time.Second, `sum(hourglass_fire_lateness_seconds_count{job="hourglass"})`, func(r []promSample) bool {
		return len(r) == 1 && r[0].value >= tasks
	})
	p99 := api.query(`histogram_quantile(0.99, sum(hourglass_fire_lateness_seconds_bucket{job="hourglass"}) by (le))`)
	if len(p99) != 1 || p99[0].value != p99[0].value { // NaN when empty
		t.Fatalf("lateness p99 over the histogram: %v", p99)
	}
	t.Logf("prometheus: 3 nodes up, %d fires, lateness p99 by the histogram %.3fs", tasks, p99[0].value)

	// Every alert rule evaluated against the real series without error.
	waitFor(t, 30*time.Second, "every alert rule evaluated", func() bool {
		health := api.ruleHealth()
		ok := len(health) == 6
		for _, h := range health {
			ok = ok && h == "ok"
		}
		return ok
	})
	// Every metric the rules and the dashboard name is exported, and each
	// of the dashboard's queries runs.
	dashboard := filepath.Join("..", "..", "deploy", "grafana", "hourglass.json")
	for _, name := range metricNames(t, rules, dashboard) {
		if got := api.query(fmt.Sprintf(`count({__name__=%q, job="hourglass"})`, name)); len(got) == 0 {
			t.Errorf("metric %s, named by the alert rules or the dashboard, is not exported by any node", name)
		}
	}
	for _, expr := range dashboardQueries(t, dashboard) {
		if err := api.check(expr); err != nil {
			t.Errorf("dashboard query %s: %v", expr, err)
		}
	}
	// Nobody leads twice, somebody leads.
	if got := api.query(`sum(hourglass_raft_leader{job="hourglass"})`); len(got) != 1 || got[0].value != 1 {
		t.Errorf("sum of hourglass_raft_leader = %v, want 1", got)
	}

	// A node killed shows as down.
	nodes[2].srv.kill()
	waitForQuery(t, api, 30*time.Second, `up{job="hourglass"} == 0`, func(r []promSample) bool {
		return len(r) == 1 && r[0].labels["instance"] == strings.TrimPrefix(nodes[2].addr(), "http://")
	})
}

// metricNames lists the hourglass_* metric names in the given files.
func metricNames(t *testing.T, files ...string) []string {
	t.Helper()
	name := regexp.MustCompile(`\bhourglass_[a-z_]+\b`)
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(data), -1) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if len(names) < 5 {
		t.Fatalf("only %d metric names in %v", len(names), files)
	}
	return names
}

// dashboardQueries returns the Grafana dashboard's queries with its
// variables filled in.
func dashboardQueries(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard %s: %v", path, err)
	}
	fill := strings.NewReplacer("$job", "hourglass", "$__rate_interval", "1m")
	var exprs []string
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			exprs = append(exprs, fill.Replace(target.Expr))
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("dashboard %s: only %d queries", path, len(exprs))
	}
	return exprs
}

type promAPI struct {
	t       *testing.T
	base    string
	logPath string
}

type promSample struct {
	labels map[string]string
	value  float64
}

// get calls a Prometheus API path and decodes the answer's data into data
// (nil: only checks that it succeeded), or returns Prometheus's error.
func (p *promAPI) get(path string, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("%s: %w", resp.Status, err)
	}
	if out.Status != "success" {
		return fmt.Errorf("%s: %s", resp.Status, out.Error)
	}
	if data == nil {
		return nil
	}
	return json.Unmarshal(out.Data, data)
}

// query runs an instant query; nil while Prometheus is not answering.
func (p *promAPI) query(q string) []promSample {
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil
	}
	var samples []promSample
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			p.t.Fatalf("query %s: value %v", q, r.Value)
		}
		samples = append(samples, promSample{labels: r.Metric, value: v})
	}
	return samples
}

// check runs an instant query and returns Prometheus's error, if any.
func (p *promAPI) check(q string) error {
	return p.get("/api/v1/query?query="+url.QueryEscape(q), nil)
}

// ruleHealth maps each loaded rule's name to its health ("ok" once it
// evaluated without error).
func (p *promAPI) ruleHealth() map[string]string {
	var data struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", &data); err != nil {
		return nil
	}
	health := map[string]string{}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			health[r.Name] = r.Health
			if r.LastError != "" {
				p.t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	return health
}

func waitForQuery(t *testing.T, api *promAPI, within time.Duration, q string, ok func([]promSample) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := api.query(q)
		if ok(got) {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(api.logPath)
			t.Fatalf("after %v, %s = %v\nprometheus log:\n%s", within, q, got, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
