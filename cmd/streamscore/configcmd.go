package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/internal/config"
)

func newConfigCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the configuration or list its environment variables"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the config (flags and STREAMSCORE_* applied) and print it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if _, err := c.Validate(config.Needs{Kafka: true, Model: true}); err != nil {
				return err
			}
			// Redacted: the password never reaches the terminal, whether it came from the
			// file, STREAMSCORE_SASL_PASSWORD or kafka.sasl.password_file.
			shown := c.Redacted()
			out, err := yaml.Marshal(&shown)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), string(out))
			return nil
		},
	}, &cobra.Command{
		Use:   "env",
		Short: "List the STREAMSCORE_* environment variables",
		Run: func(cmd *cobra.Command, _ []string) {
			for _, e := range config.EnvVars() {
				fmt.Fprintf(cmd.OutOrStdout(), "%-28s %s\n", e.Name, e.Help)
			}
		},
	})
	return cmd
}
