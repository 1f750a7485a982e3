package main

import (
	"io"
	"testing"
	"time"
)

// --anti-entropy reads the same on every command that launches a mesh:
// default (the strategy's), off or 0, or a period; anything else is a
// usage error.
func TestAntiEntropyFlag(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want time.Duration
	}{{"default", 0}, {"off", -1}, {"0", -1}, {"500ms", 500 * time.Millisecond}, {"2s", 2 * time.Second}} {
		fs := newFlagSet("demo", "demo", io.Discard)
		var l launchFlags
		l.register(fs, 1, "")
		if err := parseFlags(fs, []string{"--anti-entropy", tc.arg}); err != nil {
			t.Fatalf("--anti-entropy %s: %v", tc.arg, err)
		}
		cfg, err := l.config(io.Discard)
		if err != nil {
			t.Fatalf("--anti-entropy %s: %v", tc.arg, err)
		}
		if cfg.AntiEntropy != tc.want {
			t.Errorf("--anti-entropy %s: cluster config %v, want %v", tc.arg, cfg.AntiEntropy, tc.want)
		}
	}
	for _, bad := range []string{"soon", "-1s", "1us"} {
		fs := newFlagSet("demo", "demo", io.Discard)
		var l launchFlags
		l.register(fs, 1, "")
		err := parseFlags(fs, []string{"--anti-entropy", bad})
		if err == nil {
			_, err = l.config(io.Discard)
		}
		if err == nil {
			t.Errorf("--anti-entropy %s accepted", bad)
		}
	}
}
