package cluster_test

// End-to-end tests of the Byzantine figures, on real processes: a `mesh
// up` launcher with its nodes, and the row's scenario (Chaos.RunScenario,
// the code behind `mesh chaos scenario byzantine` and `spam`) run on it.
// They assert the rows' outcomes (delivery, bans, memory), never their
// times, which they log. The meshes are smaller than the rows' (100 and
// 10 nodes): the byzantine test runs 30 nodes with 10 adversaries and the
// spam test 6, with the spammer at 2,000 messages/s rather than 20,000,
// so that both fit beside everything else on two loaded cores under the
// race detector; every wait is bounded by minutes, not by a row's target.

import (
	"fmt"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// byzantineMesh starts n nodes that each dial peers others (so each holds
// at least that many links), flooding, with scoring on (the default).
func byzantineMesh(t *testing.T, n, peers int, seed uint64) *cluster.Chaos {
	t.Helper()
	return upMesh(t, buildMesh(t), "--nodes", fmt.Sprint(n), "--peers", fmt.Sprint(peers), "--seed", fmt.Sprint(seed))
}

// Row: 100 real processes, degree ≥ 8, a third of them adversaries at
// random places (blackhole, or tamper): every honest message reaches
// every honest node. Here 30 nodes, each dialing 8, 10 adversaries.
func TestByzantineBlackholeThird(t *testing.T) {
	t.Parallel()
	ch := byzantineMesh(t, 30, 8, 31)
	res := runRow(t, ch, cluster.ScenarioConfig{Name: "byzantine", Seed: 31, Duration: 3 * time.Second})
	if len(res.Faulted) != 10 {
		t.Errorf("adversaries %v, want a third of 30 nodes", res.Faulted)
	}
}

// The same row with tampering adversaries: each copy they forward has its
// body changed, which the honest nodes refuse (its id no longer matches),
// so honest nodes must get every honest message around them.
func TestByzantineTamperThird(t *testing.T) {
	t.Parallel()
	ch := byzantineMesh(t, 30, 8, 32)
	res := runRow(t, ch, cluster.ScenarioConfig{Name: "byzantine", Seed: 32, Duration: 3 * time.Second, Mode: "tamper"})
	if len(res.Faulted) != 10 {
		t.Errorf("adversaries %v, want a third of 30 nodes", res.Faulted)
	}
}

// Row: one spammer of invalid messages against 10 real processes: every
// honest neighbour bans it, honest delivery stays 100%, and honest nodes
// stay within their memory budget. Here 6 nodes, the spammer at 2,000
// messages/s, honest nodes publishing 20/s.
func TestSpamInvalidIsBanned(t *testing.T) {
	t.Parallel()
	ch := byzantineMesh(t, 6, 3, 33)
	res := runRow(t, ch, cluster.ScenarioConfig{Name: "spam", Seed: 33, Rate: 20, Duration: 3 * time.Second, Mode: "spam-invalid=2000"})
	if len(res.Faulted) != 1 {
		t.Errorf("spammers %v, want one", res.Faulted)
	}
}

// The same row with valid spam: the spammer publishes signed, well-formed
// messages of its own past the per-origin rate budget, which the honest
// nodes refuse past a burst, and its neighbours ban it for behaviour.
// Here 6 nodes with the budget at 500 messages/s (`--origin-rate 500`)
// and the spammer at 2,000, so that the row's shape (four times the
// budget, as 20,000 is to the default 5,000) fits a loaded CI machine.
func TestSpamValidIsBanned(t *testing.T) {
	t.Parallel()
	ch := upMesh(t, buildMesh(t), "--nodes", "6", "--peers", "3", "--seed", "34", "--origin-rate", "500")
	res := runRow(t, ch, cluster.ScenarioConfig{Name: "spam", Seed: 34, Rate: 20, Duration: 3 * time.Second, Mode: "spam=2000"})
	if len(res.Faulted) != 1 {
		t.Errorf("spammers %v, want one", res.Faulted)
	}
}
