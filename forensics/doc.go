// Package forensics is the examiner's entry point: it opens a node's
// evidence (a mounted image or a tar collection), finds the container
// runtimes that were on it, and returns their namespaces, pods, containers,
// images, snapshots and content as runtime-neutral records
// (package forensics/model), each container resolved to its layer
// directories inside the evidence.
//
// It never writes to the evidence: databases are copied to private temp
// files before they are opened, every path is resolved inside the evidence's
// own namespace, and a damaged record becomes a warning on that record while
// the rest is still read.
package forensics
