package probe

import (
	"bytes"
	"testing"
	"time"
)

func TestBinary(t *testing.T) {
	for _, arch := range []string{"amd64", "x86_64", "arm64", "aarch64"} {
		b, err := Binary(arch)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if !bytes.HasPrefix(b, []byte("\x7fELF")) {
			t.Errorf("%s: not an ELF binary", arch)
		}
	}
	if _, err := Binary("s390x"); err == nil {
		t.Error("an unsupported architecture gave a binary")
	}
}

func TestCommand(t *testing.T) {
	got := Command(8080, "/healthz", 2*time.Second)
	want := []string{"CMD", Path, "8080", "/healthz", "2s"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
