package l7

import "strings"

// pathNode is a node of a radix tree (compressed by byte) of the literal
// paths of one host tier: `path` (exact) and `path_prefix`. The key of a
// node is the concatenation of the labels from the root down to it; the
// node holds the routes whose path or prefix is exactly that key, each list
// best first.
//
// Prefixes are plain byte prefixes, as Traefik's PathPrefix and Caddy's
// path matcher "/api*" are: "/api" matches "/apix" and "/api/x". A route
// that means a segment writes "/api/"; strip_prefix deals with the
// segment boundary when it rewrites the path.
type pathNode struct {
	label    string
	exact    []entry // path == key
	prefix   []entry // path_prefix == key
	indices  string  // first byte of each child's label, in children's order
	children []*pathNode
}

// node returns the node whose key is key, creating it (and splitting an
// edge) as needed.
func (n *pathNode) node(key string) *pathNode {
	for key != "" {
		i := strings.IndexByte(n.indices, key[0])
		if i < 0 {
			c := &pathNode{label: key}
			n.indices += key[:1]
			n.children = append(n.children, c)
			return c
		}
		c := n.children[i]
		l := commonPrefixLen(c.label, key)
		if l < len(c.label) {
			mid := &pathNode{label: c.label[:l], indices: c.label[l : l+1], children: []*pathNode{c}}
			c.label = c.label[l:]
			n.children[i] = mid
			c = mid
		}
		key = key[l:]
		n = c
	}
	return n
}

func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// walk offers the routes of every node whose key is a prefix of the
// request path to s, deepest node first: with equal priorities the deepest
// candidate wins, so the shallower lists are then skipped without running
// their matchers. rest is the part of the path below n.
func (s *matchState) walk(n *pathNode, rest string) {
	if rest == "" {
		s.consider(n.exact)
	} else {
		// A node has few children: a loop beats IndexByte's call.
		for i := 0; i < len(n.indices); i++ {
			if n.indices[i] == rest[0] {
				if c := n.children[i]; strings.HasPrefix(rest, c.label) {
					s.walk(c, rest[len(c.label):])
				}
				break
			}
		}
	}
	s.consider(n.prefix)
}

// each calls f for every node of the tree.
func (n *pathNode) each(f func(*pathNode)) {
	f(n)
	for _, c := range n.children {
		c.each(f)
	}
}

// compact moves the tree below n into memory of its own once it is built:
// its nodes into one array in breadth-first order (a node's children side
// by side), their child pointers into another, labels and indices into
// one string and candidate lists into one array. Among 10,000 routes most
// of a lookup's time is cache misses; a walk then touches a few nearby
// lines instead of a dozen allocations made as the configuration was
// read. n itself (a tier's root) stays in place.
func (n *pathNode) compact() {
	order := []*pathNode{n}
	var text, ents, kids int
	for i := 0; i < len(order); i++ {
		o := order[i]
		order = append(order, o.children...)
		text += len(o.label) + len(o.indices)
		ents += len(o.exact) + len(o.prefix)
		kids += len(o.children)
	}
	buf := make([]byte, 0, text)
	for _, o := range order {
		buf = append(append(buf, o.label...), o.indices...)
	}
	str := string(buf)
	es := make([]entry, 0, ents)
	ptrs := make([]*pathNode, kids)
	slab := make([]pathNode, len(order)-1)
	at := func(i int) *pathNode {
		if i == 0 {
			return n
		}
		return &slab[i-1]
	}
	list := func(src []entry) []entry {
		if len(src) == 0 {
			return nil
		}
		start := len(es)
		es = append(es, src...) // within capacity: never moves
		return es[start:len(es):len(es)]
	}
	next, off := 1, 0
	for i, o := range order {
		c := pathNode{exact: list(o.exact), prefix: list(o.prefix)}
		c.label, off = str[off:off+len(o.label)], off+len(o.label)
		c.indices, off = str[off:off+len(o.indices)], off+len(o.indices)
		if len(o.children) > 0 {
			c.children, ptrs = ptrs[:len(o.children):len(o.children)], ptrs[len(o.children):]
			for j := range c.children {
				c.children[j] = at(next)
				next++
			}
		}
		*at(i) = c // o's fields were all read: n may be overwritten
	}
}
