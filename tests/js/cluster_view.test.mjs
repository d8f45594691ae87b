// The dashboard's cluster view (sigma_ops/dashboard/src/cluster.ts), compiled by
// tests/test_ops_cluster_view.py into CLUSTER_JS and run with node --test.
import assert from "node:assert/strict";
import test from "node:test";

const { ClusterView } = await import(process.env.CLUSTER_JS);

function point(node, id, t, extra = {}) {
  return {
    type: "point", t, node, id, interval: 1, uptime: 1, draining: false, connections: 2,
    clients: 1, sessions: 1, viewers: 0, messages_in_per_s: 1.5, messages_out_per_s: 3,
    deliveries_per_s: 3, resumes: 1, failed_resumes: 0, failed_recoveries: 0, lost_messages: 0,
    slow_consumers: 0, rate_limited: 0, rtt_ms: 0, rtt_p95_ms: null, ...extra,
  };
}

test("totals add up the nodes that are up", () => {
  const view = new ClusterView(5000);
  view.observe(point("a", "1", 1000, { rtt_ms: 2, rtt_p95_ms: 5 }), 10_000);
  view.observe(point("b", "2", 1000, { connections: 5, lost_messages: 3, rtt_ms: 4, rtt_p95_ms: 10 }), 10_500);
  const totals = view.totals(11_000);
  assert.equal(totals.nodes_up, 2);
  assert.equal(totals.nodes_down, 0);
  assert.equal(totals.connections, 7);
  assert.equal(totals.messages_in_per_s, 3);
  assert.equal(totals.lost_messages, 3);
  assert.equal(totals.rtt_ms, 3);        // the mean of the nodes' means
  assert.equal(totals.rtt_p95_ms, 10);   // the worst node's p95
  assert.deepEqual(view.rows(11_000).map((r) => [r.name, r.state]), [["a", "up"], ["b", "up"]]);
});

test("a node is down once its last point is older than staleAfter, by arrival time", () => {
  const view = new ClusterView(5000);
  // Node b's clock is an hour behind: arrival times count, not the point's own t.
  view.observe(point("a", "1", 1_000_000), 10_000);
  view.observe(point("b", "2", 1_000_000 - 3_600_000), 10_000);
  assert.equal(view.totals(15_000).nodes_up, 2);           // 5 s old: still up
  view.observe(point("a", "1", 1_006_000), 16_000);
  const rows = view.rows(15_001 + 1000);
  assert.deepEqual(rows.map((r) => [r.name, r.state]), [["a", "up"], ["b", "down"]]);
  const totals = view.totals(16_001);
  assert.equal(totals.nodes_up, 1);
  assert.equal(totals.nodes_down, 1);
  assert.equal(totals.connections, 2);                      // b's last figures left out
  // It comes back with its next point.
  view.observe(point("b", "2", 1_000_000 - 3_590_000), 17_000);
  assert.equal(view.totals(17_000).nodes_up, 2);
});

test("a draining node still counts; no RTT measured reads null", () => {
  const view = new ClusterView(3000);
  view.observe(point("a", "1", 1, { draining: true }), 0);
  assert.equal(view.rows(0)[0].state, "draining");
  const totals = view.totals(0);
  assert.equal(totals.nodes_up, 1);
  assert.equal(totals.rtt_ms, null);
  assert.equal(totals.rtt_p95_ms, null);
});

test("two nodes with one name stay two, told apart by id; older points are ignored", () => {
  const view = new ClusterView(5000);
  view.observe(point("host", "aaaa", 2000), 0);
  view.observe(point("host", "bbbb", 2000, { connections: 9 }), 0);
  view.observe(point("host", "aaaa", 1000, { connections: 100 }), 1);  // late and old
  assert.deepEqual(view.rows(1).map((r) => r.name), ["host (aaaa)", "host (bbbb)"]);
  assert.equal(view.totals(1).connections, 11);
});

test("samples are bounded by keep", () => {
  const view = new ClusterView(5000, 3);
  view.observe(point("a", "1", 1), 0);
  for (let i = 0; i < 5; i++) view.sample(i * 1000, i);
  assert.deepEqual(view.samples.map((s) => s.t), [2, 3, 4]);
  assert.throws(() => new ClusterView(0), /staleAfterMs/);
});
