package score

import "gossipmesh/gossip"

// signedTestConfig is gossip.DefaultConfig signed with the simulator's
// cost model (gossip.ModelAuth), the Auth strict signing needs when a test
// builds cores without a node's key.
func signedTestConfig() gossip.Config {
	cfg := gossip.DefaultConfig()
	cfg.Auth = gossip.NewModelAuth(1)
	return cfg
}
