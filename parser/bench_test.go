package parser_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pcheck/pcheck/parser"
)

// generated returns a pfile of n process entries, each with three blocks.
func generated(n int) []byte {
	var b strings.Builder
	b.WriteString("##### PARAM #####\nMonitorInterval 10\nRetryCount 3\nGrace 86400\nretry_over_action continue\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "/opt/app%d/bin/server /etc/pcheck/restart_%d.sh args=\"--instance=%d\" user=app\n", i, i, i)
		fmt.Fprintf(&b, "_bi_webserv{\n    PS_INIT   DLL:/opt/HA/PSWE/lib/lib_bi_webserv.so:DIRECT:-::-:0\n    PS_EXEC   DLL:/opt/HA/PSWE/lib/lib_bi_webserv.so:\n              DIRECT:-:60:0:2:600:%d\n    PS_ACTION DLL:/opt/HA/PSWE/lib/lib_bi_webserv.so:DIRECT:-::-:1:0\n    PS_QUIT   DLL:/opt/HA/PSWE/lib/lib_bi_webserv.so:DIRECT:-::-:0\n}\n", 10000+i)
		fmt.Fprintf(&b, "_bi_socket{\n    PS_INIT   DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:--:0\n    PS_EXEC   DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:60:-:2:600:%d\n    PS_ACTION DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:--:1:0\n    PS_QUIT   DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:--:0\n}\n", 20000+i)
		fmt.Fprintf(&b, "_bi_webservs{\n    PS_INIT   DLL:/opt/HA/PSWE/lib/lib_bi_webservs.so:DIRECT:-::-:0\n    PS_EXEC   DLL:/opt/HA/PSWE/lib/lib_bi_webservs.so:DIRECT:-:60:-:5:600:%d:localhost:5:/health\n    PS_ACTION DLL:/opt/HA/PSWE/lib/lib_bi_webservs.so:DIRECT:-::-:1:0\n    PS_QUIT   DLL:/opt/HA/PSWE/lib/lib_bi_webservs.so:DIRECT:-::-:0\n}\n", 30000+i)
	}
	return []byte(b.String())
}

// BenchmarkLoad1000 parses and validates 1,000 process entries with 3
// blocks each. Target: under 50 ms and 20 MB allocated per parse. It also
// reports retained-B, the heap the loaded File keeps live after a
// collection: what a running pcheck holds for such a pfile.
func BenchmarkLoad1000(b *testing.B) {
	data := generated(1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, diags := parser.LoadBytes("gen.pfile", data)
		if f == nil || len(f.Processes) != 1000 {
			b.Fatalf("generated pfile rejected: %v", diags.Err())
		}
	}
	b.ReportMetric(float64(retained(b, data)), "retained-B")
}

// retained returns how many bytes of heap the File loaded from data keeps
// live.
func retained(b *testing.B, data []byte) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f, diags := parser.LoadBytes("gen.pfile", data)
	if f == nil {
		b.Fatalf("generated pfile rejected: %v", diags.Err())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(f)
	return after.HeapAlloc - before.HeapAlloc
}
