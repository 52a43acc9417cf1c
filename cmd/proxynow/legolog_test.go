package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestLegoLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	acmeLog.Store(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { acmeLog.Store(nil) })
	legoLogger{}.Printf("[INFO] [%s] acme: Obtaining bundled SAN certificate", "a.test")
	legoLogger{}.Println("[WARN] [a.test] acme: error cleaning up")
	var got []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, m)
	}
	want := []struct{ level, msg string }{
		{"DEBUG", "[a.test] acme: Obtaining bundled SAN certificate"},
		{"WARN", "[a.test] acme: error cleaning up"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		if got[i]["level"] != w.level || got[i]["msg"] != w.msg || got[i]["component"] != "acme" {
			t.Errorf("record %d = %v, want level %s msg %q component acme", i, got[i], w.level, w.msg)
		}
	}
}
