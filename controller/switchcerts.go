package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

// bindTimeout bounds storing a first-use binding: a switch's handshake
// waits for it.
const bindTimeout = 5 * time.Second

// BindCertificate keeps which TLS certificate a dpid is bound to in the
// store (openflow.CertificateBinder): the first certificate that connects
// with a dpid is stored as its binding (source first-use), unless one was
// pinned through the API; the binding outlives a restart and holds on
// every replica. A dpid already bound costs a read; a new binding is a
// store write, and a dpid whose binding cannot be stored is refused.
func (c *Controller) BindCertificate(ctx context.Context, dpid uint64, fp [sha256.Size]byte, remote string) ([sha256.Size]byte, error) {
	d := topology.DPID(dpid)
	if cur, ok := c.boundCertificate(d); ok {
		return cur, nil
	}
	ctx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	sum := hex.EncodeToString(fp[:])
	_, err := c.Apply(ctx, []topology.Op{topology.Create(&topology.SwitchCertificate{
		DPID: d, SHA256: sum, Source: topology.CertificateFirstUse, Remote: remote})})
	if err != nil {
		// Bound meanwhile: by another connection, or by another replica.
		if cur, ok := c.boundCertificate(d); ok {
			return cur, nil
		}
		return fp, fmt.Errorf("storing the binding of dpid %s to certificate %s: %w", d, sum, err)
	}
	c.log.Info("bound a datapath id to the TLS certificate it first connected with",
		zap.String("dpid", d.String()), zap.String("certificate_sha256", sum), zap.String("remote", remote))
	return fp, nil
}

// BoundCertificate is the certificate dpid is bound to, if any
// (openflow.CertificateBinder): a read of the store.
func (c *Controller) BoundCertificate(_ context.Context, dpid uint64) ([sha256.Size]byte, bool, error) {
	fp, ok := c.boundCertificate(topology.DPID(dpid))
	return fp, ok, nil
}

// boundCertificate is the certificate a dpid is bound to, if any.
func (c *Controller) boundCertificate(d topology.DPID) (fp [sha256.Size]byte, ok bool) {
	c.store.Read(func(st *topology.State) {
		var b topology.SwitchCertificate
		if b, ok = st.SwitchCertificate(d); ok {
			fp = b.Fingerprint()
		}
	})
	return fp, ok
}
