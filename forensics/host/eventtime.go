package host

import "time"

// EventTime is when the entry's file last changed (its mtime): where a
// ranked case (forensics.Triage) places the finding in time.
func (e Entry) EventTime() time.Time { return e.Mtime.Time }

// EventTime is when the file last changed (its mtime; zero when missing).
func (c FileChange) EventTime() time.Time { return c.Mtime.Time }
