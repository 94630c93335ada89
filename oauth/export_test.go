package oauth

import "github.com/mcptap/mcptap"

// FlowsRebuilt exposes the uncached build to the tests.
func (t *Tracker) FlowsRebuilt() []mcptap.Flow { return t.flowsRebuilt() }
