package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/agent"
)

func newStatusCmd() *cobra.Command {
	var (
		asJSON bool
		root   string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the first-boot record: phases done, result, error class, config source",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := agent.ReadStatus(root)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				data, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(w, string(data))
				return err
			}
			result := st.Result
			if result == "" {
				result = "not started"
			}
			fmt.Fprintf(w, "result:   %s\n", result)
			if st.ErrorClass != "" {
				fmt.Fprintf(w, "failed:   in %s, %s\nerror:    %s\n", st.Phase, st.ErrorClass, st.Error)
			}
			fmt.Fprintf(w, "role:     %s\nnode:     %s\nsource:   %s\nconfig:   sha256 %s\nruns:     %d\nkubeadm:  %d init or join started\n", st.Role, st.NodeName, st.Source, st.ConfigSHA256, st.Runs, st.KubeadmRuns)
			for _, p := range st.Phases {
				fmt.Fprintf(w, "phase:    %-11s done %s (%.1f s, from %.1f s after boot)\n", p.Name, p.Finished.Format("2006-01-02T15:04:05Z"), p.Seconds, p.SinceBoot)
			}
			for _, m := range st.Milestones {
				fmt.Fprintf(w, "reached:  %-18s %7.1f s after boot, run %d\n", m.Name, m.SinceBoot, m.Run)
			}
			if f := st.InitFinish; f != nil {
				state := "finishing"
				if !f.Finished.IsZero() {
					state = "finished " + f.Finished.Format("2006-01-02T15:04:05Z")
				}
				fmt.Fprintf(w, "init:     kubeadm left it unfinished (%s); the agent ran: %s; %s\n", f.Cause, strings.Join(f.Phases, ", "), state)
				if f.EtcdAfresh {
					fmt.Fprintf(w, "etcd:     started afresh: a cut had left its log with nothing committed\n")
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the record as JSON")
	cmd.Flags().StringVar(&root, "root", "/", "the node's root")
	cmd.Flags().MarkHidden("root")
	return cmd
}
