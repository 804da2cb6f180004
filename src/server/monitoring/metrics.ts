/** A minimal Prometheus registry: labelled counters and one latency histogram, text format 0.0.4. */
type Labels = Record<string, string>;

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

function key(labels: Labels): string {
  return Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
    .join(",");
}

export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly durations = new Map<string, { counts: number[]; sum: number; count: number }>();

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    let c = this.counters.get(name);
    if (!c) {
      c = { help, values: new Map() };
      this.counters.set(name, c);
    }
    const k = key(labels);
    c.values.set(k, (c.values.get(k) ?? 0) + by);
  }

  observeDuration(route: string, seconds: number): void {
    const k = key({ route });
    let h = this.durations.get(k);
    if (!h) {
      h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.durations.set(k, h);
    }
    for (const [i, b] of BUCKETS.entries()) if (seconds <= b) h.counts[i] = (h.counts[i] as number) + 1;
    h.sum += seconds;
    h.count++;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, c] of this.counters) {
      lines.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [k, v] of c.values) lines.push(`${name}${k ? `{${k}}` : ""} ${v}`);
    }
    lines.push("# HELP modelvault_http_request_duration_seconds Request latency by route.");
    lines.push("# TYPE modelvault_http_request_duration_seconds histogram");
    for (const [k, h] of this.durations) {
      for (const [i, b] of BUCKETS.entries()) {
        lines.push(`modelvault_http_request_duration_seconds_bucket{${k},le="${b}"} ${h.counts[i]}`);
      }
      lines.push(`modelvault_http_request_duration_seconds_bucket{${k},le="+Inf"} ${h.count}`);
      lines.push(`modelvault_http_request_duration_seconds_sum{${k}} ${h.sum}`);
      lines.push(`modelvault_http_request_duration_seconds_count{${k}} ${h.count}`);
    }
    return `${lines.join("\n")}\n`;
  }
}
