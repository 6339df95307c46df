package mgmtui

import "net/http"

const (
	get  = http.MethodGet
	put  = http.MethodPut
	post = http.MethodPost
	del  = http.MethodDelete
)

// routes registers every endpoint with the tags it needs.
func (a *API) routes() {
	h := a.handle
	h("/metrics", noAuth, a.metrics, get)

	h("/api/overview", anyUser, a.overview, get)
	h("/api/cluster-name", anyUser, a.getClusterName, get)
	h("/api/nodes", monitor, a.nodes, get)
	h("/api/nodes/{node}", monitor, a.nodeByName, get)
	h("/api/nodes/{node}", adminOnly, a.forgetNode, del) // Warren's: RabbitMQ forgets with rabbitmqctl
	h("/api/whoami", anyUser, a.whoami, get)
	h("/api/extensions", anyUser, a.extensions, get)
	h("/api/health/checks/alarms", anyUser, a.healthAlarms, get)
	h("/api/health/checks/local-alarms", anyUser, a.healthAlarms, get)
	h("/api/health/checks/virtual-hosts", anyUser, a.healthVhosts, get)
	h("/api/health/checks/port-listener/{port}", anyUser, a.healthPortListener, get)
	h("/api/aliveness-test/{vhost}", anyUser, a.aliveness, get)

	h("/api/connections", anyUser, a.listConnections, get)
	h("/api/connections/{name}", anyUser, a.getConnection, get)
	h("/api/connections/{name}", anyUser, a.closeConnection, del)
	h("/api/connections/{name}/channels", anyUser, a.connectionChannels, get)
	h("/api/vhosts/{vhost}/connections", anyUser, a.listConnections, get)
	h("/api/channels", anyUser, a.listChannels, get)
	h("/api/vhosts/{vhost}/channels", anyUser, a.listChannels, get)
	h("/api/channels/{name}", anyUser, a.getChannel, get)
	h("/api/consumers", anyUser, a.listConsumers, get)
	h("/api/consumers/{vhost}", anyUser, a.listConsumers, get)

	h("/api/exchanges", anyUser, a.listExchanges, get)
	h("/api/exchanges/{vhost}", anyUser, a.listExchanges, get)
	h("/api/exchanges/{vhost}/{name}", anyUser, a.getExchange, get)
	h("/api/exchanges/{vhost}/{name}", anyUser, a.putExchange, put)
	h("/api/exchanges/{vhost}/{name}", anyUser, a.deleteExchange, del)
	h("/api/exchanges/{vhost}/{name}/bindings/source", anyUser, a.exchangeBindings(true), get)
	h("/api/exchanges/{vhost}/{name}/bindings/destination", anyUser, a.exchangeBindings(false), get)
	h("/api/exchanges/{vhost}/{name}/publish", anyUser, a.publish, post)

	h("/api/queues", anyUser, a.listQueues, get)
	h("/api/queues/{vhost}", anyUser, a.listQueues, get)
	h("/api/queues/{vhost}/{name}", anyUser, a.getQueue, get)
	h("/api/queues/{vhost}/{name}", anyUser, a.putQueue, put)
	h("/api/queues/{vhost}/{name}", anyUser, a.deleteQueue, del)
	h("/api/queues/{vhost}/{name}/bindings", anyUser, a.queueBindings, get)
	h("/api/queues/{vhost}/{name}/contents", anyUser, a.purgeQueue, del)
	h("/api/queues/{vhost}/{name}/get", anyUser, a.getMessages, post)

	h("/api/bindings", anyUser, a.listBindings, get)
	h("/api/bindings/{vhost}", anyUser, a.listBindings, get)
	for _, d := range []struct {
		seg        string
		isExchange bool
	}{{"q", false}, {"e", true}} {
		base := "/api/bindings/{vhost}/e/{source}/" + d.seg + "/{destination}"
		h(base, anyUser, a.listBindingsBetween(d.isExchange), get)
		h(base, anyUser, a.createBinding(d.isExchange), post)
		h(base+"/{props}", anyUser, a.getBinding(d.isExchange), get)
		h(base+"/{props}", anyUser, a.deleteBinding(d.isExchange), del)
	}

	h("/api/vhosts", anyUser, a.listVhosts, get)
	h("/api/vhosts/{vhost}", anyUser, a.getVhost, get)
	h("/api/vhosts/{vhost}", adminOnly, a.putVhost, put)
	h("/api/vhosts/{vhost}", adminOnly, a.deleteVhost, del)
	h("/api/vhosts/{vhost}/permissions", adminOnly, a.listPermissions, get)

	h("/api/users", adminOnly, a.listUsers, get)
	h("/api/users/without-permissions", adminOnly, a.usersWithoutPermissions, get)
	h("/api/users/bulk-delete", adminOnly, a.bulkDeleteUsers, post)
	h("/api/users/{user}", adminOnly, a.getUser, get)
	h("/api/users/{user}", adminOnly, a.putUser, put)
	h("/api/users/{user}", adminOnly, a.deleteUser, del)
	h("/api/users/{user}/permissions", adminOnly, a.listPermissions, get)
	h("/api/permissions", adminOnly, a.listPermissions, get)
	h("/api/permissions/{vhost}/{user}", adminOnly, a.getPermission, get)
	h("/api/permissions/{vhost}/{user}", adminOnly, a.putPermission, put)
	h("/api/permissions/{vhost}/{user}", adminOnly, a.deletePermission, del)

	a.policyRoutes()

	if a.opts.UI != nil {
		a.router.PathPrefix("/").Handler(a.opts.UI)
	}
}
