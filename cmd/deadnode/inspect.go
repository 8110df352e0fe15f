package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/render"
)

func init() {
	register(&command{
		name:    "inspect",
		args:    "CONTAINER",
		summary: "everything known of a container: record, pod, layers, state, OCI spec (CONTAINER: id, unique id prefix, or podns/podname/container)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			return runInspect
		},
	})
}

func runInspect(a *app, args []string) error {
	if len(args) != 1 {
		return usagef("inspect takes one CONTAINER")
	}
	n, err := a.node()
	if err != nil {
		return err
	}
	d, ws, err := n.InspectDetail(context.Background(), args[0])
	if err != nil {
		return err
	}
	for _, w := range ws {
		a.warn(w.String())
	}
	c := &d.Container
	t := render.KeyValue()
	kv := t.KVAlways
	{
		kv("ID", c.ID)
		kv("Runtime", c.Runtime)
		kv("Namespace", c.Namespace)
		kv("Kind", c.Kind)
		kv("Name", c.ContainerName)
		if c.Pod != nil {
			kv("Pod", fmt.Sprintf("%s/%s (uid %s)", c.Pod.Namespace, c.Pod.Name, c.Pod.UID))
		}
		kv("Sandbox", c.SandboxID)
		kv("Image", c.Image)
		kv("Image ref", c.ImageRef)
		kv("Runtime handler", c.RuntimeHandler)
		kv("Created", c.CreatedAt)
		kv("Updated", c.UpdatedAt)
		kv("State", c.Status.State)
		if c.Status.Pid != 0 {
			kv("Pid (host)", c.Status.Pid)
		}
		if c.Status.ExitCode != nil {
			kv("Exit code", *c.Status.ExitCode)
		}
		kv("Started", c.Status.StartedAt)
		kv("Finished", c.Status.FinishedAt)
		kv("State read from", strings.Join(c.Status.Sources, ", "))
		kv("Log", c.LogPath)
		kv("Snapshotter", c.Snapshotter)
		kv("Snapshot key", c.SnapshotKey)
		kv("Upper dir", c.UpperDir)
		for i, l := range c.LowerDirs {
			kv(fmt.Sprintf("Lower dir %d", i+1), l)
		}
		printMap(t, "Label", c.Labels)
		printMap(t, "Annotation", c.Annotations)
		if s := c.Spec; s != nil {
			kv("Args", quoteArgs(s.Args))
			for _, e := range s.Env {
				kv("Env", e)
			}
			kv("Cwd", s.Cwd)
			kv("User", strings.TrimSpace(fmt.Sprintf("uid=%d gid=%d groups=%v %s", s.User.UID, s.User.GID, s.User.AdditionalGids, s.User.Username)))
			kv("Hostname", firstOfStr(s.Hostname, "-"))
			kv("Privileged", s.Privileged)
			kv("Host PID namespace", s.HostPID)
			kv("Host network", s.HostNetwork)
			kv("Host IPC", s.HostIPC)
			kv("Read-only rootfs", s.ReadonlyRootfs)
			kv("Seccomp", s.Seccomp)
			kv("AppArmor", firstOfStr(s.AppArmorProfile, "-"))
			kv("Cgroups path", s.CgroupsPath)
			kv("Capabilities", strings.Join(s.Capabilities, ","))
			for _, m := range s.Mounts {
				kv("Mount", fmt.Sprintf("%s <- %s (%s) %s", m.Destination, m.Source, m.Type, strings.Join(m.Options, ",")))
			}
		}
		for _, m := range d.Mounts {
			kv(mountLabel[m.Kind], mountLine(m))
		}
		if d.StaticPod != nil {
			kv("Static pod manifest", *d.StaticPod)
		}
		for _, tk := range d.ServiceAccountTokens {
			kv("SA token", claimsLine(tk))
		}
		for _, x := range c.Execs {
			live := "live"
			if !x.Live {
				live = "deleted, carved from " + x.Source
			}
			kv("Exec", fmt.Sprintf("%s pid %d %s (%s)", short(x.ID), x.Pid, quoteArgs(x.Command), live))
		}
		for _, wmsg := range c.Warnings {
			kv("Warning", wmsg)
		}
	}
	return a.show(d, t)
}

var mountLabel = map[string]string{kube.MountVolume: "Volume mount", kube.MountHostPath: "Host path mount", kube.MountRuntime: "Runtime mount"}

// mountLine shows a mount: where the container sees it, what it is, and
// where its content lies in the evidence.
func mountLine(m kube.Mount) string {
	at := "(container path unknown: not in the OCI spec)"
	if m.ContainerPath != nil {
		at = *m.ContainerPath
	}
	what := m.Origin
	if m.VolumeKind != "" {
		what += " (" + m.VolumeKind + ")"
	}
	ro := "rw"
	if m.ReadOnly {
		ro = "ro"
	}
	where := m.EvidencePath
	if !m.Exists {
		where = "not in the evidence"
	}
	return fmt.Sprintf("%s <- %s %s, %s", at, what, ro, where)
}

// claimsLine shows a token's claims, never the token.
func claimsLine(tk forensics.TokenClaims) string {
	c := tk.Claims
	s := fmt.Sprintf("%s (kid %s, issued %s, expires %s) in %s", c.Subject, tk.Kid, c.IssuedAt, c.Expires, tk.Path)
	if c.PodName != "" {
		s += ", bound to pod " + c.Namespace + "/" + c.PodName
	}
	return s
}

func printMap(t *render.Table, what string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.KVAlways(what, k+"="+m[k])
	}
}
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, s := range args {
		if strings.ContainsAny(s, " \t\n'\"") || s == "" {
			q[i] = fmt.Sprintf("%q", s)
		} else {
			q[i] = s
		}
	}
	return strings.Join(q, " ")
}
