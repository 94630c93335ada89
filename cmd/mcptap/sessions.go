package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this command): replace this placeholder.
func newSessionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sessions",
		Short: "not built yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("sessions: not built yet")
		},
	}
}
