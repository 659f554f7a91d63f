package drivers

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/config"
)

// instance is one `streamscore run` process of the fleet.
type instance struct {
	cmd  *exec.Cmd
	done chan error // receives cmd.Wait's outcome once
}

// reap waits for the process to exit. After a SIGKILL its status is the signal, or what
// it exited with before.
func (in *instance) reap() error { return <-in.done }

// fleet runs streamscore processes of one consumer group, each with its own instance_id
// (static membership, as a StatefulSet would: a restarted instance takes its partitions
// back at once) and so its own transactional id in exactly-once mode
// (<group>-<instance_id>), which fences the killed process it replaces. Each process logs
// to its own file, whose tail the test prints when it fails.
type fleet struct {
	t       *testing.T
	bin     string
	cfgs    map[string]string // instance name: its config file
	logs    map[string]string // instance name: its log file
	running map[string]*instance
	c       *config.Config
	logDir  string
}

func newFleet(t *testing.T, c *config.Config) *fleet {
	t.Helper()
	f := &fleet{t: t, bin: buildBinary(t), cfgs: map[string]string{}, logs: map[string]string{},
		running: map[string]*instance{}, c: c, logDir: t.TempDir()}
	t.Cleanup(func() {
		for _, in := range f.running {
			_ = in.cmd.Process.Kill()
			_ = in.reap()
		}
		if t.Failed() {
			f.printLogs()
		}
	})
	return f
}

// start starts instance name (a new process; its config is written on first use).
func (f *fleet) start(name string) {
	f.t.Helper()
	if _, ok := f.running[name]; ok {
		f.t.Fatalf("instance %s is already running", name)
	}
	if _, ok := f.cfgs[name]; !ok {
		cc := *f.c
		cc.InstanceID = name
		f.cfgs[name] = writeConfig(f.t, &cc)
		f.logs[name] = filepath.Join(f.logDir, name+".log")
	}
	logf, err := os.OpenFile(f.logs[name], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	in := &instance{cmd: startProcess(f.t, f.bin, f.cfgs[name], logf), done: make(chan error, 1)}
	go func() { in.done <- in.cmd.Wait() }()
	f.running[name] = in
}

// kill SIGKILLs instance name and reaps it.
func (f *fleet) kill(name string) {
	f.t.Helper()
	in := f.running[name]
	if err := in.cmd.Process.Kill(); err != nil {
		f.t.Fatal(err)
	}
	_ = in.reap()
	delete(f.running, name)
}

// stop sends SIGTERM to the named instances at once and requires each to exit cleanly
// (status 0) within two minutes: a graceful stop drains and commits.
func (f *fleet) stop(names ...string) {
	f.t.Helper()
	for _, name := range names {
		if err := f.running[name].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			f.t.Fatal(err)
		}
	}
	for _, name := range names {
		select {
		case err := <-f.running[name].done:
			delete(f.running, name)
			if err != nil {
				f.t.Fatalf("instance %s did not exit cleanly on SIGTERM: %v", name, err)
			}
		case <-time.After(2 * time.Minute):
			f.t.Fatalf("instance %s did not exit within 2 minutes of SIGTERM", name)
		}
	}
}

// check fails the test when a running instance exited by itself: the fleet is to ride out
// every fault it is put through without a supervisor restarting it.
func (f *fleet) check() {
	f.t.Helper()
	for name, in := range f.running {
		select {
		case err := <-in.done:
			delete(f.running, name)
			f.t.Fatalf("instance %s exited by itself: %v (its log is printed below)", name, err)
		default:
		}
	}
}

// printLogs logs the last lines of each instance's log.
func (f *fleet) printLogs() {
	names := make([]string, 0, len(f.logs))
	for n := range f.logs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(f.logs[n])
		if err != nil {
			f.t.Logf("log of %s: %v", n, err)
			continue
		}
		lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
		f.t.Logf("last lines of %s's log (%d lines in all):\n%s", n, len(lines), bytes.Join(lines[max(0, len(lines)-40):], []byte("\n")))
	}
}
