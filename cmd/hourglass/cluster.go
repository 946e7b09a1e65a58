package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

const clusterUsage = `Usage:
  hourglass cluster members        list the cluster's nodes
  hourglass cluster groups         list the cluster's raft groups: leader, replicas, slots, tasks, lag
  hourglass cluster remove ID      take a node out of the cluster
`

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, err := subcommand("cluster", clusterUsage, args, stderr)
	if err != nil {
		return err
	}
	server := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON rather than a table")
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := server.connect()
	if err != nil {
		return err
	}
	switch args[0] {
	case "members":
		if len(rest) > 0 {
			return fmt.Errorf("%w: cluster members takes no arguments", errUsage)
		}
		info, err := c.Cluster(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, info)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tALIVE\tHTTP\tRAFT\tGOSSIP")
		for _, n := range info.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", n.ID, n.State, n.Alive, n.HTTPAddr, n.RaftAddr, n.GossipAddr)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "group 1: term %d, commit index %d, applied index %d (as %s sees it; hourglass cluster groups shows every group)\n", info.Term, info.CommitIndex, info.AppliedIndex, server.addr)
		if len(info.Nodes) > 1 {
			fmt.Fprintln(stdout, "ALIVE: the node answers gossip probes; one that stops shows false after 5-6 s (a probe a second, then 4 s of suspicion)")
		}
		return nil
	case "groups":
		if len(rest) > 0 {
			return fmt.Errorf("%w: cluster groups takes no arguments", errUsage)
		}
		info, err := c.Cluster(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, info.Groups)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tLEADER\tREPLICAS\tSLOTS\tTASKS\tTERM\tAPPLIED\tLAG")
		for _, g := range info.Groups {
			leader := "(none)"
			if g.Leader != nil {
				leader = g.Leader.ID
			}
			var replicas []string
			for _, r := range g.Replicas {
				replica := r.ID
				if r.State != "leader" && r.State != "follower" {
					replica += " (" + r.State + ")"
				}
				if !r.Alive {
					replica += " (down)"
				}
				replicas = append(replicas, replica)
			}
			if !g.Local {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t-\t-\t-\t-\n", g.ID, leader, strings.Join(replicas, ","), g.Slots)
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", g.ID, leader, strings.Join(replicas, ","), g.Slots, g.Tasks, g.Term, g.AppliedIndex, g.Lag)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "as %s sees it: TASKS, APPLIED and LAG are its replica's (LAG: committed entries not applied yet; - where it holds no replica)\n", server.addr)
		return nil
	case "remove":
		if len(rest) != 1 {
			return fmt.Errorf("%w: cluster remove takes one node id", errUsage)
		}
		if err := c.RemoveNode(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s from the cluster\n", rest[0])
		return nil
	default:
		fmt.Fprint(stderr, clusterUsage)
		return fmt.Errorf("%w: unknown cluster subcommand %q", errUsage, args[0])
	}
}
