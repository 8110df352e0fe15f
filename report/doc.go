// Package report renders a triage case (forensics.Case) as one
// self-contained HTML file: no external script, style, font or image, so it
// opens offline from a USB stick in any browser and can be attached to a
// ticket. Everything from the evidence is hostile: file names, labels,
// commands and log lines go through html/template's contextual escaping
// and render.Clean (control characters shown escaped), the page carries a
// strict Content-Security-Policy (nothing may load; the one inline style
// and script are allowed by their sha256), and the page's script reads
// only data attributes and sets visibility — it never builds markup from
// evidence text. HTML is one renderer of the typed case: a Go program can
// render its own from forensics.Triage's result.
package report
