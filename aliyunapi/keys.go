package aliyunapi

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// keyFile holds the access keys of the keys file, re-read when the file
// changes (checked at most once a second), so keys can be added and
// revoked without a restart. A file that has become unreadable or invalid
// keeps the keys last read, with an error in the log.
type keyFile struct {
	log  *zap.Logger
	path string
	now  func() time.Time

	mu      sync.Mutex
	keys    map[string]string
	mtime   time.Time
	size    int64
	checked time.Time
}

// loadKeyFile reads the keys file: one access key a line, "ID SECRET"
// separated by white space; blank lines and lines starting with '#' are
// skipped. A file with no key is refused: the API would refuse everyone.
func loadKeyFile(log *zap.Logger, path string, now func() time.Time) (*keyFile, error) {
	if path == "" {
		return nil, fmt.Errorf("no access keys file: the Aliyun API verifies every request's signature against the keys of the file given with --aliyun-keys-file (lines \"ACCESS_KEY_ID ACCESS_KEY_SECRET\")")
	}
	kf := &keyFile{log: log, path: path, now: now}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("access keys file: %w", err)
	}
	keys, err := readKeys(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the Aliyun access keys file can be read by other users; chmod 600 it",
			zap.String("file", path), zap.String("mode", fi.Mode().Perm().String()))
	}
	kf.keys, kf.mtime, kf.size, kf.checked = keys, fi.ModTime(), fi.Size(), now()
	return kf, nil
}

// readKeys parses a keys file.
func readKeys(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("access keys file: %w", err)
	}
	return parseKeys(path, b)
}

func parseKeys(path string, b []byte) (map[string]string, error) {
	keys := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("access keys file %s line %d: want \"ACCESS_KEY_ID ACCESS_KEY_SECRET\", got %d fields", path, n, len(f))
		}
		for _, s := range f {
			for i := 0; i < len(s); i++ {
				if s[i] < 0x21 || s[i] > 0x7e {
					return nil, fmt.Errorf("access keys file %s line %d: keys are printable ASCII", path, n)
				}
			}
		}
		if _, dup := keys[f[0]]; dup {
			return nil, fmt.Errorf("access keys file %s line %d: access key %q is given twice", path, n, f[0])
		}
		keys[f[0]] = f[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("access keys file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("access keys file %s holds no key: add lines \"ACCESS_KEY_ID ACCESS_KEY_SECRET\"", path)
	}
	return keys, nil
}

// secret returns the secret of an access key.
func (kf *keyFile) secret(id string) (string, bool) {
	kf.mu.Lock()
	defer kf.mu.Unlock()
	if now := kf.now(); now.Sub(kf.checked) >= time.Second || now.Before(kf.checked) {
		kf.checked = now
		kf.refresh()
	}
	s, ok := kf.keys[id]
	return s, ok
}

// refresh re-reads the file if it changed. Caller holds kf.mu.
func (kf *keyFile) refresh() {
	fi, err := os.Stat(kf.path)
	if err != nil {
		kf.log.Error("cannot check the Aliyun access keys file; keeping the keys read before", zap.String("file", kf.path), zap.Error(err))
		return
	}
	if fi.ModTime().Equal(kf.mtime) && fi.Size() == kf.size {
		return
	}
	keys, err := readKeys(kf.path)
	if err != nil {
		kf.log.Error("the Aliyun access keys file changed but cannot be used; keeping the keys read before", zap.Error(err))
		return
	}
	kf.keys, kf.mtime, kf.size = keys, fi.ModTime(), fi.Size()
	kf.log.Info("Aliyun access keys re-read", zap.String("file", kf.path), zap.Int("keys", len(keys)))
}
