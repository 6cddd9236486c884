package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

const maxLoggedOutput = 2000

// run executes argv in the test process's own namespaces (callers prefix
// "ip netns exec NS" themselves) and returns its combined output. A context
// without a deadline gets the lab's command timeout. The error names the
// command and includes its output.
func (l *Lab) run(ctx context.Context, env []string, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("netlab: empty command")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.cmdTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	// A grandchild that keeps the output pipe open must not hang us.
	cmd.WaitDelay = 2 * time.Second
	line := shellJoin(argv)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	dur := time.Since(start).Round(time.Millisecond)
	text := string(out)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		l.logf("netlab: $ %s  [%v, %v]\n%s", line, dur, err, truncate(text))
		return text, fmt.Errorf("%s: %w: %s", line, err, strings.TrimSpace(text))
	}
	if strings.TrimSpace(text) == "" {
		l.logf("netlab: $ %s  [%v]", line, dur)
	} else {
		l.logf("netlab: $ %s  [%v]\n%s", line, dur, truncate(text))
	}
	return text, nil
}

// nested drops the "netlab: " prefix of an inner error that is wrapped by
// another netlab error, so messages read "netlab: a: b: c".
type nested struct{ err error }

func (e nested) Error() string { return strings.TrimPrefix(e.err.Error(), "netlab: ") }
func (e nested) Unwrap() error { return e.err }

func nest(err error) error { return nested{err} }

func truncate(s string) string {
	s = strings.TrimRight(s, "\n")
	if len(s) > maxLoggedOutput {
		return s[:maxLoggedOutput] + fmt.Sprintf("... (%d more bytes)", len(s)-maxLoggedOutput)
	}
	return s
}

// shellJoin renders argv the way one would type it into a shell.
func shellJoin(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = shellQuote(a)
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
