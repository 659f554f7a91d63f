// Command streamscore scores Kafka event streams with ONNX models: live (run), as a bounded
// replay (backfill), as a training-set export (export, features), and as a self-contained demo on
// an embedded broker (demo). This package only parses flags, loads the config and wires
// the drivers; the logic lives in internal/drivers and the packages below it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "streamscore:", err)
		os.Exit(1)
	}
}

// run turns SIGINT and SIGTERM into a canceled context (a graceful drain) and runs the
// command; it returns before main exits, so the signal handler is always released.
func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return newRoot().ExecuteContext(ctx)
}

// globalFlags are shared by every subcommand.
type globalFlags struct {
	config   string
	brokers  string
	logLevel string
}

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "streamscore",
		Short:         "Score Kafka event streams with ONNX models",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.config, "config", "", "YAML config file (default: ./streamscore.yaml when present)")
	root.PersistentFlags().StringVar(&g.brokers, "brokers", "", "Kafka brokers host:port,... (overrides config and STREAMSCORE_BROKERS)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error")
	root.AddCommand(newRunCmd(g), newProduceCmd(g), newTailCmd(g), newDemoCmd(g), newFeaturesCmd(g), newConfigCmd(g), newBackfillCmd(g), newExportCmd(g), newVerifyCmd(g), newModelCmd(g), newExperimentCmd(g), newDriftCmd(g), newExplainCmd(g))
	return root
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// prepare loads the config the flags point at, validates it for a command that talks to
// Kafka (and scores, with config.NeedModel) and builds its logger.
func (g *globalFlags) prepare(model config.ModelNeed) (*config.Compiled, *zap.Logger, error) {
	c, err := g.load()
	if err != nil {
		return nil, nil, err
	}
	return c.Prepare(config.Needs{Kafka: true, Model: model == config.NeedModel})
}

// load reads the config the flags point at and applies flag overrides.
func (g *globalFlags) load() (*config.Config, error) {
	return config.LoadCommandLine(config.CommandLine{Path: g.config, Brokers: g.brokers, LogLevel: g.logLevel})
}
