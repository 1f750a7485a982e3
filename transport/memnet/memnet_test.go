package memnet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"gossipmesh/transport/memnet"
)

// pair dials b:1 from host a and returns both ends.
func pair(t *testing.T, nw *memnet.Network, a, b string) (dialer, acceptor net.Conn) {
	t.Helper()
	ln, err := nw.Host(b).Listen(b + ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	d, err := nw.Host(a).Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); c.Close() })
	return d, c
}

func TestBothWaysAndBuffered(t *testing.T) {
	nw := memnet.New()
	d, c := pair(t, nw, "a", "b")
	// Both ends write before either reads (a handshake): the buffer takes it.
	if _, err := d.Write([]byte("hello from a")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello from b")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello from a" {
		t.Fatalf("b read %q, %v", buf, err)
	}
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "hello from b" {
		t.Fatalf("a read %q, %v", buf, err)
	}
	if d.RemoteAddr().String() != c.LocalAddr().String() {
		t.Errorf("dialer's remote %v is not the listener's local %v", d.RemoteAddr(), c.LocalAddr())
	}
}

// TestLargeWriteBlocksThenFlows: a write bigger than the pipe's buffer
// completes once the reader drains it, intact.
func TestLargeWriteBlocksThenFlows(t *testing.T) {
	nw := memnet.New()
	d, c := pair(t, nw, "a", "b")
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := d.Write(data)
		d.Close()
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, different from the %d written", len(got), len(data))
	}
}

func TestCloseGivesEOFAfterDrain(t *testing.T) {
	nw := memnet.New()
	d, c := pair(t, nw, "a", "b")
	d.Write([]byte("last words"))
	d.Close()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v; want the data, then EOF", got, err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("write to a peer that closed succeeded")
	}
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on a closed conn: %v, want net.ErrClosed", err)
	}
}

func TestReadDeadline(t *testing.T) {
	nw := memnet.New()
	d, _ := pair(t, nw, "a", "b")
	d.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := d.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) {
		t.Logf("note: deadline error is not a net.Error")
	}
	// Clearing the deadline makes reads block again, until data comes.
	d.SetReadDeadline(time.Time{})
	d.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a past deadline: %v", err)
	}
}

func TestCutResetsAndRefusesUntilHeal(t *testing.T) {
	nw := memnet.New()
	d, c := pair(t, nw, "a", "b")
	if n := nw.Conns("a", "b"); n != 1 {
		t.Fatalf("Conns = %d, want 1", n)
	}
	nw.Cut("b", "a") // either order
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read on a cut link succeeded")
	}
	if _, err := d.Write([]byte("x")); err == nil {
		t.Error("write on a cut link succeeded")
	}
	ln, err := nw.Host("b").Listen("b:99")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := nw.Host("a").Dial(context.Background(), "b:99"); !errors.Is(err, memnet.ErrUnreachable) {
		t.Fatalf("dial across a cut: %v, want ErrUnreachable", err)
	}
	// Other links are unaffected.
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if c, err := nw.Host("c").Dial(context.Background(), "b:99"); err != nil {
		t.Fatalf("dial from an uncut host: %v", err)
	} else {
		c.Close()
	}
	nw.Heal("a", "b")
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if c, err := nw.Host("a").Dial(context.Background(), "b:99"); err != nil {
		t.Fatalf("dial after heal: %v", err)
	} else {
		c.Close()
	}
}

func TestIsolate(t *testing.T) {
	nw := memnet.New()
	d, _ := pair(t, nw, "a", "b")
	nw.Isolate("a")
	if _, err := d.Read(make([]byte, 1)); err == nil {
		t.Error("read on an isolated host's link succeeded")
	}
	ln, err := nw.Host("c").Listen("c:1")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := nw.Host("a").Dial(context.Background(), "c:1"); !errors.Is(err, memnet.ErrUnreachable) {
		t.Fatalf("dial from an isolated host: %v", err)
	}
	nw.Rejoin("a")
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if c, err := nw.Host("a").Dial(context.Background(), "c:1"); err != nil {
		t.Fatalf("dial after rejoin: %v", err)
	} else {
		c.Close()
	}
}

func TestListenAndDialErrors(t *testing.T) {
	nw := memnet.New()
	if _, err := nw.Host("a").Listen("b:1"); err == nil {
		t.Error("host a listened on host b's address")
	}
	ln, err := nw.Host("a").Listen("a:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nw.Host("a").Listen("a:1"); err == nil {
		t.Error("two listeners on one address")
	}
	ln.Close()
	if _, err := nw.Host("b").Dial(context.Background(), "a:1"); !errors.Is(err, memnet.ErrRefused) {
		t.Errorf("dial to a closed listener: %v, want ErrRefused", err)
	}
	// A listener that never accepts: the dial gives up with its context.
	ln2, _ := nw.Host("a").Listen("a:2")
	defer ln2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := nw.Host("b").Dial(ctx, "a:2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial to a listener that never accepts: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept on a closed listener: %v", err)
	}
}
