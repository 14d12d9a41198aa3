package main

import "github.com/spf13/cobra"

func newInspectCmd(_ *globalOptions) *cobra.Command { return &cobra.Command{Use: "inspect"} }
func newBootCmd(_ *globalOptions) *cobra.Command    { return &cobra.Command{Use: "boot"} }
func isBadImage(error) bool                          { return false }
