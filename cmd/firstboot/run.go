package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/agent"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/configsource"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
)

func newRunCmd() *cobra.Command {
	var (
		joinDeadline, fetchDeadline time.Duration
		src                         configsource.Env
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Configure this node (what firstboot.service runs on every boot)",
		Long: "run reads the record in " + agent.StatusPath + ": a configured node exits at once;\n" +
			"otherwise it finds the Ignition config (sources in order: kernel argument\n" +
			"ignition.config.url=, QEMU fw_cfg, a config drive, AWS, GCP, Azure, the\n" +
			"baked " + configsource.BakedPath + "), validates it, applies it, and runs kubeadm.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(agent.NewJournalHandler(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
			run := &command.Runner{Log: log}
			src.Root, src.Log, src.Deadline = "/", log, fetchDeadline
			a := &agent.Agent{
				Root:         "/",
				Sources:      &src,
				Node:         &agent.LiveNode{Root: "/", Run: run, Kubeadm: &kubeadm.Kubeadm{Run: run}},
				Runner:       run,
				Fetch:        &ignitioncfg.Fetcher{Log: log, Deadline: fetchDeadline},
				Log:          log,
				Notify:       agent.SystemdNotifier{},
				Console:      os.Stdout,
				JoinDeadline: joinDeadline,
			}
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&joinDeadline, "join-deadline", time.Hour, "how long a join retries while the control plane is unreachable")
	f.DurationVar(&fetchDeadline, "fetch-deadline", 5*time.Minute, "how long each network source and remote file is retried")
	f.StringVar(&src.AWSBase, "aws-metadata-url", "", "AWS instance metadata base URL (default http://169.254.169.254)")
	f.StringVar(&src.GCPBase, "gcp-metadata-url", "", "GCP metadata base URL (default http://metadata.google.internal)")
	f.StringVar(&src.AzureBase, "azure-metadata-url", "", "Azure IMDS base URL (default http://169.254.169.254)")
	return cmd
}
