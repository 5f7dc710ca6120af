package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTallyCountsLines(t *testing.T) {
	tl := newTallies([]float64{0.001, 0.01, 0.1})
	for _, line := range []string{
		"be_prod_web c2-1 200 0 1",
		"be_prod_web c2-1 503 -1 7",    // no response: its whole time counts
		"be_prod_web c2-1 500 250 251", // slower than every bound
		"be_prod_web r1-1 200 5 5\n",
		"be_prod_web r1-1 -1 -1 -1", // aborted: a request, in the last bucket
		"be_prod_web <NOSRV> 503 -1 0",
		"Server be_prod_web/c2-1 is DOWN",
		"be_prod_web r1-1 200 x 1",
	} {
		tl.add([]byte(line))
	}
	got := string(tl.write(3))
	want := "received 8 unparsed 2 dropped 3\n" +
		"be_prod_web c2-1 3 2 257 1,1,0,1\n" +
		"be_prod_web r1-1 2 0 5 0,1,0,1\n"
	if got != want {
		t.Errorf("tally:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseBounds(t *testing.T) {
	if b, err := parseBounds("0.001,0.5,2"); err != nil || len(b) != 3 || b[1] != 0.5 {
		t.Errorf("parseBounds = %v, %v", b, err)
	}
	for _, bad := range []string{"", "0.1,0.1", "1,x", "-1"} {
		if _, err := parseBounds(bad); err == nil {
			t.Errorf("parseBounds(%q) accepted", bad)
		}
	}
}

func TestUDPDrops(t *testing.T) {
	table := filepath.Join(t.TempDir(), "udp")
	content := `   sl  local_address rem_address   st tx_queue rx_queue tr tx_retrnsmt   uid  timeout inode ref pointer drops
 1234: 0100007F:A1B2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 17
 1235: 00000000:A1B2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 99
`
	if err := os.WriteFile(table, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := udpDrops(table, 0xA1B2); got != 17 {
		t.Errorf("drops = %d, want 17", got)
	}
	if got := udpDrops(table, 0xA1B3); got != -1 {
		t.Errorf("drops of a socket not there = %d, want -1", got)
	}
}

// The mode end to end: datagrams sent to the port it names are counted,
// and each line of input is answered with the counts.
func TestTallyMode(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int)
	go func() { done <- tally([]string{"0.001,0.01"}, inR, outW) }()
	out := bufio.NewReader(outR)
	greeting, err := out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(greeting), "release-probe tally 1 ")
	if !ok {
		t.Fatalf("greeting %q", greeting)
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		fmt.Fprintf(conn, "be_x s%d %d 3 3", i%2, 200+300*(i%10/9))
	}
	var answer string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		fmt.Fprintln(inW)
		var code, n int
		if _, err := fmt.Fscanf(out, "%d %d\n", &code, &n); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(out, buf); err != nil {
			t.Fatal(err)
		}
		if answer = string(buf); strings.HasPrefix(answer, "received 100 ") {
			break
		}
	}
	want := "received 100 unparsed 0 dropped 0\nbe_x s0 50 0 150 0,50,0\nbe_x s1 50 10 150 0,50,0\n"
	if answer != want {
		t.Errorf("answer:\n%s\nwant:\n%s", answer, want)
	}
	inW.Close()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d when the input ended", code)
	}
}

// -scrape names the worker that served the metrics when the runtime API
// names the same one before and after.
func TestScrapeNamesTheWorker(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pids := make(chan string, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "Name: HAProxy\nPid: %s\nUptime_sec: 3\n", <-pids)
			c.Close()
		}
	}()
	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	go func() {
		for {
			c, err := web.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(c).ReadString('\n')
			fmt.Fprint(c, "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nm 1\n")
			c.Close()
		}
	}()
	port := fmt.Sprint(web.Addr().(*net.TCPAddr).Port)
	var out strings.Builder
	stdout = &out
	defer func() { stdout = os.Stdout }()
	for _, c := range []struct {
		pids []string
		want string
	}{
		{[]string{"7", "7"}, "# worker 7\nm 1\n"},
		{[]string{"7", "9", "9", "9"}, "# worker 9\nm 1\n"}, // a reload between: tried again
		{[]string{"1", "2", "3", "4", "5", "6"}, "m 1\n"},   // never sure: no worker named
	} {
		for _, p := range c.pids {
			pids <- p
		}
		out.Reset()
		if code := scrape([]string{socket, port, "/metrics"}); code != 0 || out.String() != c.want {
			t.Errorf("pids %v: exit %d, output %q, want %q", c.pids, code, out.String(), c.want)
		}
	}
}
