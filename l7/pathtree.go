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
