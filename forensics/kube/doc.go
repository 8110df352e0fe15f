// Package kube reads what a Kubernetes node's kubelet left on its disk and
// judges it: the kubelet's systemd unit, drop-ins and environment files
// and the command line they make; its effective configuration (the
// KubeletConfiguration file with the kubelet's own defaults for absent
// fields, --config-dir drop-ins over it and flags over both, each setting
// saying where its value came from); the kubeconfigs it uses (servers,
// and which kind of credential, never a key or token); its static pods
// (every document of every manifest: images, privilege, host namespaces,
// capabilities, hostPath mounts, command); the pod directories under its
// root (volumes by plugin, container starts, service-account tokens
// decoded but never verified nor printed); a container's volume mounts
// joined with the runtime's OCI spec (pod volumes, host paths, and the
// pod's writable volumes a spec omits); and the containers' logs (CRI
// files with their rotations and gzip, the /var/log/containers links, and
// Docker's json-file logs), streamed and merged by time.
//
// It reads only through an evidence.Source: nothing is written, every
// path is resolved inside the evidence's own namespace (links followed
// with evidence.Resolve, never out of the root), and every size, count
// and depth read from a file is bounded (MaxConfigBytes, MaxDocuments,
// MaxManifests, MaxTokenBytes, MaxLineBytes …; YAML alias bombs and deep
// nesting are stopped by the YAML library). Memory does not grow with a
// log's size. A malformed file is a warning naming it (and the byte offset
// where one is known) and the rest goes on: warnings are evidence.Warning
// values, with the file of the node and the offset in their File and
// Offset, printed as the one line "file: offset N: message".
//
// Judgements are model.Findings with Analyzer "kubelet" (weakened
// authentication and exposure), "static_pod" (host access, unknown
// origin), "kube_pod" (tokens) and "logs" (lines out of order, malformed
// or oversized), each with a Why; Details is this package's own record.
// Events gives the timeline's timestamped facts, LogEvents one event per
// log line.
package kube
