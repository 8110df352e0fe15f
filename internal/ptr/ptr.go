// Package ptr holds the one helper every package's options need: options
// are passed by pointer, nil meaning "all defaults".
package ptr

// Value is the value p points to, or T's zero value when p is nil: an
// options pointer read once, to be given its defaults.
func Value[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
