package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this command): replace this placeholder.
func newDecodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "decode",
		Short: "not built yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("decode: not built yet")
		},
	}
}
