package recurrence

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, rule Rule) *Recurrence {
	t.Helper()
	r, err := Parse(rule, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("Parse(%+v): %v", rule, err)
	}
	return r
}

// runs lists the runs of rule in [from, to) as RFC 3339 with the zone's
// offset.
func runs(t *testing.T, rule Rule, from, to time.Time) []string {
	t.Helper()
	r := mustParse(t, rule)
	var out []string
	for next, ok := r.Next(from.Add(-time.Nanosecond)); ok && next.Before(to); next, ok = r.Next(next) {
		out = append(out, next.Format(time.RFC3339))
		if len(out) > 1000 {
			t.Fatal("runaway")
		}
	}
	return out
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// Daily runs across the real transitions of 2026 in three zones: a
// local time the clocks skip does not run that day; one they repeat runs
// once, before the change.
func TestDailyRunsAcrossDaylightSaving(t *testing.T) {
	for _, c := range []struct {
		name, zone, cron string
		day              [3]int // the transition's date
		want             []string
	}{
		{"New York, spring forward, skipped time", "America/New_York", "30 2 * * *", [3]int{2026, 3, 8},
			[]string{"2026-03-07T02:30:00-05:00", "2026-03-09T02:30:00-04:00"}},
		{"New York, spring forward, time after it", "America/New_York", "30 3 * * *", [3]int{2026, 3, 8},
			[]string{"2026-03-07T03:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-09T03:30:00-04:00"}},
		{"New York, fall back, repeated time", "America/New_York", "30 1 * * *", [3]int{2026, 11, 1},
			[]string{"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"Berlin, spring forward, skipped time", "Europe/Berlin", "15 2 * * *", [3]int{2026, 3, 29},
			[]string{"2026-03-28T02:15:00+01:00", "2026-03-30T02:15:00+02:00"}},
		{"Berlin, fall back, repeated time", "Europe/Berlin", "15 2 * * *", [3]int{2026, 10, 25},
			[]string{"2026-10-24T02:15:00+02:00", "2026-10-25T02:15:00+02:00", "2026-10-26T02:15:00+01:00"}},
		// Lord Howe Island moves its clocks by 30 minutes: at 02:00 to
		// 02:30 on the first Sunday of October, at 02:00 back to 01:30 on
		// the first Sunday of April.
		{"Lord Howe, spring forward, skipped time", "Australia/Lord_Howe", "15 2 * * *", [3]int{2026, 10, 4},
			[]string{"2026-10-03T02:15:00+10:30", "2026-10-05T02:15:00+11:00"}},
		{"Lord Howe, spring forward, just after", "Australia/Lord_Howe", "30 2 * * *", [3]int{2026, 10, 4},
			[]string{"2026-10-03T02:30:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-05T02:30:00+11:00"}},
		{"Lord Howe, fall back, repeated time", "Australia/Lord_Howe", "45 1 * * *", [3]int{2026, 4, 5},
			[]string{"2026-04-04T01:45:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
		{"Lord Howe, fall back, time before it", "Australia/Lord_Howe", "15 1 * * *", [3]int{2026, 4, 5},
			[]string{"2026-04-04T01:15:00+11:00", "2026-04-05T01:15:00+11:00", "2026-04-06T01:15:00+10:30"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			loc := zone(t, c.zone)
			from := time.Date(c.day[0], time.Month(c.day[1]), c.day[2]-1, 0, 0, 0, 0, loc)
			to := time.Date(c.day[0], time.Month(c.day[1]), c.day[2]+2, 0, 0, 0, 0, loc)
			equal(t, c.cron, runs(t, Rule{Cron: c.cron, TimeZone: c.zone}, from, to), c.want)
		})
	}
}

// An hourly expression runs 23 times on a spring-forward day and 24 on a
// fall-back day (each wall-clock time once), at instants that only ever
// increase.
func TestHourlyAcrossDaylightSaving(t *testing.T) {
	loc := zone(t, "America/New_York")
	for _, c := range []struct {
		day   int
		month time.Month
		want  int
	}{{8, time.March, 23}, {1, time.November, 24}, {2, time.November, 24}} {
		from := time.Date(2026, c.month, c.day, 0, 0, 0, 0, loc)
		to := time.Date(2026, c.month, c.day+1, 0, 0, 0, 0, loc)
		got := runs(t, Rule{Cron: "@hourly", TimeZone: "America/New_York"}, from, to)
		if len(got) != c.want {
			t.Errorf("%s %d: %d runs, want %d: %v", c.month, c.day, len(got), c.want, got)
		}
	}
	// Every 15 minutes on Lord Howe's fall-back day: 01:30 to 01:59 happen
	// twice, and run once.
	from := time.Date(2026, 4, 5, 1, 0, 0, 0, zone(t, "Australia/Lord_Howe"))
	got := runs(t, Rule{Cron: "*/15 * * * *", TimeZone: "Australia/Lord_Howe"}, from, from.Add(2*time.Hour+time.Second))
	equal(t, "*/15 on Lord Howe's fall-back", got, []string{
		"2026-04-05T01:00:00+11:00", "2026-04-05T01:15:00+11:00", "2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00",
		"2026-04-05T02:00:00+10:30", "2026-04-05T02:15:00+10:30", "2026-04-05T02:30:00+10:30",
	})
}

func TestSecondsAndMacros(t *testing.T) {
	from := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	equal(t, "seconds", runs(t, Rule{Cron: "*/20 * * * * *"}, from, from.Add(time.Minute)),
		[]string{"2026-06-01T12:00:00Z", "2026-06-01T12:00:20Z", "2026-06-01T12:00:40Z"})
	equal(t, "@daily in Tokyo", runs(t, Rule{Cron: "@daily", TimeZone: "Asia/Tokyo"}, from, from.Add(48*time.Hour)),
		[]string{"2026-06-02T00:00:00+09:00", "2026-06-03T00:00:00+09:00"})
}

func TestEveryCountsRealTimeFromItsAnchor(t *testing.T) {
	created := time.Date(2026, 11, 1, 5, 0, 0, 400, time.UTC) // 01:00 EDT, just before the fall back
	r, err := Parse(Rule{Every: time.Hour, TimeZone: "America/New_York"}, created, created)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, at := range r.NextN(created, 3) {
		got = append(got, at.Format(time.RFC3339))
	}
	// Whole hours of real time, through the repeated hour.
	equal(t, "every 1h", got, []string{"2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"})
	if first, _ := r.Next(created.Add(-time.Hour)); !first.Equal(created.Truncate(time.Second)) {
		t.Errorf("first run %v, want the anchor %v", first, created.Truncate(time.Second))
	}
}

func TestStartAndEndBoundTheRuns(t *testing.T) {
	start := time.Date(2026, 6, 1, 0, 0, 30, 0, time.UTC)
	end := time.Date(2026, 6, 1, 0, 3, 0, 0, time.UTC)
	got := runs(t, Rule{Cron: "* * * * *", StartAt: start, EndAt: end}, start.Add(-time.Hour), end.Add(time.Hour))
	equal(t, "cron in [start, end)", got, []string{"2026-06-01T00:01:00Z", "2026-06-01T00:02:00Z"})
	got = runs(t, Rule{Every: time.Minute, StartAt: start, EndAt: end}, start.Add(-time.Hour), end.Add(time.Hour))
	equal(t, "every from start", got, []string{"2026-06-01T00:00:30Z", "2026-06-01T00:01:30Z", "2026-06-01T00:02:30Z"})
}

func TestBadRulesNameTheirField(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		rule  Rule
		field string
	}{
		{Rule{Cron: "61 * * * *"}, "cron"},
		{Rule{Cron: "* * *"}, "cron"},
		{Rule{Cron: "@every 5m"}, "cron"},
		{Rule{Cron: "CRON_TZ=Europe/Berlin 0 3 * * *"}, "cron"},
		{Rule{Cron: "0 0 30 2 *"}, "cron"}, // never matches
		{Rule{}, "cron"},
		{Rule{Every: 500 * time.Millisecond}, "every"},
		{Rule{Every: 1500 * time.Millisecond}, "every"},
		{Rule{Every: -time.Minute}, "every"},
		{Rule{Cron: "@daily", Every: time.Hour}, "every"},
		{Rule{Cron: "@daily", TimeZone: "Mars/Olympus_Mons"}, "time_zone"},
		{Rule{Cron: "@daily", TimeZone: "Local"}, "time_zone"},
		{Rule{Cron: "@daily", TimeZone: "../../etc/passwd"}, "time_zone"},
		{Rule{Cron: "@daily", TimeZone: "/etc/localtime"}, "time_zone"},
		{Rule{Cron: "0 0 30 2 *", EndAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, "cron"}, // never, bounds or not
		{Rule{Cron: "@daily", StartAt: now, EndAt: now}, "end_at"},
		{Rule{Cron: "@daily", EndAt: now.Add(-time.Hour)}, "end_at"},
		{Rule{Cron: "0 0 1 1 *", StartAt: now, EndAt: now.Add(24 * time.Hour)}, "end_at"}, // no run inside
	} {
		_, err := Parse(c.rule, now, now)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: got %v, want an error naming %s", c.rule, err, c.field)
		}
	}
}

func TestOccurrenceIDAndJitterAreStable(t *testing.T) {
	at := time.Date(2026, 11, 1, 1, 30, 0, 0, zone(t, "America/New_York"))
	if got, want := OccurrenceID("nightly", at), "nightly@20261101T053000Z"; got != want {
		t.Errorf("OccurrenceID = %q, want %q", got, want)
	}
	if got := len(OccurrenceID("x", at)) - 1; got != OccurrenceIDLen {
		t.Errorf("OccurrenceIDLen %d, ids are %d longer", OccurrenceIDLen, got)
	}
	if id, when, ok := ParseOccurrenceID(OccurrenceID("a:b", at)); !ok || id != "a:b" || !when.Equal(at) {
		t.Errorf("ParseOccurrenceID of its own id = %q %v %v", id, when, ok)
	}
	for _, bad := range []string{"nightly", "@20261101T053000Z", "nightly@2026", "nightly@20261101T053000"} {
		if _, _, ok := ParseOccurrenceID(bad); ok {
			t.Errorf("ParseOccurrenceID(%q) took it for an occurrence", bad)
		}
	}
	max := 10 * time.Minute
	seen := map[time.Duration]bool{}
	for i := range 100 {
		occ := at.Add(time.Duration(i) * time.Hour)
		j := Jitter("nightly", occ, max)
		if j < 0 || j >= max {
			t.Fatalf("jitter %v outside [0, %v)", j, max)
		}
		if again := Jitter("nightly", occ.UTC(), max); again != j {
			t.Fatalf("jitter of one occurrence: %v, then %v", j, again)
		}
		seen[j] = true
	}
	if len(seen) < 90 {
		t.Errorf("100 occurrences got only %d distinct jitters", len(seen))
	}
	if Jitter("nightly", at, 0) != 0 {
		t.Error("jitter without a maximum")
	}
}

// FuzzParse: any expression and zone either is refused naming a field or
// gives runs that are strictly later each time, within the bounds.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"30 2 * * *", "*/15 * * * *", "@hourly", "0 0 29 2 *", "*/20 * * * * *", "0 0 30 2 *", "1-5/2 3,4 ? * MON-FRI"} {
		f.Add(seed, "America/New_York", int64(0))
		f.Add(seed, "Australia/Lord_Howe", int64(90))
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr, tz string, every int64) {
		rule := Rule{Cron: expr, TimeZone: tz, Every: time.Duration(every) * time.Second}
		r, err := Parse(rule, now, now)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("%+v: error names no field: %v", rule, err)
			}
			return
		}
		prev := now
		for _, at := range r.NextN(now, 20) {
			if !at.After(prev) {
				t.Fatalf("%+v: run %v not after %v", rule, at, prev)
			}
			prev = at
		}
	})
}
