package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this command): replace this placeholder.
func newReportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report",
		Short: "not built yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("report: not built yet")
		},
	}
}
