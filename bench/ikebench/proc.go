package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// responder is a running responder, whichever the implementation.
type responder interface {
	// pid is the responder's process, for its CPU time.
	pid() int
	// established counts the IKE SAs with their child SA it has set up.
	established(ctx context.Context) (uint64, error)
	// stop stops it by PID.
	stop() error
}

// proc is a child process the harness started and stops by PID.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // its exit status, once done
	log  string        // where its output goes
}

// start runs args in the background, its output to a log file; the child
// gets SIGKILL if the harness dies (Pdeathsig), and runs in its own
// process group so that a Ctrl-C reaches only the harness. Every program
// in args must exec the next (taskset, ip netns exec, unshare, env, sh
// -c exec), so that the PID is the final program's.
// stdin and stdout, if not nil, are the child's ends of pipes, closed here
// once the child has them.
func (b *bench) start(name string, args []string, stdin, stdout *os.File) (*proc, error) {
	if b.opt.verbose {
		fmt.Fprintln(os.Stderr, "+", strings.Join(args, " "), "&")
	}
	p := &proc{done: make(chan struct{}), log: filepath.Join(b.dir, name+".log")}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stderr, p.cmd.Stdout = f, f
	if stdin != nil {
		p.cmd.Stdin = stdin
	}
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	err = p.cmd.Start()
	for _, c := range []*os.File{stdin, stdout} {
		if c != nil {
			c.Close()
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("pid %d did not stop within %v of SIGTERM; killed", p.pid(), grace)
}

// tail is the end of the process's log, for error messages.
func (p *proc) tail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// espxResp is the espx responder process.
type espxResp struct {
	p     *proc
	in    *os.File
	lines chan string
}

// startEspx runs the espx responder on cpus in the responder namespace and
// waits until it listens.
func (b *bench) startEspx(ctx context.Context, cpus []int) (*espxResp, error) {
	args := []string{"taskset", "-c", cpuList(cpus), "ip", "netns", "exec", b.tp.resp, b.self, "responder",
		"-initiators", strconv.Itoa(b.opt.initiators), "-psk", hex.EncodeToString(b.psk)}
	if b.opt.verbose {
		args = append(args, "-v")
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	p, err := b.start("espx", args, inR, outW)
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	e := &espxResp{p: p, in: inW, lines: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			e.lines <- sc.Text()
		}
		close(e.lines)
		outR.Close()
	}()
	b.AtExit(func() {
		if err := e.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "ikebench: espx responder:", err)
		}
	})
	select {
	case l := <-e.lines:
		if l == "ready" {
			return e, nil
		}
		return nil, fmt.Errorf("espx responder said %q\n%s", l, p.tail())
	case <-p.done:
		return nil, fmt.Errorf("espx responder exited: %v\n%s", p.err, p.tail())
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("espx responder not ready after 10 s\n%s", p.tail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *espxResp) pid() int { return e.p.pid() }

func (e *espxResp) established(ctx context.Context) (uint64, error) {
	if _, err := io.WriteString(e.in, "count\n"); err != nil {
		return 0, fmt.Errorf("espx responder: %w", err)
	}
	select {
	case l, ok := <-e.lines:
		if !ok {
			return 0, fmt.Errorf("espx responder exited: %v\n%s", e.p.err, e.p.tail())
		}
		var tunnels, failed, authFailed, refused, retrans uint64
		if _, err := fmt.Sscan(l, &tunnels, &failed, &authFailed, &refused, &retrans); err != nil {
			return 0, fmt.Errorf("espx responder said %q: %w", l, err)
		}
		if failed+authFailed+refused > 0 {
			return tunnels, fmt.Errorf("espx responder: %d installs failed, %d authentications failed, %d IKE_SA_INIT refused or cookied",
				failed, authFailed, refused)
		}
		return tunnels, nil
	case <-time.After(10 * time.Second):
		return 0, errors.New("espx responder did not answer within 10 s")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// stop closes the responder's input, which ends it, and falls back to
// signals by PID.
func (e *espxResp) stop() error {
	e.in.Close()
	select {
	case <-e.p.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	return e.p.stop(5 * time.Second)
}
