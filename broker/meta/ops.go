package meta

import "fmt"

// Op is one metadata operation. The set is closed: the types below.
type Op interface {
	fmt.Stringer
	opCode() opCode
}

// opCode tags an op in its encoding.
type opCode uint8

const (
	opAddVhost opCode = iota + 1
	opDeleteVhost
	opPutUser
	opDeleteUser
	opSetPermission
	opClearPermission
	opPutPolicy
	opDeletePolicy
	opDeclareExchange
	opDeleteExchange
	opDeclareQueue
	opDeleteQueue
	opBind
	opUnbind
	opBatch
	opAutoDeleteExchange
)

// AddVhost creates a vhost with its predeclared exchanges; adding one
// that exists changes nothing.
type AddVhost struct{ Name string }

// DeleteVhost deletes a vhost with everything in it and every permission
// on it.
type DeleteVhost struct{ Name string }

// PutUser creates or replaces a user.
type PutUser struct{ User User }

// DeleteUser deletes a user and its permissions.
type DeleteUser struct{ Name string }

// SetPermission grants a user access to a vhost, replacing what it had.
type SetPermission struct{ Permission Permission }

// ClearPermission removes a user's access to a vhost.
type ClearPermission struct{ User, Vhost string }

// PutPolicy creates or replaces a policy.
type PutPolicy struct{ Policy Policy }

// DeletePolicy removes a policy.
type DeletePolicy struct{ Vhost, Name string }

// DeclareExchange creates an exchange, or checks that an existing one is
// equivalent (and then changes nothing).
type DeclareExchange struct{ Exchange Exchange }

// DeleteExchange deletes an exchange with its bindings; deleting a missing
// one succeeds. With IfUnused an exchange that is the source or the
// destination of a binding is refused.
type DeleteExchange struct {
	Vhost, Name string
	IfUnused    bool
}

// AutoDeleteExchange deletes an auto-delete exchange that is the source
// of no binding (its last one was to a queue that is not metadata: an
// exclusive queue); otherwise it changes nothing.
type AutoDeleteExchange struct{ Vhost, Name string }

// DeclareQueue creates a shared queue, or checks that an existing one is
// equivalent. ServerNamed marks a name the broker generated (amq.gen-…),
// which may use the reserved prefix.
type DeclareQueue struct {
	Queue       Queue
	ServerNamed bool
}

// DeleteQueue deletes a queue with its bindings; deleting a missing one
// succeeds. The conditions on its contents (if-unused, if-empty) are the
// caller's to check, where the queue runs.
type DeleteQueue struct{ Vhost, Name string }

// Bind adds a binding (binding twice changes nothing).
type Bind struct{ Binding Binding }

// Unbind removes a binding (a missing one changes nothing); an auto-delete
// source that loses its last binding goes too.
type Unbind struct{ Binding Binding }

// Batch is ops applied in order as one: all of them or, if one fails its
// check, none (a definitions import).
type Batch struct{ Ops []Op }

func (AddVhost) opCode() opCode        { return opAddVhost }
func (DeleteVhost) opCode() opCode     { return opDeleteVhost }
func (PutUser) opCode() opCode         { return opPutUser }
func (DeleteUser) opCode() opCode      { return opDeleteUser }
func (SetPermission) opCode() opCode   { return opSetPermission }
func (ClearPermission) opCode() opCode { return opClearPermission }
func (PutPolicy) opCode() opCode       { return opPutPolicy }
func (DeletePolicy) opCode() opCode    { return opDeletePolicy }
func (DeclareExchange) opCode() opCode { return opDeclareExchange }
func (DeleteExchange) opCode() opCode  { return opDeleteExchange }
func (AutoDeleteExchange) opCode() opCode {
	return opAutoDeleteExchange
}
func (DeclareQueue) opCode() opCode { return opDeclareQueue }
func (DeleteQueue) opCode() opCode  { return opDeleteQueue }
func (Bind) opCode() opCode         { return opBind }
func (Unbind) opCode() opCode       { return opUnbind }
func (Batch) opCode() opCode        { return opBatch }

func (o AddVhost) String() string    { return fmt.Sprintf("vhost %q", o.Name) }
func (o DeleteVhost) String() string { return fmt.Sprintf("delete vhost %q", o.Name) }
func (o PutUser) String() string     { return fmt.Sprintf("user %q", o.User.Name) }
func (o DeleteUser) String() string  { return fmt.Sprintf("delete user %q", o.Name) }
func (o SetPermission) String() string {
	return fmt.Sprintf("permission of %q on vhost %q", o.Permission.User, o.Permission.Vhost)
}
func (o ClearPermission) String() string {
	return fmt.Sprintf("clear permission of %q on vhost %q", o.User, o.Vhost)
}
func (o PutPolicy) String() string {
	return fmt.Sprintf("policy %q in vhost %q", o.Policy.Name, o.Policy.Vhost)
}
func (o DeletePolicy) String() string {
	return fmt.Sprintf("delete policy %q in vhost %q", o.Name, o.Vhost)
}
func (o DeclareExchange) String() string {
	return fmt.Sprintf("exchange %q in vhost %q", o.Exchange.Name, o.Exchange.Vhost)
}
func (o DeleteExchange) String() string {
	return fmt.Sprintf("delete exchange %q in vhost %q", o.Name, o.Vhost)
}
func (o AutoDeleteExchange) String() string {
	return fmt.Sprintf("auto-delete exchange %q in vhost %q", o.Name, o.Vhost)
}
func (o DeclareQueue) String() string {
	return fmt.Sprintf("queue %q in vhost %q", o.Queue.Name, o.Queue.Vhost)
}
func (o DeleteQueue) String() string {
	return fmt.Sprintf("delete queue %q in vhost %q", o.Name, o.Vhost)
}
func (o Bind) String() string   { return "binding " + describeBinding(o.Binding) }
func (o Unbind) String() string { return "unbind " + describeBinding(o.Binding) }
func (o Batch) String() string  { return fmt.Sprintf("batch of %d", len(o.Ops)) }

func describeBinding(b Binding) string {
	dt := "queue"
	if b.Destination.IsExchange {
		dt = "exchange"
	}
	return fmt.Sprintf("from %q to %s %q in vhost %q", b.Source, dt, b.Destination.Name, b.Vhost)
}
