// Package forensics is the examiner's entry point: it opens a node's
// evidence (a mounted image or a tar collection), finds the container
// runtimes that were on it, and returns their namespaces, pods, containers,
// images, snapshots and content as runtime-neutral records
// (package forensics/model), each container resolved to its layer
// directories inside the evidence. It joins them with what the node's
// kubelet left (package forensics/kube, read once per Node): a pod's
// volumes, service-account token claims and static pod manifest, a
// container's mounts and its root as its processes saw it (MountedView).
// Its analyses — drift (writable volumes included), the timeline, the
// triage with its analyzers (DefaultAnalyzers) — return typed findings and
// stream long results.
//
// It never writes to the evidence: databases are copied to private temp
// files before they are opened, every path is resolved inside the evidence's
// own namespace (a container's paths inside the container's), and a damaged
// record becomes a warning on that record while the rest is still read. A
// Node is safe for concurrent use once opened.
package forensics
