package main

import (
	"os"
	"testing"
)

// asMeshEnv makes the test binary act as the mesh binary. The commands
// that launch a mesh re-run their own executable as `mesh node`; in a
// test, that executable is the test binary, so TestMain hands such a child
// straight to run, and the in-process tests of demo, up and publish drive
// real node processes without a separate build.
const asMeshEnv = "GOSSIPMESH_TEST_AS_MESH"

func TestMain(m *testing.M) {
	if os.Getenv(asMeshEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Setenv(asMeshEnv, "1") // inherited by every process a test launches
	os.Exit(m.Run())
}
