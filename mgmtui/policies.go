package mgmtui

// policyRoutes registers /api/policies and /api/definitions.
func (a *API) policyRoutes() {}
