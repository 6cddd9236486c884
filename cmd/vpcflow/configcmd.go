package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// configCheck is `vpcflow config check`: load the configuration as serve
// would (file, environment, flags), check every setting and the files it
// names, and print the result, without starting anything.
func (c *cli) configCheck(args []string) int {
	if wantsHelp(args) {
		fmt.Fprintf(c.stdout, `usage: vpcflow config check [--config FILE] [SERVE FLAGS]

Check a configuration as 'vpcflow serve' would read it: the file (--config,
else $%s, else %s), the VPCFLOW_* variables and any serve flags
given here. Unknown keys, bad values and unreadable certificate or token
files are reported with the key and the line; nothing is started. Prints
every setting with where its value comes from.

Example:
  vpcflow config check --config /etc/vpcflow/vpcflow.yaml
`, configEnv, defaultConfigFile)
		return exitOK
	}
	lc, err := loadServeConfig(args, c.getenv)
	if errors.Is(err, errHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return exitError
	}
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(c.stderr), zapcore.WarnLevel))
	if _, err := lc.resolve(log, c.getenv); err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return exitError
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	row(tw, "KEY", "VALUE", "FROM")
	for _, s := range lc.settings() {
		row(tw, s[0], s[1], s[2])
	}
	_ = tw.Flush()
	file := lc.file
	if file == "" {
		file = "(no configuration file: " + lc.opts.Config + " does not exist)"
	}
	fmt.Fprintf(c.stdout, "\nconfiguration OK: %s\n", file)
	return exitOK
}
