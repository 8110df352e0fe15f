// Command deadnode is the examiner's CLI over the deadnode packages: it
// parses flags, calls one library function per command, and renders what
// comes back through package render. Every command prints a table for
// people and -o json / jsonl for programs.
//
// Exit status: 0 success (findings such as tampering are success); 1 the
// command could not do its work — the evidence, or the container, image or
// checkpoint it names, could not be read or found, or an output could not
// be written (the message says which); 2 usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/diskimage"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/render"
)

// command is one CLI command. Each lives in a file of its own and
// registers itself from init.
type command struct {
	name    string // "ls", "fs ls", "image verify"
	args    string // usage of the positional arguments
	summary string
	// setup registers the command's flags and returns the function that
	// runs it with the positional arguments.
	setup func(fs *pflag.FlagSet) func(a *app, args []string) error
	// formats are the -o values beyond table, json and jsonl.
	formats []render.Format
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// usageError makes main exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// app holds the global flags and the lazily opened evidence.
type app struct {
	root       string
	roots      map[string]*string // --containerd-root, --docker-root, --storage-root
	namespaces []string
	output     string
	wide       bool
	cacheDir   string
	noCache    bool
	volume     string // --volume: the root volume of a disk image
	noAssemble bool   // --no-assemble: a disk image's root filesystem alone
	stdout     io.Writer
	stderr     io.Writer

	nodeCache *forensics.Node
	warned    map[string]bool
}

// globalFlags are known to every command.
func (a *app) globalFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.root, "root", "", "the evidence: a mounted node filesystem (directory), a .tar, .tar.gz, .tar.zst collection of it, or the node's disk image (raw, split raw .001, qcow2, VMDK)")
	fs.StringVar(&a.volume, "volume", "", "disk images: the volume holding the node's root (\"p2\", \"vg0/root\", \"UUID=…\"; see 'disk ls'), instead of finding it")
	fs.BoolVar(&a.noAssemble, "no-assemble", false, "disk images: read the root filesystem alone, without mounting what its /etc/fstab names")
	a.roots = map[string]*string{}
	for _, rf := range rootFlags {
		a.roots[rf.runtime] = fs.String(rf.flag, "", rf.help)
	}
	fs.StringSliceVarP(&a.namespaces, "namespace", "n", nil, "only these runtime namespaces (repeatable, comma-separated)")
	fs.StringVarP(&a.output, "output", "o", "table", "output format: table, json or jsonl")
	fs.BoolVar(&a.wide, "wide", false, "tables: print every cell whole (full ids and hashes), not fitted to the terminal")
	fs.StringVar(&a.cacheDir, "cache", "", "where decompressed collections are kept for the next command (default $XDG_CACHE_HOME/deadnode; private, bounded, never inside the evidence)")
	fs.BoolVar(&a.noCache, "no-cache", false, "decompress a compressed collection privately for this command only")
}

// rootFlags override the detection of a runtime's root.
var rootFlags = []struct{ flag, runtime, help string }{
	{"containerd-root", "containerd", "containerd's root inside the evidence (default: detected)"},
	{"docker-root", "docker", "Docker's data root inside the evidence (default: detected)"},
	{"storage-root", "containers-storage", "containers-storage graph root (Podman, CRI-O) inside the evidence (default: detected)"},
}

// valueFlags are global flags that take a value, for finding the command
// words among the arguments.
var valueFlags = map[string]bool{"--cache": true, "--root": true, "--volume": true, "--containerd-root": true, "--docker-root": true, "--storage-root": true, "-n": true, "--namespace": true, "-o": true, "--output": true}

func main() {
	// A signal ends the process without running deferred removals: the
	// private temp copies of databases go first (128+signal, as shells do).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		forensics.CleanupTemp()
		fmt.Fprintf(os.Stderr, "deadnode: %v\n", s)
		if n, ok := s.(syscall.Signal); ok {
			os.Exit(128 + int(n))
		}
		os.Exit(130)
	}()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	forensics.CleanupTemp()
	os.Exit(code)
}

func run(argv []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, warned: map[string]bool{}}
	defer func() {
		if a.nodeCache != nil {
			a.nodeCache.Close()
		}
	}()
	if len(argv) == 1 && (argv[0] == "--version" || argv[0] == "version") {
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	cmd, rest := findCommand(argv)
	if cmd == nil {
		if hasHelp(argv) {
			printUsage(stdout)
			return 0
		}
		if len(argv) == 0 {
			printUsage(stderr)
			return 2
		}
		fmt.Fprintf(stderr, "deadnode: unknown command %q\n\n", render.Clean(strings.Join(words(argv, 2), " ")))
		printUsage(stderr)
		return 2
	}
	fs := pflag.NewFlagSet("deadnode "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	a.globalFlags(fs)
	runFn := cmd.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: deadnode %s\n\n%s\n\nflags:\n%s", strings.TrimSpace(cmd.name+" "+cmd.args), cmd.summary, fs.FlagUsages())
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "deadnode %s: %v\n", cmd.name, err)
		return 2
	}
	if _, err := render.ParseFormat(a.output, cmd.formats...); err != nil {
		fmt.Fprintf(stderr, "deadnode %s: %v\n", cmd.name, err)
		return 2
	}
	err := runFn(a, fs.Args())
	a.filesystemWarnings()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "deadnode %s: %s\n", cmd.name, render.Clean(err.Error()))
			fs.Usage()
			return 2
		}
		fmt.Fprintf(stderr, "deadnode %s: %s\n", cmd.name, render.Clean(explain(a, err)))
		return 1
	}
	return 0
}

func hasHelp(argv []string) bool {
	for _, a := range argv {
		if a == "-h" || a == "--help" || a == "help" {
			return true
		}
	}
	return false
}

// words returns the first n arguments that are neither flags nor values
// of global flags.
func words(argv []string, n int) []string {
	var out []string
	for i := 0; i < len(argv) && len(out) < n; i++ {
		s := argv[i]
		if s == "--" {
			break
		}
		if strings.HasPrefix(s, "-") {
			if valueFlags[s] {
				i++
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// findCommand picks the longest registered command named by the first
// words of argv and returns argv without those words.
func findCommand(argv []string) (*command, []string) {
	w := words(argv, 2)
	for n := len(w); n > 0; n-- {
		if c := commands[strings.Join(w[:n], " ")]; c != nil {
			rest := make([]string, 0, len(argv))
			drop := n
			for i := 0; i < len(argv); i++ {
				s := argv[i]
				if drop > 0 && !strings.HasPrefix(s, "-") {
					drop--
					continue
				}
				rest = append(rest, s)
				if valueFlags[s] && i+1 < len(argv) {
					i++
					rest = append(rest, argv[i])
				}
			}
			return c, rest
		}
	}
	return nil, argv
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "deadnode: offline forensics of Kubernetes and container nodes ("+versionLine()+")")
	fmt.Fprintln(w, "\nusage: deadnode --root EVIDENCE COMMAND [ARGS] [-o table|json|jsonl]\n       deadnode --version\n\ncommands:")
	names := slices.Sorted(maps.Keys(commands))
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(n+" "+c.args), c.summary)
	}
	fmt.Fprintln(w, "\nRun 'deadnode COMMAND --help' for a command's flags.")
	fmt.Fprintln(w, "Exit status: 0 success (findings are success), 1 the evidence or what a command names could not be read or found, or an output could not be written, 2 usage error.")
}

// options are the node options the global flags give.
func (a *app) options() *forensics.Options {
	o := &forensics.Options{Namespaces: a.namespaces, Roots: map[string]string{}, Disk: a.diskOptions()}
	for rt, v := range a.roots {
		if v != nil && *v != "" {
			o.Roots[rt] = *v
		}
	}
	return o
}

// diskOptions are the disk-image options the global flags give.
func (a *app) diskOptions() *diskimage.Options {
	return &diskimage.Options{Volume: a.volume, NoAssemble: a.noAssemble}
}

// node opens the evidence named by --root, once, and requires a runtime.
func (a *app) node() (*forensics.Node, error) {
	n, err := a.evidence()
	if err != nil {
		return nil, err
	}
	if len(n.Runtimes) == 0 {
		return nil, fmt.Errorf("%s: %w", a.root, forensics.ErrNoRuntime)
	}
	return n, nil
}

// evidence opens the evidence named by --root, once, whether or not it
// holds a container runtime (checkpoints, host and kubelet commands).
func (a *app) evidence() (*forensics.Node, error) {
	if a.nodeCache != nil {
		return a.nodeCache, nil
	}
	if a.root == "" {
		return nil, usagef("--root EVIDENCE is required")
	}
	o := a.options()
	o.AllowNoRuntime = true
	p := a.newProgress("reading "+a.root, 0)
	o.Evidence = &evidence.OpenOptions{CacheDir: a.cacheDir, NoCache: a.noCache, Progress: func(pr evidence.Progress) {
		p.Set(pr.Done, pr.Total)
	}}
	n, err := forensics.OpenPath(context.Background(), a.root, o)
	p.Done()
	if err != nil {
		var oe *forensics.OpenError
		if errors.As(err, &oe) {
			// What was noted while opening (a damaged archive, say) comes
			// before the error it may explain.
			for _, note := range oe.Notes {
				render.Line(a.stderr, "note: ", note)
			}
		}
		if strings.HasPrefix(err.Error(), a.root+": ") {
			return nil, err // it names the evidence already
		}
		return nil, fmt.Errorf("%s: %w", a.root, err)
	}
	for _, note := range n.Notes {
		render.Line(a.stderr, "note: ", note)
	}
	if _, disk := n.Src.(*diskimage.Image); !disk && (a.volume != "" || a.noAssemble) {
		render.Line(a.stderr, "note: ", "--volume and --no-assemble apply to disk images only; "+a.root+" is not one")
	}
	for _, w := range n.Warnings() {
		a.warn(w.String())
	}
	a.nodeCache = n
	return n, nil
}

// filesystemWarnings prints what the evidence's readers (a disk image's
// filesystems, a directory) met while the command read them (an entry
// left out of its directory, a damaged block), which no record carries.
func (a *app) filesystemWarnings() {
	if a.nodeCache == nil || a.nodeCache.Evidence == nil {
		return
	}
	for _, w := range a.nodeCache.Evidence.ReaderWarnings() {
		a.warn(w)
	}
}

// warn prints a warning to stderr once.
func (a *app) warn(msg string) {
	if a.warned[msg] {
		return
	}
	a.warned[msg] = true
	render.Line(a.stderr, "warning: ", msg)
}

// renderOptions are the table and JSON options of this run.
func (a *app) renderOptions() *render.Options {
	o := &render.Options{Format: render.Format(a.output), Wide: a.wide}
	if !a.wide {
		o.Width = termWidth(a.stdout)
	}
	return o
}

// show prints v (JSON, JSONL) or t (table).
func (a *app) show(v any, t *render.Table) error {
	return render.Write(a.stdout, v, t, a.renderOptions())
}
