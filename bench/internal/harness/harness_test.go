package harness

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestUndo(t *testing.T) {
	var u Undo
	var ran []int
	for i := range 4 {
		u.AtExit(func() { ran = append(ran, i) })
	}
	m := u.Mark()
	u.AtExit(func() { ran = append(ran, 9) })
	u.AtExit(func() { ran = append(ran, 8) })
	u.PopTo(m)
	if !slices.Equal(ran, []int{8, 9}) || u.Mark() != 4 {
		t.Fatalf("PopTo ran %v, %d left", ran, u.Mark())
	}
	u.Teardown()
	u.Teardown()
	if !slices.Equal(ran, []int{8, 9, 3, 2, 1, 0}) {
		t.Fatalf("Teardown ran %v", ran)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		v    []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := slices.Clone(c.v)
		if got := Median(c.v); got != c.want || !slices.Equal(in, c.v) {
			t.Errorf("Median(%v) = %v (input now %v), want %v", in, got, c.v, c.want)
		}
	}
	if got := Field([]string{"a", "bcd"}, func(s string) float64 { return float64(len(s)) }); !slices.Equal(got, []float64{1, 3}) {
		t.Errorf("Field: %v", got)
	}
}

func TestRunnerOutput(t *testing.T) {
	r := &Runner{Prog: "test"}
	out, err := r.Output(context.Background(), 0, "echo", "hello")
	if err == nil {
		t.Errorf("a zero timeout ran the command: %q", out)
	}
	if out, err := r.Output(context.Background(), 5e9, "echo", "hello"); err != nil || out != "hello\n" {
		t.Errorf("echo: %q, %v", out, err)
	}
	if err := r.Cmd(context.Background(), "sh", "-c", "echo oops >&2; exit 3"); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("failing command: %v", err)
	}
}
