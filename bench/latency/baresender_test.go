package latency

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/bench/internal/benchd"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/pkg/sessions"
)

// The outbound baseline in a process of its own. The in-process bare
// clients share their process with the fake server, so their stanza
// reaches the fake without waking another process; wactl's always crosses
// from the daemon to the bench, as every real client's crosses the network
// to WhatsApp. This baseline is the same bare SendMessage, paying that one
// crossing too: the child is this test binary with bareSenderEnv set, its
// clients connected to the fake; the bench writes "worker id peer text"
// lines on its stdin and it answers "id start end ok" (Unix nanoseconds
// around its SendMessage call: one clock for both processes).
const bareSenderEnv = "WACTL_BENCH_BARE_SENDER"

// runBareSender is the child's main: the sessions dir is in the env
// variable, the account ids and the warm-up peers' prefix in arguments.
func runBareSender(dir string, ids []string, warmPrefix string) int {
	sess, err := sessions.Open(dir, sessions.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare sender:", err)
		return 1
	}
	clients := make([]*whatsmeow.Client, len(ids))
	for i, id := range ids {
		dev, err := sess.OpenDevice(context.Background(), id, sessions.DeviceOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "bare sender:", err)
			return 1
		}
		cli := whatsmeow.NewClient(dev.Store, nil)
		if _, err := wafake.ConfigureClientFromEnv(cli); err != nil {
			fmt.Fprintln(os.Stderr, "bare sender:", err)
			return 1
		}
		if err := connectWait(cli); err != nil {
			fmt.Fprintf(os.Stderr, "bare sender: client %d: %v\n", i, err)
			return 1
		}
		// The first send of each pair fetches the peer's devices and
		// prekeys; the timed ones must not.
		if _, err := cli.SendMessage(context.Background(), types.NewJID(fmt.Sprintf("%s%04d", warmPrefix, i), types.DefaultUserServer),
			&waE2E.Message{Conversation: proto.String("warm-up")}); err != nil {
			fmt.Fprintln(os.Stderr, "bare sender: warm-up:", err)
			return 1
		}
		clients[i] = cli
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	var wg sync.WaitGroup
	for in.Scan() {
		f := strings.SplitN(in.Text(), " ", 4)
		w, _ := strconv.Atoi(f[0])
		id, peer, text := f[1], types.NewJID(f[2], types.DefaultUserServer), f[3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, err := clients[w].SendMessage(context.Background(), peer, &waE2E.Message{Conversation: proto.String(text)},
				whatsmeow.SendRequestExtra{ID: id})
			t1 := time.Now()
			mu.Lock()
			fmt.Fprintf(out, "%s %d %d %t\n", id, t0.UnixNano(), t1.UnixNano(), err == nil)
			out.Flush()
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, c := range clients {
		c.Disconnect()
	}
	return 0
}

// connectWait connects cli and waits (60 s at most) for its Connected event.
func connectWait(cli *whatsmeow.Client) error {
	up := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case up <- struct{}{}:
			default:
			}
		}
	})
	if err := cli.Connect(); err != nil {
		return err
	}
	select {
	case <-up:
		return nil
	case <-time.After(60 * time.Second):
		return errors.New("not connected in 60 s")
	}
}

// bareProc is the bench's end of a bare sender child.
type bareProc struct {
	stdin   io.WriteCloser
	mu      sync.Mutex // stdin and waiting
	waiting map[string]chan bareReply
}

type bareReply struct {
	start, end time.Time
	ok         bool
}

// startBareSender pairs n accounts of its own on the fake and starts the
// child that sends from them.
func startBareSender(b *testing.B, srv *wafake.Server, n int) *bareProc {
	dir := b.TempDir()
	accts := benchd.PairAccounts(b, srv, dir, n, "4076640")
	ids := make([]string, n)
	for i, a := range accts {
		ids[i] = a.ID
	}
	c := exec.Command(os.Args[0], append([]string{"-test.run=^$"}, ids...)...)
	c.Env = append(append(os.Environ(), srv.Env()...), bareSenderEnv+"="+filepath.Join(dir, "sessions"))
	c.Stderr = os.Stderr
	stdin, err := c.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	p := &bareProc{stdin: stdin, waiting: map[string]chan bareReply{}}
	b.Cleanup(func() { stdin.Close(); c.Wait() })
	lines := bufio.NewScanner(stdout)
	ready := make(chan bool, 1)
	go func() {
		ready <- lines.Scan() && lines.Text() == "ready"
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			if len(f) != 4 {
				continue
			}
			t0, _ := strconv.ParseInt(f[1], 10, 64)
			t1, _ := strconv.ParseInt(f[2], 10, 64)
			p.mu.Lock()
			ch := p.waiting[f[0]]
			delete(p.waiting, f[0])
			p.mu.Unlock()
			if ch != nil {
				ch <- bareReply{time.Unix(0, t0), time.Unix(0, t1), f[3] == "true"}
			}
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			b.Fatal("bare sender: did not start (its stderr is above)")
		}
	case <-time.After(180 * time.Second):
		b.Fatal("bare sender: not ready in 180 s")
	}
	return p
}

// send has the child send one message from account w and waits for its
// answer; ok is false when the child's SendMessage failed or it is gone.
func (p *bareProc) send(w int, id string, peer types.JID, text string) (bareReply, bool) {
	ch := make(chan bareReply, 1)
	p.mu.Lock()
	p.waiting[id] = ch
	_, err := fmt.Fprintf(p.stdin, "%d %s %s %s\n", w, id, peer.User, strings.ReplaceAll(text, "\n", " "))
	p.mu.Unlock()
	if err != nil {
		return bareReply{}, false
	}
	select {
	case r := <-ch:
		return r, r.ok
	case <-time.After(60 * time.Second):
		return bareReply{}, false
	}
}
