package openflow

import (
	"context"
	"crypto/sha256"
	"sync"
)

// CertificateBinder is implemented by a Handler that keeps which TLS
// certificate each datapath id is bound to, by the SHA-256 of the
// certificate's DER. vpcflow's controller keeps them in its store, so a
// binding outlives a restart and holds on every replica. A Handler
// without it gets the server's own, in memory, for as long as the server
// runs.
type CertificateBinder interface {
	// BoundCertificate is the certificate dpid is bound to, if it is. An
	// error refuses the connection.
	BoundCertificate(ctx context.Context, dpid uint64) (fp [sha256.Size]byte, ok bool, err error)
	// BindCertificate binds dpid to the certificate fp unless dpid is
	// bound already, and returns the certificate dpid is bound to
	// afterwards: fp, or the one bound before. remote is where the
	// connection came from (for the record). An error refuses the
	// connection: a dpid whose binding cannot be kept is not served.
	BindCertificate(ctx context.Context, dpid uint64, fp [sha256.Size]byte, remote string) ([sha256.Size]byte, error)
}

// memoryBinder is the server's own CertificateBinder: in memory.
type memoryBinder struct {
	mu    sync.Mutex
	bound map[uint64][sha256.Size]byte
}

func (b *memoryBinder) BoundCertificate(_ context.Context, dpid uint64) ([sha256.Size]byte, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fp, ok := b.bound[dpid]
	return fp, ok, nil
}

func (b *memoryBinder) BindCertificate(_ context.Context, dpid uint64, fp [sha256.Size]byte, _ string) ([sha256.Size]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.bound[dpid]; ok {
		return cur, nil
	}
	b.bound[dpid] = fp
	return fp, nil
}
