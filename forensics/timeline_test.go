package forensics

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// Sorting through spilled runs gives exactly the in-memory order: the same
// events, the same ties, on the sample node.
func TestTimelineSpilledRunsSameOrder(t *testing.T) {
	n, err := OpenPath(context.Background(), testfix.NodeArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	mem, w1, err := n.TimelineAll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	spilled, w2, err := n.TimelineAll(ctx, &TimelineOptions{MaxInMemory: 7, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	if len(mem) < 100 || len(mem) != len(spilled) || len(w1) != len(w2) {
		t.Fatalf("%d events in memory, %d spilled", len(mem), len(spilled))
	}
	for i := range mem {
		a, b := mem[i], spilled[i]
		if (a.File == nil) != (b.File == nil) {
			t.Fatalf("event %d: file %v vs %v", i, a.File, b.File)
		}
		if a.File != nil {
			ja, _ := json.Marshal(a.File)
			jb, _ := json.Marshal(b.File)
			if string(ja) != string(jb) || a.FirstOfFile != b.FirstOfFile {
				t.Fatalf("event %d: file entry differs:\n%s\n%s", i, ja, jb)
			}
		}
		a.File, b.File = nil, nil
		if !a.Time.Equal(b.Time.Time) {
			t.Fatalf("event %d: %v vs %v", i, a.Time, b.Time)
		}
		b.Time = a.Time
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("event %d differs:\n%+v\n%+v", i, a, b)
		}
		if i > 0 && mem[i].Time.Before(mem[i-1].Time.Time) {
			t.Fatalf("event %d before %d", i, i-1)
		}
	}
	// The spill is unlinked at once: nothing is left in the temp dir.
	if ents, _ := readDirNames(tmp); len(ents) != 0 {
		t.Errorf("left in temp dir: %v", ents)
	}
}

func TestTimelineAndDriftCancel(t *testing.T) {
	n, err := OpenPath(context.Background(), testfix.NodeArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = n.TimelineAll(ctx, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("timeline: %v", err)
	}
	c, err := n.FindContainer("app")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := n.ContainerDrift(c)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := DriftAll(ctx, ds, nil)
	if !errors.Is(err, context.Canceled) || len(got) != 0 {
		t.Errorf("drift: %d entries, %v", len(got), err)
	}
	// Cancelled while running: the walk stops at the next entry.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	k := 0
	for _, err := range Drift(ctx2, ds, nil) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("drift: %v", err)
			}
			break
		}
		k++
		if k == 1 {
			cancel2()
		}
	}
	if k == 0 || k > driftChunk {
		t.Errorf("%d entries after cancelling", k)
	}
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
