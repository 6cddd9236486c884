package main

import (
	"flag"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// liveSettings are the settings SIGHUP applies to a running vpcflow; a
// change to any other one is logged as needing a restart.
func liveSetting(name string) bool {
	return name == "log-level" || name == "api-token-file" || strings.Contains(name, "-tls-")
}

// liveConfig applies reloaded configurations to a running serve.
type liveConfig struct {
	log      *zap.Logger
	cfg      *serveConfig
	setToken func(token string)

	mu          sync.Mutex
	current     *resolvedConfig   // the live settings now in force
	failedStamp map[string]string // TLS prefix → file stamp that failed to load
}

// reload reads the configuration again (file, environment, command line)
// and applies what can change live: the log level, the API token, the
// certificates (re-read even when their file names are unchanged). A
// configuration that does not load is refused whole and the running one
// stays.
func (l *liveConfig) reload() {
	l.mu.Lock()
	defer l.mu.Unlock()
	log := l.log
	log.Info("SIGHUP: reloading the configuration", zap.String("config", l.cfg.configFile))
	next, err := l.cfg.reload(log)
	if err != nil {
		log.Error("configuration reload failed; the running configuration stays", zap.Error(err))
		return
	}
	cur := l.current
	var applied []string
	if next.level != cur.level {
		l.cfg.level.SetLevel(next.level)
		applied = append(applied, "log-level")
	}
	if next.token != cur.token {
		l.setToken(next.token)
		applied = append(applied, "API token")
	}
	var restart []string
	for _, t := range []struct {
		name      string
		running   *certReloader
		loaded    *certReloader
		wasOn, on bool
	}{
		{"openflow", l.cfg.ofTLS, next.ofTLS, l.cfg.ofTLS != nil, next.ofTLS != nil},
		{"ovsdb", l.cfg.ovsdbTLS, next.ovsdbTLS, l.cfg.ovsdbTLS != nil, next.ovsdbTLS != nil},
	} {
		switch {
		case t.wasOn != t.on:
			restart = append(restart, t.name+" TLS on/off")
		case t.on && t.running.replace(t.loaded.material()):
			applied = append(applied, t.name+" TLS certificates")
			t.running.describe(log, t.name, t.name+" TLS certificates reloaded")
		}
		if t.name == "ovsdb" && t.on && t.wasOn && !t.loaded.material().pool.Equal(t.running.startPool) {
			log.Warn("setting changed; restart vpcflow to apply it", zap.String("key", "ovsdb-tls-ca"),
				zap.String("why", "OVSDB servers are checked against the CA loaded at start; the client certificate was reloaded"))
			restart = append(restart, "ovsdb-tls-ca")
		}
	}
	// Everything else needs a restart: compare with what was started.
	started := l.cfg.current.lc.fs
	next.lc.fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || liveSetting(f.Name) {
			return
		}
		was := started.Lookup(f.Name).Value.String()
		if now := f.Value.String(); now != was {
			log.Warn("setting changed; restart vpcflow to apply it", zap.String("key", f.Name),
				zap.String("running", was), zap.String("new", now), zap.String("from", next.lc.originOf(f.Name)))
			restart = append(restart, f.Name)
		}
	})
	l.current = next
	log.Info("configuration reloaded", zap.Strings("applied", applied), zap.Strings("needs_restart", restart))
}

// replace makes m current; it says whether anything changed.
func (r *certReloader) replace(m *tlsMaterial) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	r.cur.Store(m)
	return !sameMaterial(old, m)
}

// reloadChangedTLS re-reads the certificate files whose size or time
// changed since they were loaded (certificate rotation without SIGHUP). A
// set that does not load (the key not yet matching the new certificate…)
// is logged once per change and tried again on the next call.
func (l *liveConfig) reloadChangedTLS() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range []*certReloader{l.cfg.ofTLS, l.cfg.ovsdbTLS} {
		if r == nil || !r.changedOnDisk() {
			continue
		}
		cur := r.material()
		stamp := fileStamp(cur.files[:]...)
		cert, key, cas := cur.files[0], cur.files[1], cur.files[2]
		m, err := loadMaterial(&tlsFlags{prefix: r.prefix, cert: &cert, key: &key, cas: &cas})
		if err != nil {
			if l.failedStamp[r.prefix] != stamp {
				l.failedStamp[r.prefix] = stamp
				l.log.Error("TLS files changed but do not load; the current certificates stay", zap.String("tls", r.prefix), zap.Error(err))
			}
			continue
		}
		delete(l.failedStamp, r.prefix)
		if r.replace(m) {
			r.describe(l.log, r.prefix, r.prefix+" TLS certificates reloaded (files changed)")
			if r == l.cfg.ovsdbTLS && !m.pool.Equal(r.startPool) {
				l.log.Warn("setting changed; restart vpcflow to apply it", zap.String("key", "ovsdb-tls-ca"),
					zap.String("why", "OVSDB servers are checked against the CA loaded at start; the client certificate was reloaded"))
			}
		}
	}
}
