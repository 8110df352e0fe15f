package ext4

type journalScan struct{}

func (f *FS) replayJournal() error { return nil }
