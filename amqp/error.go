package amqp

import "fmt"

// Error is an AMQP protocol exception: a reply code and text, and the class
// and method that caused it. Codes 403, 404, 405 and 406 (and the other soft
// errors) close the channel; the hard errors close the connection.
type Error struct {
	Code     uint16
	Text     string
	ClassID  uint16
	MethodID uint16
}

// Errorf returns an Error whose text is the code's name followed by the
// formatted message, in RabbitMQ's style: "NOT_FOUND - no queue 'q' in vhost '/'".
func Errorf(code uint16, format string, args ...any) *Error {
	return &Error{Code: code, Text: ReplyName(code) + " - " + fmt.Sprintf(format, args...)}
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("amqp %d: %s", e.Code, e.Text)
}

// WithMethod returns a copy of e that names the method that caused it.
func (e *Error) WithMethod(classID, methodID uint16) *Error {
	c := *e
	c.ClassID, c.MethodID = classID, methodID
	return &c
}

// ConnectionLevel reports whether the error closes the whole connection
// rather than just the channel.
func (e *Error) ConnectionLevel() bool {
	switch e.Code {
	case ContentTooLarge, NoRoute, NoConsumers, AccessRefused, NotFound, ResourceLocked, PreconditionFailed:
		return false
	}
	return true
}

// ReplyName returns the upper-case name of a reply code, e.g. "NOT_FOUND".
func ReplyName(code uint16) string {
	switch code {
	case ReplySuccess:
		return "OK"
	case ContentTooLarge:
		return "CONTENT_TOO_LARGE"
	case NoRoute:
		return "NO_ROUTE"
	case NoConsumers:
		return "NO_CONSUMERS"
	case ConnectionForced:
		return "CONNECTION_FORCED"
	case InvalidPath:
		return "INVALID_PATH"
	case AccessRefused:
		return "ACCESS_REFUSED"
	case NotFound:
		return "NOT_FOUND"
	case ResourceLocked:
		return "RESOURCE_LOCKED"
	case PreconditionFailed:
		return "PRECONDITION_FAILED"
	case FrameError:
		return "FRAME_ERROR"
	case SyntaxError:
		return "SYNTAX_ERROR"
	case CommandInvalid:
		return "COMMAND_INVALID"
	case ChannelError:
		return "CHANNEL_ERROR"
	case UnexpectedFrame:
		return "UNEXPECTED_FRAME"
	case ResourceError:
		return "RESOURCE_ERROR"
	case NotAllowed:
		return "NOT_ALLOWED"
	case NotImplemented:
		return "NOT_IMPLEMENTED"
	case InternalError:
		return "INTERNAL_ERROR"
	}
	return fmt.Sprintf("CODE_%d", code)
}
