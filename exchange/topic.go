package exchange

import (
	"strings"

	"github.com/warrenmq/warren/amqp"
)

// topicNode is a node of the topic trie. A routing key is a list of words
// separated by '.'; the empty key has no words. Nodes are immutable once
// published: updates copy the path from the root to the changed node.
type topicNode struct {
	children map[string]*topicNode // literal words
	star     *topicNode            // "*": exactly one word
	hash     *topicNode            // "#": zero or more words
	dests    []Destination
}

// nextWord splits the first word off rest; end reports whether no words
// follow it.
func nextWord(rest string) (word, tail string, end bool) {
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		return rest[:i], rest[i+1:], false
	}
	return rest, "", true
}

func (n *topicNode) route(key string, _ amqp.Table, out []Destination) []Destination {
	return n.match(key, key == "", out)
}

// match appends the destinations of bindings under n that match the words
// of rest (none left when end).
func (n *topicNode) match(rest string, end bool, out []Destination) []Destination {
	if n.hash != nil {
		out = n.hash.matchAfterHash(rest, end, out)
	}
	if end {
		return append(out, n.dests...)
	}
	word, tail, tailEnd := nextWord(rest)
	if c := n.children[word]; c != nil {
		out = c.match(tail, tailEnd, out)
	}
	if n.star != nil {
		out = n.star.match(tail, tailEnd, out)
	}
	return out
}

// matchAfterHash matches from the node below a '#', letting the '#' take
// zero, one, two ... of the remaining words.
func (h *topicNode) matchAfterHash(rest string, end bool, out []Destination) []Destination {
	for {
		out = h.match(rest, end, out)
		if end {
			return out
		}
		_, rest, end = nextWord(rest)
	}
}

func (n *topicNode) with(b Binding, add bool) router {
	r := n.update(b.Key, b.Key == "", b.Destination, add)
	if r == nil {
		return &topicNode{}
	}
	return r
}

// update returns a copy of n with d added to or removed from the node that
// the words of rest lead to; nil when the result is empty.
func (n *topicNode) update(rest string, end bool, d Destination, add bool) *topicNode {
	c := &topicNode{}
	if n != nil {
		*c = *n
	}
	if end {
		if add {
			c.dests = addDest(c.dests, d)
		} else {
			c.dests = removeDest(c.dests, d)
		}
	} else {
		word, tail, tailEnd := nextWord(rest)
		switch word {
		case "*":
			c.star = c.star.update(tail, tailEnd, d, add)
		case "#":
			c.hash = c.hash.update(tail, tailEnd, d, add)
		default:
			children := make(map[string]*topicNode, len(c.children)+1)
			for k, v := range c.children {
				children[k] = v
			}
			if child := children[word].update(tail, tailEnd, d, add); child != nil {
				children[word] = child
			} else {
				delete(children, word)
			}
			c.children = children
		}
	}
	if len(c.dests) == 0 && len(c.children) == 0 && c.star == nil && c.hash == nil {
		return nil
	}
	return c
}
