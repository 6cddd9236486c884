package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vpcflow/vpcflow/api"
)

// command is one leaf command's flag set and help text.
type command struct {
	c       *cli
	name    string // "host add"
	args    string // the usage line after the name
	about   string // what it does
	example string
	fs      *flag.FlagSet

	// Set by withAPI.
	api    *string
	output *string
	token  *string // --api-token after the command
}

func (c *cli) command(name, args, about, example string) *command {
	fs := flag.NewFlagSet("vpcflow "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &command{c: c, name: name, args: args, about: about, example: example, fs: fs}
}

// withAPI adds --api and -o, for commands that call the REST API.
// The global flags (--api, --api-token, --timeout) are accepted after the
// command too, and listed in its --help; there they win.
func (k *command) withAPI() *command {
	k.api = k.fs.String("api", k.c.api, "URL of the REST API of a running vpcflow (also $VPCFLOW_API; global flag)")
	k.output = k.fs.String("o", "table", "output format: table or json")
	k.token = k.fs.String("api-token", "", "bearer token for an API started with one (default $"+tokenEnv+"; prefer the variable:\na flag is visible to other users in ps; global flag)")
	k.fs.DurationVar(&k.c.timeout, "timeout", k.c.timeout, "timeout of each API request, more than 0 (global flag)")
	return k
}

func (k *command) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: vpcflow %s\n\n%s\n\nExample:\n", strings.TrimSpace(k.name+" "+k.args), k.about)
	for _, line := range strings.Split(strings.TrimRight(k.example, "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintln(w, "\nFlags:")
	k.fs.SetOutput(w)
	k.fs.PrintDefaults()
	k.fs.SetOutput(io.Discard)
}

// parse parses args and checks the number of positional arguments (names
// says what they are). It returns the positionals, or an exit code.
func (k *command) parse(args []string, names ...string) ([]string, int, bool) {
	if wantsHelp(args) {
		k.usage(k.c.stdout)
		return nil, exitOK, false
	}
	pos, err := parseInterspersed(k.fs, args)
	if err != nil {
		return nil, k.usageError("%v", err), false
	}
	switch {
	case len(pos) < len(names):
		return nil, k.usageError("missing %s", strings.Join(names[len(pos):], " ")), false
	case len(pos) > len(names):
		return nil, k.usageError("unexpected argument %q", pos[len(names)]), false
	}
	if k.output != nil && *k.output != "table" && *k.output != "json" {
		return nil, k.usageError("-o: want table or json, got %q", *k.output), false
	}
	if k.api != nil {
		if k.c.timeout <= 0 {
			return nil, k.usageError("--timeout %s: want a duration above 0, such as 10s", k.c.timeout), false
		}
		if *k.token != "" {
			k.c.token = *k.token
		}
	}
	return pos, exitOK, true
}

// required checks that string flags are set.
func (k *command) required(flags ...string) (int, bool) {
	for _, name := range flags {
		if f := k.fs.Lookup(name); f != nil && f.Value.String() == "" {
			return k.usageError("--%s is required", name), false
		}
	}
	return exitOK, true
}

func (k *command) usageError(format string, args ...any) int {
	fmt.Fprintf(k.c.stderr, "error: %s\nRun 'vpcflow %s --help' for usage.\n", fmt.Sprintf(format, args...), k.name)
	return exitUsage
}

// client returns an API client for --api, sending the global --api-token.
// The server is asked to answer within nine tenths of --timeout, so that a
// change a switch has not confirmed by then comes back as stored (202)
// rather than as a client timeout.
func (k *command) client() (*api.Client, error) {
	return api.NewClient(*k.api, &http.Client{Timeout: k.c.timeout}, api.WithToken(k.c.token),
		api.WithRequestTimeout(k.c.timeout*9/10))
}

// unconfirmed reports a change the server stored but not every switch
// confirmed (202): a warning naming each switch and why, exit status 5.
func (k *command) unconfirmed(err error) (int, bool) {
	var ue *api.UnconfirmedError
	if !errors.As(err, &ue) {
		return 0, false
	}
	fmt.Fprintf(k.c.stderr, "warning: the change is stored, but not every switch confirmed it:\n")
	for _, s := range ue.Switches {
		name := s.DPID.String()
		if s.Bridge != "" {
			name += " (" + s.Bridge + ")"
		}
		fmt.Fprintf(k.c.stderr, "  switch %s: %s\n", name, s.Reason)
	}
	fmt.Fprintf(k.c.stderr, "Each gets it when its queue catches up, or when it reconnects and is reconciled.\n")
	return exitUnconfirmed, true
}

// pageFlags adds --limit and --page-token to a list command.
func (k *command) pageFlags() *api.Page {
	pg := &api.Page{}
	k.fs.IntVar(&pg.Limit, "limit", 0, fmt.Sprintf("list at most this many (1 to %d; default: all); how many the list has and the next page's --page-token are printed on stderr", api.MaxPageLimit))
	k.fs.StringVar(&pg.Token, "page-token", "", "list the page after the one that printed this token")
	return pg
}

// pageList is a page of a list with -o json and --limit.
type pageList struct {
	Items any `json:"items"`
	// Total is how many items the list has after its filters, every page
	// together (the server's X-Total-Count); left out when the server did
	// not say.
	Total         *int   `json:"total,omitempty"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// callPage runs a list with --limit/--page-token: without either it is
// call (everything). With one, the page is printed, and on stderr one
// line with how many items the page has, how many the list has after its
// filters ("?" when the server did not say) and, when more follow, the
// next page's token: "showing 50 of 100,000; more: --page-token TOKEN".
// With -o json nothing goes to stderr: stdout has {"items": [...],
// "total": N, "next_page_token": ...}.
func (k *command) callPage(pg *api.Page, fn func(ctx context.Context, cl *api.Client, pg api.Page) (any, api.PageInfo, error), table func(w io.Writer, v any)) int {
	if pg.Limit < 0 || pg.Limit > api.MaxPageLimit {
		return k.usageError("--limit %d: want 1 to %d", pg.Limit, api.MaxPageLimit)
	}
	if pg.Limit == 0 && pg.Token == "" {
		return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
			v, _, err := fn(ctx, cl, *pg)
			return v, err
		}, table)
	}
	var (
		info  api.PageInfo
		shown int
	)
	code := k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		v, in, err := fn(ctx, cl, *pg)
		info = in
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice {
			shown = rv.Len()
		}
		if *k.output == "json" {
			l := pageList{Items: v, NextPageToken: in.Next}
			if in.Total >= 0 {
				l.Total = &in.Total
			}
			return l, err
		}
		return v, err
	}, table)
	if code == exitOK && *k.output != "json" {
		fmt.Fprintln(k.c.stderr, pageLine(shown, info))
	}
	return code
}

// pageLine is the line callPage prints on stderr after a page of shown
// items: "showing 50 of 100,000; more: --page-token TOKEN", the last
// page "showing 3 of 100,003".
func pageLine(shown int, info api.PageInfo) string {
	total := "?"
	if info.Total >= 0 {
		total = thousands(info.Total)
	}
	line := fmt.Sprintf("showing %s of %s", thousands(shown), total)
	if info.Next != "" {
		line += "; more: --page-token " + info.Next
	}
	return line
}

// thousands writes n (0 or more) with a comma every three digits:
// 100000 is "100,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fail prints an error as "error: FIELD: MESSAGE" and returns exitError.
func (k *command) fail(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) {
		fmt.Fprintf(k.c.stderr, "error: %s\n", ae.Error())
		if ae.Status == http.StatusUnauthorized {
			fmt.Fprintf(k.c.stderr, "Set $%s (or the global --api-token) to the token `vpcflow serve` was started with.\n", tokenEnv)
		}
		return exitError
	}
	fmt.Fprintf(k.c.stderr, "error: %v\n", err)
	var ne net.Error
	if errors.As(err, &ne) && k.api != nil {
		fmt.Fprintf(k.c.stderr, "Is `vpcflow serve` running there? Point --api or VPCFLOW_API at it.\n")
	}
	return exitError
}

// call runs fn with a client and prints what it returns: as JSON with
// -o json, else with table.
func (k *command) call(fn func(ctx context.Context, cl *api.Client) (any, error), table func(w io.Writer, v any)) int {
	cl, err := k.client()
	if err != nil {
		return k.fail(err)
	}
	v, err := fn(k.c.ctx, cl)
	code, stored := k.unconfirmed(err)
	if err != nil && !stored {
		return k.fail(err)
	}
	if *k.output == "json" {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return k.fail(fmt.Errorf("encoding output: %w", err))
		}
		fmt.Fprintf(k.c.stdout, "%s\n", b)
		return code
	}
	tw := tabwriter.NewWriter(k.c.stdout, 0, 8, 2, ' ', 0)
	table(tw, v)
	if err := tw.Flush(); err != nil {
		return k.fail(fmt.Errorf("writing output: %w", err))
	}
	return code
}

// message runs fn and prints a confirmation (nothing with -o json).
func (k *command) message(fn func(ctx context.Context, cl *api.Client) error, format string, args ...any) int {
	cl, err := k.client()
	if err != nil {
		return k.fail(err)
	}
	err = fn(k.c.ctx, cl)
	code, stored := k.unconfirmed(err)
	if err != nil && !stored {
		return k.fail(err)
	}
	if *k.output != "json" {
		fmt.Fprintf(k.c.stdout, format+"\n", args...)
	}
	return code
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...any) {
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		fmt.Fprint(w, s)
	}
	fmt.Fprintln(w)
}
