package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this command): replace this placeholder.
func newExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "not built yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("export: not built yet")
		},
	}
}
