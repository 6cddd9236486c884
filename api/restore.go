package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// Backuper writes a consistent copy of the store while it stays in use
// (topology.Store.Backup), for GET /v1/backup (`vpcflow backup`).
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}

// Restorer brings the running fabric back to a backup's content, changing
// only what differs (controller.Controller.Restore), for POST /v1/restore
// (`vpcflow restore`).
type Restorer interface {
	Restore(ctx context.Context, snap topology.Snapshot, dryRun bool) (controller.RestoreResult, error)
}

// MaxRestoreBytes bounds the body of POST /v1/restore (instead of
// Options.MaxBodyBytes): a store of 50,000 hosts is about 15 MB of JSON.
const MaxRestoreBytes = 512 << 20

// RestoreRequest is the body of POST /v1/restore: a store's content as
// the backend loads it (topology.Snapshot), each value the object's
// stored JSON.
type RestoreRequest struct {
	Records []RestoreRecord   `json:"records"`
	LastIDs map[string]uint32 `json:"last_ids,omitempty"`
}

// RestoreRecord is one stored object of a RestoreRequest.
type RestoreRecord struct {
	Kind  string          `json:"kind"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// RestoreResponse answers POST /v1/restore: 200, or 202 when a switch
// did not confirm the change (Message and Unconfirmed then say which and
// why; the store has the backup's content either way).
type RestoreResponse struct {
	DryRun      bool                           `json:"dry_run"`
	Created     int                            `json:"created"`
	Updated     int                            `json:"updated"`
	Deleted     int                            `json:"deleted"`
	Unchanged   int                            `json:"unchanged"`
	FlowMods    int                            `json:"flow_mods"`
	Switches    int                            `json:"switches"`
	Changes     []RestoreChange                `json:"changes"`
	Message     string                         `json:"message,omitempty"`
	Unconfirmed []controller.UnconfirmedSwitch `json:"unconfirmed,omitempty"`
}

// RestoreChange is one object a restore creates, updates or deletes.
type RestoreChange struct {
	Op   string `json:"op"`
	Kind string `json:"kind"`
	Key  string `json:"key"`
	ID   uint32 `json:"id"`
}

// storeRoutes are GET /v1/backup (Options.Backup) and POST /v1/restore
// (Options.Restorer), when configured.
func (s *server) storeRoutes() []route {
	var out []route
	if s.opts.Backup != nil {
		out = append(out, route{"/v1/backup", http.MethodGet, s.backup})
	}
	if s.opts.Restorer != nil {
		out = append(out, route{"/v1/restore", http.MethodPost, s.restore})
	}
	return out
}

// backup: GET /v1/backup streams a consistent copy of the store (for the
// bbolt backend, a store file `vpcflow restore` and Open take).
func (s *server) backup(w http.ResponseWriter, r *http.Request) {
	bw := &backupWriter{w: w}
	n, err := s.opts.Backup.Backup(bw)
	if err != nil {
		s.log.Error("backup failed", zap.Error(err), zap.Int64("bytes", n))
		if !bw.started {
			s.writeError(w, r, err)
		}
		// Otherwise the client gets a short file, which `vpcflow backup`
		// checks and refuses.
		return
	}
	s.log.Info("backup sent", zap.Int64("bytes", n), zap.String("remote", r.RemoteAddr))
}

// backupWriter sends the backup's headers with its first byte, so that a
// backup that fails before it can still be answered with an error.
type backupWriter struct {
	w       http.ResponseWriter
	started bool
}

func (b *backupWriter) Write(p []byte) (int, error) {
	if !b.started {
		b.started = true
		b.w.Header().Set("Content-Type", "application/octet-stream")
		b.w.Header().Set("Content-Disposition", `attachment; filename="vpcflow.db"`)
	}
	return b.w.Write(p)
}

// restore: POST /v1/restore[?dry_run=true] makes the topology exactly the
// snapshot in the body, changing only what differs (Options.Restorer):
// 400 for a body that is not a snapshot or a snapshot that is not a valid
// store (nothing changes), 202 when a switch did not confirm.
func (s *server) restore(w http.ResponseWriter, r *http.Request) {
	var dryRun bool
	switch v := r.URL.Query().Get("dry_run"); v {
	case "", "false", "0":
	case "true", "1":
		dryRun = true
	default:
		s.writeError(w, r, badRequest("dry_run", "want true or false, got %s", quote(v)))
		return
	}
	body, rerr := readBody(w, r, MaxRestoreBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var req RestoreRequest
	if rerr := s.decodeObject(body, &req); rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	snap := topology.Snapshot{LastIDs: req.LastIDs}
	if snap.LastIDs == nil {
		snap.LastIDs = map[string]uint32{}
	}
	for _, rec := range req.Records {
		snap.Records = append(snap.Records, topology.Record{Kind: rec.Kind, Key: rec.Key, Value: rec.Value})
	}
	res, err := s.opts.Restorer.Restore(r.Context(), snap, dryRun)
	var ue *controller.UnconfirmedError
	if err != nil && !errors.As(err, &ue) {
		switch {
		case errors.Is(err, topology.ErrInvalidSnapshot):
			s.log.Warn("restore refused", zap.Error(err))
			writeJSON(w, http.StatusBadRequest, ErrorBody{Error: err.Error()})
		case errors.Is(err, topology.ErrClosed):
			writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: err.Error()})
		default:
			s.writeError(w, r, fmt.Errorf("restore: %w", err))
		}
		return
	}
	out := RestoreResponse{DryRun: dryRun, Unchanged: res.Unchanged, FlowMods: res.FlowMods, Switches: res.Switches, Changes: []RestoreChange{}}
	for _, op := range res.Ops {
		switch op.Kind {
		case topology.OpCreate:
			out.Created++
		case topology.OpUpdate:
			out.Updated++
		case topology.OpDelete:
			out.Deleted++
		}
		out.Changes = append(out.Changes, RestoreChange{Op: op.Kind.String(), Kind: topology.KindOf(op.Obj), Key: op.Obj.Key(), ID: op.Obj.ObjectID()})
	}
	code := http.StatusOK
	if ue != nil {
		code = http.StatusAccepted
		out.Message, out.Unconfirmed = ue.Error(), ue.Switches
	}
	s.log.Info("restore", zap.Bool("dry_run", dryRun), zap.Int("created", out.Created), zap.Int("updated", out.Updated),
		zap.Int("deleted", out.Deleted), zap.Int("unchanged", out.Unchanged), zap.Int("flow_mods", out.FlowMods),
		zap.String("remote", r.RemoteAddr))
	writeJSON(w, code, out)
}
