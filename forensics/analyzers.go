package forensics

// analyzers are the analyzers Triage runs besides the runtimes' own
// (drift, image verification, checkpoints). Adding one (the host's
// persistence and package drift, say) is one file implementing Analyzer
// and one line here.
var analyzers = []func() Analyzer{
	KubeletAnalyzer,
	HostAnalyzer,
}

// DefaultAnalyzers returns the analyzers Triage runs when
// TriageOptions.Analyzers is nil: the same case for a Go program as for
// the CLI. Each finds nothing, quietly, on evidence that lacks what it
// reads.
func DefaultAnalyzers() []Analyzer {
	out := make([]Analyzer, 0, len(analyzers))
	for _, a := range analyzers {
		out = append(out, a())
	}
	return out
}
