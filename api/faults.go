package api

import (
	"context"
	"fmt"
	"net/http"

	"gossipmesh/fault"
)

// FaultBackend is implemented by a Backend whose fault plan can be read
// and replaced at run time (node.Node): it gets the /faults routes. The
// plan is the node's own: loss, delay and jitter on every link from it,
// and the peers it is cut off from, both ways (see package fault).
type FaultBackend interface {
	// Faults returns the plan in force.
	Faults() fault.Plan
	// SetFaults replaces the plan; the zero Plan clears it. It refuses a
	// plan the node cannot apply with an error naming the field.
	SetFaults(p fault.Plan) error
}

// MaxFaultsBody bounds a PUT /faults request body: room for a cut list of
// some 50,000 node ids, more than a mesh on one machine has.
const MaxFaultsBody = 1 << 20

// registerFaults adds the /faults routes for b:
//
//	GET    /faults   the plan in force: {"drop":0,"delay":"0s","jitter":"0s","cut":[]}
//	PUT    /faults   replace it (application/json); answers with the plan now in force
//	DELETE /faults   clear it; answers with the empty plan
//
// A bad value is a 400 whose error names the field.
func registerFaults(mux *http.ServeMux, b FaultBackend) {
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, b.Faults())
	})
	mux.HandleFunc("PUT /faults", func(w http.ResponseWriter, r *http.Request) {
		var p fault.Plan
		if !DecodeJSON(w, r, MaxFaultsBody, &p) {
			return
		}
		if err := b.SetFaults(p); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, b.Faults())
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		if err := b.SetFaults(fault.Plan{}); err != nil {
			WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, b.Faults())
	})
}

// Faults returns the node's fault plan.
func (c *Client) Faults(ctx context.Context) (fault.Plan, error) {
	var p fault.Plan
	err := c.do(ctx, 0, http.MethodGet, "/faults", nil, &p)
	return p, err
}

// SetFaults replaces the node's fault plan and returns the plan now in
// force, as the node reports it.
func (c *Client) SetFaults(ctx context.Context, p fault.Plan) (fault.Plan, error) {
	var got fault.Plan
	err := c.do(ctx, 0, http.MethodPut, "/faults", p, &got)
	return got, err
}

// ClearFaults removes the node's fault plan. The request carries an empty
// JSON object, so that it passes Guard's Content-Type check like every
// other state-changing request.
func (c *Client) ClearFaults(ctx context.Context) error {
	var got fault.Plan
	if err := c.do(ctx, 0, http.MethodDelete, "/faults", struct{}{}, &got); err != nil {
		return err
	}
	if !got.IsZero() {
		return fmt.Errorf("DELETE %s/faults: the node still reports a plan", c.base)
	}
	return nil
}
