/**
 * Samples what PostgreSQL backends of one database wait on while a load runs (every 50 ms,
 * from pg_stat_activity): the share of busy backends waiting on a lock tells whether the
 * database, not the CPU, is what limits throughput.
 */
import pg from "pg";

export function sampleWaits(url: string): { stop(): Promise<Record<string, number>> } {
  const client = new pg.Client({ connectionString: url });
  const counts: Record<string, number> = {};
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ what: string; n: number }>(
        `select coalesce(wait_event_type || ':' || wait_event, 'running') as what, count(*)::int as n
         from pg_stat_activity
         where datname = current_database() and state = 'active' and pid <> pg_backend_pid()
         group by 1`,
      );
      for (const r of rows) counts[r.what] = (counts[r.what] ?? 0) + r.n;
      await new Promise((r) => setTimeout(r, 50));
    }
    await client.end();
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return counts;
    },
  };
}
