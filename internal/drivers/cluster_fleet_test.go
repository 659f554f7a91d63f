//go:build integration

package drivers

import (
	"bytes"
	"fmt"
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
	return newFleetOf(t, c, buildBinary(t))
}

// newFleetOf is a fleet running bin, which the caller built (once for several fleets); the
// logs go to STREAMSCORE_TEST_CLUSTER_LOGS, in a folder per subtest, or to a temporary one.
func newFleetOf(t *testing.T, c *config.Config, bin string) *fleet {
	t.Helper()
	f := &fleet{t: t, bin: bin, cfgs: map[string]string{}, logs: map[string]string{},
		running: map[string]*instance{}, c: c, logDir: os.Getenv("STREAMSCORE_TEST_CLUSTER_LOGS")}
	if f.logDir == "" {
		f.logDir = t.TempDir()
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(f.logDir, t.Name())), 0o755); err != nil {
		t.Fatal(err)
	}
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
		f.logs[name] = filepath.Join(f.logDir, f.t.Name()+"-"+name+".log")
	}
	logf, err := os.OpenFile(f.logs[name], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	in := &instance{cmd: startProcess(f.t, f.bin, f.cfgs[name], logf), done: make(chan error, 1)}
	go func() { in.done <- in.cmd.Wait() }()
	f.running[name] = in
	f.mark(name, fmt.Sprintf("started (pid %d)", in.cmd.Process.Pid))
}

// mark writes a line of the test's own into name's log, so that the log of several
// processes in turn reads as a timeline.
func (f *fleet) mark(name, what string) {
	logf, err := os.OpenFile(f.logs[name], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer logf.Close()
	if _, err := fmt.Fprintf(logf, "--- test, ts %.3f: %s %s\n", float64(time.Now().UnixMilli())/1000, name, what); err != nil {
		f.t.Fatal(err)
	}
}

// kill SIGKILLs instance name and reaps it.
func (f *fleet) kill(name string) {
	f.t.Helper()
	in := f.running[name]
	f.mark(name, "SIGKILL")
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
		f.mark(name, "SIGTERM")
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
		var lines [][]byte
		all := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
		for _, l := range all {
			if !bytes.Contains(l, []byte("unable to open connection to broker")) && !bytes.Contains(l, []byte("feedback partition is caught up")) {
				lines = append(lines, l)
			}
		}
		f.t.Logf("last lines of %s's log (%d lines in all; failed dials and silent label partitions left out; %s):\n%s",
			n, len(all), f.logs[n], bytes.Join(lines[max(0, len(lines)-40):], []byte("\n")))
	}
}
