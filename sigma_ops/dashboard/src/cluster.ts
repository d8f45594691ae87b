// The dashboard's cluster view, as pure logic (no DOM, no clock: `now` is an argument, in ms).
//
// Every node's feed publishes a point to the stats topic once per interval; with a shared
// cluster engine a viewer on any node receives every node's points. `ClusterView` keeps the
// latest point of each node (keyed by the point's `id`, unique to the node's process, so two
// nodes with one name stay two) and the time it *arrived* by the viewer's clock: node clocks
// may differ from the browser's, arrival times do not. A node whose last point arrived more
// than `staleAfterMs` ago is down; a node that says it drains is draining. The totals add up
// the nodes that are up (a down node's last figures are not current, so they are left out);
// each sample of the totals is kept for the cluster charts, `keep` samples at most.

export interface Point {
  t: number; node: string; id?: string; interval?: number; uptime: number; draining: boolean;
  connections: number; clients: number; sessions: number; viewers: number;
  messages_in_per_s: number; messages_out_per_s: number; deliveries_per_s: number;
  resumes: number; failed_resumes: number; failed_recoveries: number; lost_messages: number;
  slow_consumers: number; rate_limited: number; rtt_ms: number; rtt_p95_ms: number | null;
}

export type NodeState = "up" | "draining" | "down";

export interface NodeRow {
  key: string; name: string; state: NodeState; last: Point; ageMs: number;
}

// Summed over the nodes that are up (draining ones included: they still serve).
export const SUMMED = [
  "connections", "clients", "sessions", "viewers", "messages_in_per_s", "messages_out_per_s",
  "deliveries_per_s", "resumes", "failed_resumes", "failed_recoveries", "lost_messages",
  "slow_consumers", "rate_limited",
] as const;
export type Summed = (typeof SUMMED)[number];

export type Totals = Record<Summed, number> & {
  t: number; nodes_up: number; nodes_down: number;
  // The mean of the nodes' mean RTTs (those that measured one), and the worst node's p95.
  rtt_ms: number | null; rtt_p95_ms: number | null;
};

interface Entry { last: Point; arrived: number }

export class ClusterView {
  private readonly nodes = new Map<string, Entry>();
  readonly samples: Totals[] = [];

  constructor(public staleAfterMs: number, public keep = 300) {
    if (!(staleAfterMs > 0)) throw new Error(`staleAfterMs must be > 0, not ${staleAfterMs}`);
  }

  /** A point arrived at `now` (the viewer's clock, ms). Older points of a node are ignored. */
  observe(point: Point, now: number): void {
    const key = point.id ?? point.node;
    const entry = this.nodes.get(key);
    if (entry && entry.last.t > point.t) return;
    this.nodes.set(key, { last: point, arrived: now });
  }

  /** Every node seen since the page opened, by name (then id); down ones stay listed. */
  rows(now: number): NodeRow[] {
    const names = new Map<string, number>();
    for (const { last } of this.nodes.values()) names.set(last.node, (names.get(last.node) ?? 0) + 1);
    const rows: NodeRow[] = [];
    for (const [key, { last, arrived }] of this.nodes) {
      const ageMs = now - arrived;
      const state: NodeState = ageMs > this.staleAfterMs ? "down" : last.draining ? "draining" : "up";
      // A shared name gets its id appended, so the rows can be told apart.
      const name = (names.get(last.node) ?? 0) > 1 || !last.node ? `${last.node || "node"} (${key})` : last.node;
      rows.push({ key, name, state, last, ageMs });
    }
    return rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The totals over the nodes up at `now`; `t` is the time they are shown at (ms). */
  totals(now: number, t: number = now): Totals {
    const totals = { t, nodes_up: 0, nodes_down: 0, rtt_ms: null, rtt_p95_ms: null } as Totals;
    for (const key of SUMMED) totals[key] = 0;
    let rttSum = 0;
    let rttCount = 0;
    for (const row of this.rows(now)) {
      if (row.state === "down") {
        totals.nodes_down += 1;
        continue;
      }
      totals.nodes_up += 1;
      for (const key of SUMMED) totals[key] += Number(row.last[key]) || 0;
      const p = row.last;
      if (p.rtt_ms > 0 || p.rtt_p95_ms !== null) {
        rttSum += p.rtt_ms;
        rttCount += 1;
      }
      if (p.rtt_p95_ms !== null) totals.rtt_p95_ms = Math.max(totals.rtt_p95_ms ?? 0, p.rtt_p95_ms);
    }
    for (const key of SUMMED) totals[key] = Math.round(totals[key] * 100) / 100;
    totals.rtt_ms = rttCount ? Math.round((rttSum / rttCount) * 1000) / 1000 : null;
    return totals;
  }

  /** Take a sample of the totals for the charts (the page does at each of its node's points). */
  sample(now: number, t: number = now): Totals {
    const totals = this.totals(now, t);
    this.samples.push(totals);
    if (this.samples.length > this.keep) this.samples.splice(0, this.samples.length - this.keep);
    return totals;
  }
}
