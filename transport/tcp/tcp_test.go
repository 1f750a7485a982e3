package tcp_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"gossipmesh/transport/tcp"
)

func TestDialListen(t *testing.T) {
	var tr tcp.Transport
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	c, err := tr.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

func TestDialRefused(t *testing.T) {
	var tr tcp.Transport
	ln, _ := tr.Listen("127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := tr.Dial(context.Background(), addr); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("dial to a closed port: %v; want an error naming %s", err, addr)
	}
}

// TestFileListener adopts a listener through its file descriptor, as a
// child process adopts one its launcher bound: here the descriptor is
// dup'ed within the process.
func TestFileListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	adopted, err := tcp.FileListener(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	if adopted.Addr().String() != ln.Addr().String() {
		t.Errorf("adopted listener at %v, want %v", adopted.Addr(), ln.Addr())
	}
	go func() {
		if c, err := adopted.Accept(); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := (tcp.Transport{}).Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Only the adopted listener accepts, so the answer proves it serves
	// the inherited socket.
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestFileListenerErrors(t *testing.T) {
	if _, err := tcp.FileListener(1); err == nil {
		t.Error("adopted stdout as a listener")
	}
	if _, err := tcp.FileListener(987); err == nil {
		t.Error("adopted a descriptor that is not open")
	}
}
