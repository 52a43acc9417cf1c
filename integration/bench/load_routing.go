//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Scenario 9: routing among many routes. Every target gets the same table —
// routeHosts virtual hosts × routePaths path prefixes, each routed to the
// one backend, anything else answered 404 — in its own idiom: proxynow
// http_routes, nginx server_name blocks with locations, HAProxy a
// map_beg map on host+path. Keep-alive load (wrk with a Lua script, or the
// Go client) spreads requests uniformly over every host and path, so
// the cost measured is finding the route as well as proxying.

const (
	routeHosts = 1000
	routePaths = 10
)

func routeHost(i int) string { return fmt.Sprintf("h%d.bench.test", i) }
func routePath(j int) string { return fmt.Sprintf("/p%d/", j) }

// routeTable is the generated table for the config templates.
type routeTable struct {
	Hosts []string
	Paths []string
}

func newRouteTable() routeTable {
	var t routeTable
	for i := range routeHosts {
		t.Hosts = append(t.Hosts, routeHost(i))
	}
	for j := range routePaths {
		t.Paths = append(t.Paths, routePath(j))
	}
	return t
}

// writeRouteMap writes HAProxy's map: one "host/path/ backend" line per
// route, matched with map_beg against base (Host header + path).
func writeRouteMap(dir string, t routeTable) (string, error) {
	var b strings.Builder
	for _, h := range t.Hosts {
		for _, p := range t.Paths {
			fmt.Fprintf(&b, "%s%s backend\n", h, p)
		}
	}
	path := filepath.Join(dir, "routes.map")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// wrkRoutingScript picks a uniformly random host and path per request.
// The seed is fixed so that every target sees the same sequence.
var wrkRoutingScript = fmt.Sprintf(`math.randomseed(42)
request = function()
  local h = math.random(0, %d)
  local p = math.random(0, %d)
  return wrk.format("GET", "/p" .. p .. "/x", {["Host"] = "h" .. h .. ".bench.test"})
end
`, routeHosts-1, routePaths-1)

func routingLoad(_ backend, addr string, d time.Duration, o options, m *meter) (sample, error) {
	if !o.goLoaders && haveTool("wrk") {
		f, err := os.CreateTemp("", "proxynow-bench-routing-*.lua")
		if err != nil {
			return sample{}, err
		}
		defer os.Remove(f.Name())
		if _, err := io.WriteString(f, wrkRoutingScript); err != nil {
			f.Close()
			return sample{}, err
		}
		f.Close()
		return runWrkArgs(addr, d, []string{"-s", f.Name()}, m)
	}
	c, err := newHTTPClient(addr, false, true)
	if err != nil {
		return sample{}, err
	}
	defer c.close()
	return closedLoop(h1Conns, d, m, "request", addr, func(w int) error {
		return c.getRouted(context.Background(), rand.IntN(routeHosts), rand.IntN(routePaths))
	})
}

func routingLoader(o options) string {
	if !o.goLoaders && haveTool("wrk") {
		return fmt.Sprintf("wrk -t1 -c%d -d <duration> --latency -s <script: uniformly random host of %d and path of %d>", h1Conns, routeHosts, routePaths)
	}
	return fmt.Sprintf("Go net/http client, %d keep-alive connections, uniformly random host of %d and path of %d", h1Conns, routeHosts, routePaths)
}

// getRouted fetches /p<j>/x from host h<i> and checks the answer.
func (c *httpClient) getRouted(ctx context.Context, i, j int) error {
	u := strings.TrimSuffix(c.url, "/") + routePath(j) + "x"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Host = routeHost(i)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %s", req.Host, u, resp.Status)
	}
	if string(b) != httpBody {
		return errBody
	}
	return nil
}

// routingProbe checks that the last route is routed and that an unknown
// host is not (404): the whole table is loaded and it is really routing.
func routingProbe(addr string) func() error {
	return func() error {
		c, err := newHTTPClient(addr, false, true)
		if err != nil {
			return err
		}
		defer c.close()
		if err := c.getRouted(context.Background(), routeHosts-1, routePaths-1); err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/p0/x", nil)
		req.Host = "unknown.bench.test"
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("unknown host: status %s, want 404", resp.Status)
		}
		return nil
	}
}
