// Package doctor is `wactl doctor`: the seed runtime audit (service,
// sessions dir, lease, store, daemon, restart) as small named checks that
// run in parallel, each bounded by its own timeout, rendered as a
// checklist with evidence, a verdict and the exact commands that fix each
// failure. A check that panics or hangs is reported as failed; it never
// takes doctor down.
package doctor

import (
	"context"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// KV is one evidence value. Evidence is a list, not a map, so renderings
// keep the order the check chose.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Fix is one remedy: the commands an operator runs, and for the safe ones
// (never deleting anything) the function --fix applies.
type Fix struct {
	Summary  string   `json:"summary"`
	Commands []string `json:"commands"`
	// Auto: --fix can apply it.
	Auto  bool                            `json:"auto"`
	apply func(ctx context.Context) error `json:"-"`
}

// Result is what one check found.
type Result struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Status   Status   `json:"status"`
	Summary  string   `json:"summary"`
	Evidence []KV     `json:"evidence"`
	Blocking string   `json:"blocking"`
	Notes    []string `json:"notes"`
	Fixes    []Fix    `json:"fixes"`
	// Duration is how long the check ran.
	Duration time.Duration `json:"-"`
}

func (r *Result) add(k string, v any) { r.Evidence = append(r.Evidence, KV{k, fmt.Sprint(v)}) }

func (r *Result) note(format string, a ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, a...)) }

// set raises the status: fail beats warn beats ok; skip only from ok.
func (r *Result) set(s Status, summary string) {
	if rank(s) > rank(r.Status) || r.Status == "" {
		r.Status, r.Summary = s, summary
	}
}

func (r *Result) fail(blocking string) {
	r.set(Fail, blocking)
	if r.Blocking == "" {
		r.Blocking = blocking
	} else if !strings.Contains(r.Blocking, blocking) {
		r.Blocking += "; " + blocking
	}
}

func (r *Result) warn(summary string) { r.set(Warn, summary) }

func (r *Result) fix(f Fix) { r.Fixes = append(r.Fixes, f) }

func rank(s Status) int {
	switch s {
	case Fail:
		return 3
	case Warn:
		return 2
	case OK:
		return 1
	}
	return 0
}

// Check is one named check.
type Check struct {
	Name    string
	Title   string
	Timeout time.Duration // default 5 s
	// Network: needs the daemon or Firestore; skipped with --offline.
	Network bool
	Run     func(ctx context.Context, env *Env) Result
}

// DefaultTimeout bounds a check that sets none.
const DefaultTimeout = 5 * time.Second

// hangGrace is how long a check may overrun its context before it is
// reported as hung and abandoned.
const hangGrace = 250 * time.Millisecond

// Report is a whole doctor run.
type Report struct {
	Schema      int           `json:"schema"`
	Verdict     string        `json:"verdict"` // OK | PROBLEMS
	Blocking    []string      `json:"blocking"`
	Host        string        `json:"host"`
	InstanceID  string        `json:"instanceId"`
	GeneratedAt time.Time     `json:"generatedAt"`
	Offline     bool          `json:"offline"`
	Counts      Counts        `json:"counts"`
	Checks      []Result      `json:"checks"`
	Duration    time.Duration `json:"-"`
}

// Counts of check statuses.
type Counts struct {
	OK   int `json:"ok"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// SchemaVersion of the JSON report; bumped only on incompatible changes.
const SchemaVersion = 1

// Problems reports whether any check failed.
func (r *Report) Problems() bool { return r.Counts.Fail > 0 }

// Run runs checks in parallel and assembles the report in the order given.
func Run(ctx context.Context, env *Env, checks []Check) *Report {
	env.fill()
	start := env.Now()
	results := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		if env.Offline && c.Network {
			results[i] = Result{Name: c.Name, Title: c.Title, Status: Skip, Summary: "skipped: --offline", Evidence: []KV{}}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runOne(ctx, env, c)
		}()
	}
	wg.Wait()
	rep := &Report{Schema: SchemaVersion, Host: env.Hostname, InstanceID: env.instanceID(), GeneratedAt: start.UTC(),
		Offline: env.Offline, Checks: results, Blocking: []string{}}
	for _, r := range results {
		switch r.Status {
		case OK:
			rep.Counts.OK++
		case Warn:
			rep.Counts.Warn++
		case Fail:
			rep.Counts.Fail++
			rep.Blocking = append(rep.Blocking, r.Name+": "+r.Blocking)
		default:
			rep.Counts.Skip++
		}
	}
	rep.Verdict = "OK"
	if rep.Problems() {
		rep.Verdict = "PROBLEMS"
	}
	rep.Duration = env.Now().Sub(start)
	return rep
}

// runOne runs c with its timeout; a panic or an overrun becomes a failed
// result instead of taking the run down.
func runOne(ctx context.Context, env *Env, c Check) Result {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	done := make(chan Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				stack := string(debug.Stack())
				env.Logger.Error("doctor check panicked", "check", c.Name, "panic", p, "stack", stack)
				done <- Result{Status: Fail, Summary: fmt.Sprintf("check panicked: %v", p),
					Blocking: fmt.Sprintf("the check panicked (%v); this is a wactl bug, please report it", p)}
			}
		}()
		done <- c.Run(cctx, env)
	}()
	var r Result
	select {
	case r = <-done:
	case <-time.After(timeout + hangGrace):
		r = Result{Status: Fail, Summary: fmt.Sprintf("check hung: no answer within %s", timeout),
			Blocking: fmt.Sprintf("the check did not finish within %s", timeout)}
	}
	r.Name, r.Title, r.Duration = c.Name, c.Title, time.Since(start)
	if r.Status == "" {
		r.Status = OK
	}
	if r.Evidence == nil {
		r.Evidence = []KV{}
	}
	if r.Status == Fail && r.Blocking == "" {
		r.Blocking = r.Summary
	}
	return r
}

// Select keeps the checks whose name starts with one of prefixes (all when
// none is given), in their order.
func Select(checks []Check, prefixes []string) []Check {
	if len(prefixes) == 0 {
		return checks
	}
	var out []Check
	for _, c := range checks {
		for _, p := range prefixes {
			if c.Name == p || strings.HasPrefix(c.Name, p+".") {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// Names lists check names, sorted.
func Names(checks []Check) []string {
	out := make([]string, len(checks))
	for i, c := range checks {
		out[i] = c.Name
	}
	sort.Strings(out)
	return out
}
