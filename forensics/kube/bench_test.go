package kube

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/deadnode/deadnode/evidence"
)

// genLogs writes n logs of size bytes each under root, in format, with
// line lengths from 20 to ~300 bytes and one line in 50 split into
// partial fragments. It returns the bytes written.
func genLogs(b *testing.B, root, format string, n int, size int64, compress bool) int64 {
	b.Helper()
	var total int64
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	words := strings.Fields("GET POST /api/v1/orders 200 404 user=42 latency_ms=13 fetched /tmp/.x/miner from 198.51.100.7 cache miss ok")
	for c := 0; c < n; c++ {
		var p string
		switch format {
		case FormatDockerJSON:
			id := fmt.Sprintf("%064x", c+1)
			p = filepath.Join(root, "var/lib/docker/containers", id, id+"-json.log")
		default:
			p = filepath.Join(root, "var/log/pods", fmt.Sprintf("ns_pod-%d_%08d-0000-0000-0000-000000000000", c, c), "app", "0.log")
		}
		if compress {
			p += ".20261126-000000.gz"
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		var w *bufio.Writer
		var zw *gzip.Writer
		if compress {
			zw = gzip.NewWriter(f)
			w = bufio.NewWriter(zw)
		} else {
			w = bufio.NewWriter(f)
		}
		var written int64
		for i := 0; written < size; i++ {
			ts := t0.Add(time.Duration(i)*time.Millisecond + time.Duration(c)).Format(time.RFC3339Nano)
			var text strings.Builder
			for j := 0; j < 3+i%40; j++ {
				text.WriteString(words[(i+j)%len(words)])
				text.WriteByte(' ')
			}
			stream := "stdout"
			if i%7 == 0 {
				stream = "stderr"
			}
			var line string
			switch format {
			case FormatDockerJSON:
				line = fmt.Sprintf("{\"log\":%q,\"stream\":%q,\"time\":%q}\n", text.String()+"\n", stream, ts)
			default:
				if i%50 == 0 {
					line = fmt.Sprintf("%s %s P %s\n", ts, stream, text.String())
				}
				line += fmt.Sprintf("%s %s F %s\n", ts, stream, text.String())
			}
			n, _ := w.WriteString(line)
			written += int64(n)
		}
		w.Flush()
		if zw != nil {
			zw.Close()
		}
		f.Close()
		total += written
	}
	return total
}

func benchLogs(b *testing.B, format string, n int, size int64, compress bool) {
	root := b.TempDir()
	total := genLogs(b, root, format, n, size, compress)
	src, err := evidence.OpenDir(root)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	// Throughput per CPU second as well: the machine is shared, so wall
	// time says little on its own.
	cpu0 := cpuTime()
	defer func() {
		if cpu := cpuTime() - cpu0; cpu > 0 {
			b.ReportMetric(float64(total)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
		}
	}()
	for i := 0; i < b.N; i++ {
		lines := 0
		for _, err := range Logs(context.Background(), src, LogFilter{}) {
			if err != nil {
				b.Fatal(err)
			}
			lines++
		}
		if lines == 0 {
			b.Fatal("no lines")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// 4 CRI logs of 16 MiB merged by time.
func BenchmarkLogsCRI(b *testing.B) { benchLogs(b, FormatCRI, 4, 16<<20, false) }

// The same, gzipped (a rotated log).
func BenchmarkLogsCRIGzip(b *testing.B) { benchLogs(b, FormatCRI, 4, 16<<20, true) }

// One 64 MiB Docker json-file log.
func BenchmarkLogsDocker(b *testing.B) { benchLogs(b, FormatDockerJSON, 1, 64<<20, false) }
