package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
)

// The bench drives the production binary as an operator would: a config file and a
// subcommand, in a child process. Nothing here reaches into its package main.

// child is a streamscore binary and the --log-level its runs get.
type child struct {
	bin      string
	logLevel string
}

func (p Plan) child() child {
	lvl := p.ChildLogLevel
	if lvl == "" {
		lvl = "error"
	}
	return child{bin: p.Binary, logLevel: lvl}
}

// writeConfig writes c, with an absolute model path, as dir/streamscore.yaml.
func writeConfig(c *config.Config, dir string) (string, error) {
	abs, err := filepath.Abs(c.Resolve(c.Model.Path))
	if err != nil {
		return "", err
	}
	cc := *c
	cc.Model.Path = abs
	b, err := yaml.Marshal(&cc)
	if err != nil {
		return "", fmt.Errorf("writing the child's config: %w", err)
	}
	path := filepath.Join(dir, "streamscore.yaml")
	return path, os.WriteFile(path, b, 0o600)
}

// startRun starts `streamscore run` with c. stop sends SIGTERM, waits for the child to
// drain and exit, and removes its config.
func (ch child) startRun(c *config.Config) (cmd *exec.Cmd, stop func(), err error) {
	dir, err := os.MkdirTemp("", "streamscore-bench")
	if err != nil {
		return nil, nil, err
	}
	cfg, err := writeConfig(c, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cmd = exec.Command(ch.bin, "run", "--config", cfg, "--log-level", ch.logLevel)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("starting %s run: %w", ch.bin, err)
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // the exit status of a drained child is not a measurement
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	return cmd, stop, nil
}

// backfill runs `streamscore backfill` of c's input topics into topic out, batches of 256,
// and returns its summary. Its rate is the child's own measurement, start-up excluded.
func (ch child) backfill(ctx context.Context, c *config.Config, out string) (*drivers.BackfillSummary, error) {
	dir, err := os.MkdirTemp("", "streamscore-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg, err := writeConfig(c, dir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, ch.bin, "backfill", "--config", cfg, "--out", "topic:"+out,
		"--batch-size", "256", "--json", "--log-level", ch.logLevel)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s backfill: %w\n%s", ch.bin, err, tail(stderr.Bytes(), 2000))
	}
	s, err := parseBackfillSummary(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s backfill: %w", ch.bin, err)
	}
	return s, nil
}

// parseBackfillSummary reads the summary line of `streamscore backfill --json`: the last
// line of its standard output that is not empty.
func parseBackfillSummary(stdout []byte) (*drivers.BackfillSummary, error) {
	lines := bytes.Split(bytes.TrimSpace(stdout), []byte("\n"))
	last := bytes.TrimSpace(lines[len(lines)-1])
	if len(last) == 0 {
		return nil, errors.New("no JSON summary on its standard output")
	}
	var s drivers.BackfillSummary
	if err := json.Unmarshal(last, &s); err != nil {
		return nil, fmt.Errorf("reading its JSON summary %q: %w", tail(last, 200), err)
	}
	if s.Seconds <= 0 || s.EventsPerSecond <= 0 {
		return nil, fmt.Errorf("its summary %s has no events/s", last)
	}
	return &s, nil
}

// tail returns at most the last n bytes of b, for error messages.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
