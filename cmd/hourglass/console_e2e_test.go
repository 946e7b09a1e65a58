package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/hourglass-scheduler/hourglass/client"
)

// TestConsoleInBrowser drives the web console in headless Chromium against
// a running server: it loads each page, sees tasks created through the API
// appear, cancels one, reschedules one and redrives a dead one from the
// console (checked through the API), pauses a queue, and saves a
// screenshot of the overview (to $HOURGLASS_ARTIFACTS when set).
func TestConsoleInBrowser(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium-browser", "google-chrome")
	// Two groups: every page of the console reads across them.
	srv := startServer(t, t.TempDir(), freeAddr(t), "--groups", "2")
	c := client.New(srv.addr, "")
	ctx := context.Background()

	// A target that always fails, so one task dies after its one attempt.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such customer", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	rcv := newReceiver(t)
	var reqs []client.CreateTaskRequest
	for i := range 40 {
		reqs = append(reqs, client.CreateTaskRequest{Queue: "emails", Name: "welcome", Delay: fmt.Sprintf("%dm", 2+i%50), Payload: []byte(`{"to":"a@example.com"}`), Target: &client.Target{URL: rcv.URL}})
		reqs = append(reqs, client.CreateTaskRequest{Queue: "reports", Name: "nightly", Delay: fmt.Sprintf("%dm", 5+i), Target: &client.Target{URL: rcv.URL}})
	}
	for range 30 {
		reqs = append(reqs, client.CreateTaskRequest{Queue: "reports", Name: "now", Delay: "10ms", Target: &client.Target{URL: rcv.URL}})
	}
	createAll(t, c, reqs)
	cancelMe, err := c.CreateTask(ctx, client.CreateTaskRequest{ID: "cancel-me", Queue: "emails", Name: "<b>reminder</b>", Delay: "30m",
		Payload: []byte(`{"html":"<img src=x onerror=alert(1)>"}`), Target: &client.Target{URL: rcv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	moveMe, err := c.CreateTask(ctx, client.CreateTaskRequest{ID: "move-me", Queue: "emails", Delay: "30m", Target: &client.Target{URL: rcv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTask(ctx, client.CreateTaskRequest{ID: "dies", Queue: "billing", Delay: "10ms", MaxAttempts: 1, Target: &client.Target{URL: failing.URL}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the failing task to be dead", func() bool {
		task, err := c.GetTask(ctx, "dies")
		return err == nil && task.State == "dead"
	})
	waitFor(t, 30*time.Second, "the due tasks delivered", func() bool { ids, _ := rcv.count(); return ids >= 30 })

	browser := newBrowser(t, chromium)

	// Script errors and alerts fail the test (an alert would mean the
	// payload's HTML ran).
	var mu sync.Mutex
	var pageErrors []string
	chromedp.ListenTarget(browser, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			pageErrors = append(pageErrors, e.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				pageErrors = append(pageErrors, fmt.Sprintf("console.error %v", e.Args))
			}
		}
	})
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(browser, actions...); err != nil {
			var html string
			chromedp.Run(browser, chromedp.OuterHTML("main", &html, chromedp.ByQuery))
			t.Fatalf("%s: %v\npage: %.3000s", what, err, html)
		}
	}

	// Overview: cluster, tasks by queue and state, firing, forecast.
	var leader, queueTable, firing string
	var bars, xTicks, yTicks, rateCharts, rateTicks, groupRows int
	run("load the overview",
		chromedp.Navigate(srv.addr+"/"),
		chromedp.WaitVisible("#nodes tbody tr", chromedp.ByQuery),
		chromedp.WaitVisible("#groups tbody tr", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#groups tbody tr").length`, &groupRows),
		chromedp.Text("#leader", &leader, chromedp.ByQuery),
		chromedp.WaitVisible(`#queue-states`, chromedp.ByQuery),
		chromedp.Text("#queue-states", &queueTable, chromedp.ByQuery),
		chromedp.WaitVisible("#forecast svg rect.bar", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#forecast svg rect.bar").length`, &bars),
		// The second refresh (3 s) has a fire rate.
		chromedp.Poll(`document.querySelector("#firing-stats") && document.querySelector("#firing-stats").innerText.includes("/s")`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Text("#firing-stats", &firing, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#forecast svg .x-tick").length`, &xTicks),
		chromedp.Evaluate(`document.querySelectorAll("#forecast svg .y-tick").length`, &yTicks),
		// The charts of the last minutes need three samples (two rates).
		chromedp.Poll(`document.querySelectorAll("#rate-charts figure").length === 4`, nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Evaluate(`document.querySelectorAll("#rate-charts figure").length`, &rateCharts),
		chromedp.Evaluate(`document.querySelectorAll("#rate-charts svg .y-tick").length`, &rateTicks),
	)
	if leader != "node-1" {
		t.Errorf("overview leader = %q, want node-1", leader)
	}
	if groupRows != 2 {
		t.Errorf("the overview lists %d groups, want 2", groupRows)
	}
	for _, want := range []string{"emails", "reports", "billing"} {
		if !strings.Contains(queueTable, want) {
			t.Errorf("tasks by queue lacks %s:\n%s", want, queueTable)
		}
	}
	if bars != 60 {
		t.Errorf("the forecast has %d bars, want 60 (the next hour by minute)", bars)
	}
	if !strings.Contains(firing, "Fired since start") {
		t.Errorf("firing stats: %q", firing)
	}
	if xTicks != 6 || yTicks != 3 {
		t.Errorf("the forecast's axes have %d time labels and %d count labels, want 6 (every 10 minutes) and 3", xTicks, yTicks)
	}
	if rateCharts != 4 || rateTicks != 12 {
		t.Errorf("the last minutes: %d charts with %d axis labels, want 4 charts of 3", rateCharts, rateTicks)
	}
	var shot []byte
	run("screenshot the overview", chromedp.FullScreenshot(&shot, 100))
	saveArtifact(t, "console-overview.png", shot)

	// Tasks: the filter shows the API-created tasks; a task's page cancels
	// it.
	var detail string
	run("open the emails queue's tasks and cancel one",
		chromedp.Navigate(srv.addr+"/#/tasks?queue=emails"),
		chromedp.WaitVisible(`tr[data-id="cancel-me"]`, chromedp.ByQuery),
		chromedp.Click(`tr[data-id="cancel-me"] a`, chromedp.ByQuery),
		chromedp.WaitVisible("#task-fields", chromedp.ByQuery),
		chromedp.Text("#task", &detail, chromedp.ByQuery),
		chromedp.Click("#cancel", chromedp.ByQuery),
		chromedp.WaitVisible("#confirm-cancel-yes", chromedp.ByQuery),
		chromedp.Click("#confirm-cancel-yes", chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#task-fields").innerText.includes("cancelled")`, nil, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if !strings.Contains(detail, "<b>reminder</b>") || !strings.Contains(detail, `<img src=x onerror=alert(1)>`) {
		t.Errorf("the task's name and payload are not shown as text:\n%s", detail)
	}
	if task, err := c.GetTask(ctx, cancelMe.ID); err != nil || task.State != "cancelled" {
		t.Errorf("after cancelling from the console the API says %+v (%v)", task, err)
	}

	// Reschedule from the task's page.
	run("reschedule a task",
		chromedp.Navigate(srv.addr+"/#/tasks/move-me"),
		chromedp.WaitVisible("#reschedule-when", chromedp.ByQuery),
		chromedp.SendKeys("#reschedule-when", "3h", chromedp.ByQuery),
		chromedp.Click(`#reschedule button[type="submit"]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#notice").innerText.includes("rescheduled")`, nil, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if task, err := c.GetTask(ctx, moveMe.ID); err != nil || task.ExecuteAt.Sub(moveMe.ExecuteAt) < 2*time.Hour {
		t.Errorf("after rescheduling by 3h: execute_at %v, was %v (%v)", task.ExecuteAt, moveMe.ExecuteAt, err)
	}
	// A task's page leaves out what is not set.
	var fields string
	run("read a scheduled task's fields",
		chromedp.Navigate(srv.addr+"/#/tasks/move-me"),
		chromedp.WaitVisible("#task-fields", chromedp.ByQuery),
		chromedp.Text("#task-fields", &fields, chromedp.ByQuery),
	)
	for _, unset := range []string{"Name", "Next attempt", "Last error", "Result", "Fired", "Completed", "Lease expires", "Max lateness"} {
		if strings.Contains(fields, unset) {
			t.Errorf("a scheduled task without a name or attempts shows %q:\n%s", unset, fields)
		}
	}
	for _, set := range []string{"Id", "Queue", "State", "Due", "Attempts", "Target", "Created", "Version"} {
		if !strings.Contains(fields, set) {
			t.Errorf("a task's page lacks %q:\n%s", set, fields)
		}
	}

	// Redrive the dead task from the state filter.
	run("redrive a dead task",
		chromedp.Navigate(srv.addr+"/#/tasks?state=dead"),
		chromedp.WaitVisible(`tr[data-id="dies"]`, chromedp.ByQuery),
		chromedp.Navigate(srv.addr+"/#/tasks/dies"),
		chromedp.WaitVisible("#redrive", chromedp.ByQuery),
		chromedp.Click("#redrive", chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#notice").innerText.includes("scheduled again")`, nil, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if task, err := c.GetTask(ctx, "dies"); err != nil || task.Attempts != 1 || (task.State != "scheduled" && task.State != "running" && task.State != "dead") {
		t.Errorf("after redrive: %+v (%v)", task, err)
	}

	// Queues: the effective max attempts; pause one.
	var maxAttempts string
	run("pause a queue",
		chromedp.Navigate(srv.addr+"/#/queues"),
		chromedp.WaitVisible(`tr[data-queue="emails"] td.max-attempts`, chromedp.ByQuery),
		chromedp.Text(`tr[data-queue="emails"] td.max-attempts`, &maxAttempts, chromedp.ByQuery),
		chromedp.WaitVisible(`tr[data-queue="emails"] button.pause`, chromedp.ByQuery),
		chromedp.Click(`tr[data-queue="emails"] button.pause`, chromedp.ByQuery),
		chromedp.WaitVisible(`tr[data-queue="emails"] button.resume`, chromedp.ByQuery),
	)
	if q, err := c.GetQueue(ctx, "emails"); err != nil || !q.Paused {
		t.Errorf("after pausing from the console the API says %+v (%v)", q, err)
	}
	if maxAttempts != "5 (default)" {
		t.Errorf("max attempts of a queue that sets none: %q, want the default, 5", maxAttempts)
	}

	// Schedules: the list, a schedule's next runs in its zone and its
	// recent occurrences; pause one.
	if _, err := c.CreateSchedule(ctx, client.ScheduleRequest{ID: "nightly", Cron: "30 2 * * *", TimeZone: "Europe/Berlin",
		Task: &client.TaskTemplate{Queue: "reports", Target: &client.Target{URL: rcv.URL}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSchedule(ctx, client.ScheduleRequest{ID: "tick", Every: "1s", Task: &client.TaskTemplate{Queue: "ticks", Target: &client.Target{URL: rcv.URL}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "an occurrence of tick delivered", func() bool {
		s, err := c.GetSchedule(ctx, "tick")
		return err == nil && len(s.Recent) > 0 && s.Recent[len(s.Recent)-1].State == "succeeded"
	})
	var scheduleRows, nextRuns, occurrenceRows int
	var nightly string
	run("see the schedules and pause one",
		chromedp.Navigate(srv.addr+"/#/schedules"),
		chromedp.WaitVisible(`tr[data-schedule="tick"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#schedules tbody tr").length`, &scheduleRows),
		chromedp.Text(`tr[data-schedule="nightly"]`, &nightly, chromedp.ByQuery),
		chromedp.Click(`tr[data-schedule="tick"] a`, chromedp.ByQuery),
		chromedp.WaitVisible("#occurrences tbody tr", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#next-runs li").length`, &nextRuns),
		chromedp.Evaluate(`document.querySelectorAll("#occurrences tbody tr").length`, &occurrenceRows),
		chromedp.FullScreenshot(&shot, 100),
		chromedp.Click("#pause", chromedp.ByQuery),
		chromedp.WaitVisible("#resume", chromedp.ByQuery),
	)
	saveArtifact(t, "console-schedule.png", shot)
	if scheduleRows != 2 || !strings.Contains(nightly, "02:30:00+0") || !strings.Contains(nightly, "Europe/Berlin") {
		t.Errorf("the schedules page: %d rows; nightly's row %q, want its next run at 02:30 Berlin time", scheduleRows, nightly)
	}
	if nextRuns != 5 || occurrenceRows == 0 {
		t.Errorf("tick's page: %d next runs (want 5), %d occurrences", nextRuns, occurrenceRows)
	}
	if s, err := c.GetSchedule(ctx, "tick"); err != nil || !s.Paused {
		t.Errorf("after pausing from the console the API says %+v (%v)", s, err)
	}

	// Until the API answers, each card of the overview says it is loading
	// (here the API never answers).
	var loadingCards int
	run("see the overview loading",
		chromedp.Navigate(srv.addr+"/#/"),
		chromedp.WaitVisible("#nodes tbody tr", chromedp.ByQuery),
		chromedp.Evaluate(`window.api = () => new Promise(() => {}); route(); document.querySelectorAll("main section.card .loading").length`, &loadingCards),
	)
	if loadingCards != 5 {
		t.Errorf("%d of the overview's 5 cards say they are loading before the API answers", loadingCards)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(pageErrors) > 0 {
		t.Errorf("the console raised script errors:\n%s", strings.Join(pageErrors, "\n"))
	}
	t.Logf("console: overview, tasks, task, queues, schedules pages loaded; cancel, reschedule, redrive, pause done from the browser; %d-byte screenshot", len(shot))
}

// saveArtifact writes a test's output file to $HOURGLASS_ARTIFACTS (CI
// keeps it), or to the test's temporary directory.
func saveArtifact(t *testing.T, name string, data []byte) {
	t.Helper()
	dir := os.Getenv("HOURGLASS_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s", path)
}

// With --auth-token the console asks for the token, then works with it.
func TestConsoleSignsIn(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium-browser", "google-chrome")
	srv := startServer(t, t.TempDir(), freeAddr(t), "--auth-token", "console-secret")
	c := client.New(srv.addr, "console-secret")
	if _, err := c.CreateTask(context.Background(), client.CreateTaskRequest{ID: "behind-auth", Queue: "private", Delay: "1h", Target: &client.Target{URL: "http://127.0.0.1:9/"}}); err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t, chromium)
	var queues, signIn string
	if err := chromedp.Run(browser,
		chromedp.Navigate(srv.addr+"/"),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.Text("main", &signIn, chromedp.ByQuery),
		chromedp.SendKeys("#token", "console-secret", chromedp.ByQuery),
		chromedp.Click(`main form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#queue-states", chromedp.ByQuery),
		chromedp.Text("#queue-states", &queues, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if !strings.Contains(signIn, "--tokens-file") || !strings.Contains(signIn, "--auth-token") {
		t.Errorf("the sign-in page does not say where tokens come from: %q", signIn)
	}
	if !strings.Contains(queues, "private") {
		t.Errorf("after signing in the overview lacks the queue: %q", queues)
	}
}

// newBrowser starts headless Chromium for one test.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes may still write to their
	// profile for a moment after the browser is gone, and t.TempDir's
	// removal then fails the test. Removed here, retried, never failing.
	profile, err := os.MkdirTemp("", "hourglass-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(profile))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	browser, cancelTimeout := context.WithTimeout(browser, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelBrowser()
		cancelAlloc()
		for try := 0; try < 50 && os.RemoveAll(profile) != nil; try++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	return browser
}
