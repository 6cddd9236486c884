package main

// systemd integration without a library: the sd_notify datagram protocol
// (READY=1, RELOADING=1, STOPPING=1, STATUS=, WATCHDOG=1 on the unix
// datagram socket in $NOTIFY_SOCKET) and the journal's level prefixes
// ("<3>" before a line written to a stream the journal reads, as
// sd-daemon(3) describes).

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// notifier sends sd_notify messages; a nil notifier sends nothing.
type notifier struct {
	addr *net.UnixAddr
}

// newNotifier returns a notifier for $NOTIFY_SOCKET, or nil when it is
// unset (not started by systemd with Type=notify).
func newNotifier(getenv func(string) string) *notifier {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // abstract namespace
		path = "\x00" + path[1:]
	}
	return &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// notify sends one message (lines "KEY=VALUE").
func (n *notifier) notify(lines ...string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// watchdogInterval is how often systemd wants WATCHDOG=1 ($WATCHDOG_USEC,
// for this process per $WATCHDOG_PID); 0 when it wants none.
func watchdogInterval(getenv func(string) string) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}

// runWatchdog sends WATCHDOG=1 every interval/2 for as long as probe
// answers within interval/2; a probe that hangs (the store locked up)
// stops the pings and systemd restarts vpcflow.
func runWatchdog(ctx context.Context, log *zap.Logger, n *notifier, interval time.Duration, probe func()) {
	if n == nil || interval <= 0 {
		return
	}
	every := interval / 2
	log.Info("systemd watchdog enabled", zap.Duration("interval", interval))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		done := make(chan struct{})
		go func() { probe(); close(done) }()
		select {
		case <-done:
			if err := n.notify("WATCHDOG=1"); err != nil {
				log.Warn("systemd watchdog ping failed", zap.Error(err))
			}
		case <-time.After(every):
			log.Error("health probe did not answer; not pinging the systemd watchdog", zap.Duration("waited", every))
			select { // wait for it before probing again
			case <-done:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// journalStream says whether w is the stream systemd's journal reads
// ($JOURNAL_STREAM is "DEV:INODE" of it).
func journalStream(w any, getenv func(string) string) bool {
	js := getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalEncoder writes each entry with its syslog priority prefix, which
// the journal turns into the PRIORITY field (and strips).
type journalEncoder struct {
	zapcore.Encoder
	pool buffer.Pool
}

func (e journalEncoder) Clone() zapcore.Encoder {
	return journalEncoder{Encoder: e.Encoder.Clone(), pool: e.pool}
}

func (e journalEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	b, err := e.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return nil, err
	}
	out := e.pool.Get()
	out.AppendByte('<')
	out.AppendInt(int64(syslogPriority(ent.Level)))
	out.AppendByte('>')
	_, _ = out.Write(b.Bytes())
	b.Free()
	return out, nil
}

// syslogPriority maps zap levels to syslog priorities.
func syslogPriority(l zapcore.Level) int {
	switch {
	case l >= zapcore.DPanicLevel:
		return 2 // crit
	case l >= zapcore.ErrorLevel:
		return 3 // err
	case l >= zapcore.WarnLevel:
		return 4 // warning
	case l >= zapcore.InfoLevel:
		return 6 // info
	default:
		return 7 // debug
	}
}
