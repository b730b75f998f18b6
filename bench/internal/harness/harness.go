// Package harness holds what the benchmark harnesses (bench/gwbench,
// bench/ikebench) share: an undo list for everything a run creates,
// bounded commands, namespace removal, and medians.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Run runs a harness: run with a context that SIGINT or SIGTERM cancels,
// then teardown whatever happened. Teardown does not get that context,
// and the signals stay caught until it is done, so that a second Ctrl-C
// cannot cut it short (each of its steps is bounded). An error from run
// is printed after prog's name and exits 1.
func Run(prog string, run func(context.Context) error, teardown func()) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	teardown()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, prog+":", err)
		os.Exit(1)
	}
}

// Undo is a list of what to undo at teardown, run last registered first.
type Undo struct {
	fs []func()
}

// AtExit registers f to run at teardown.
func (u *Undo) AtExit(f func()) { u.fs = append(u.fs, f) }

// Mark is where the list ends now, for PopTo.
func (u *Undo) Mark() int { return len(u.fs) }

// PopTo runs and forgets the entries registered after mark, so that a
// measurement cleans up after itself as soon as it is done.
func (u *Undo) PopTo(mark int) {
	for i := len(u.fs) - 1; i >= mark; i-- {
		u.fs[i]()
	}
	u.fs = u.fs[:mark]
}

// Teardown runs the whole list, last registered first.
func (u *Undo) Teardown() { u.PopTo(0) }

// Runner runs short commands for the harness named Prog.
type Runner struct {
	Prog    string // for messages: "gwbench", "ikebench"
	Verbose bool   // echo each command to standard error
}

// Cmd runs a short command, bounded to 30 s, in its own process group.
func (r *Runner) Cmd(ctx context.Context, args ...string) error {
	_, err := r.Output(ctx, 30*time.Second, args...)
	return err
}

// Output runs a command bounded to timeout and returns its standard
// output; on failure the error carries standard error too.
func (r *Runner) Output(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	if r.Verbose {
		fmt.Fprintln(os.Stderr, "+", strings.Join(args, " "))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// DelNS deletes a namespace the harness created, after warning about any
// process still in it (which it leaves alone: it is not known to be ours).
func (r *Runner) DelNS(ns string) {
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		fmt.Fprintf(os.Stderr, "%s: warning: processes still in %s: %s\n", r.Prog, ns, strings.Join(strings.Fields(string(out)), " "))
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: ip netns del %s: %v %s\n", r.Prog, ns, err, out)
	}
}

// Field is f of each of rs.
func Field[T any](rs []T, f func(T) float64) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return v
}

// Median is the median of v, 0 for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
