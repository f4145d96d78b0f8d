/**
 * `raftlog dashboard` as a user runs it (in process, with the CLI's own
 * streams captured): its help, a bad --listen refused as a usage error, and
 * a dashboard that serves its page until interrupted, then exits 0.
 */
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/context.js';
import { main } from '../../src/cli/main.js';
import type { DashboardMessage } from '../../src/dashboard/server.js';
import { startFakeCluster } from '../support/fake-raftlog-server.js';
import { waitFor } from '../support/wait-for.js';

function capture(): { io: CliIo; out: string[]; err: string[]; interrupt: () => void } {
  const out: string[] = [];
  const err: string[] = [];
  let listener: (() => void) | null = null;
  const io: CliIo = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    env: {},
    onInterrupt: (l) => {
      listener = l;
      return () => {
        listener = null;
      };
    },
  };
  return { io, out, err, interrupt: () => listener?.() };
}

describe('raftlog dashboard', () => {
  it('--help says what the page shows and how to pick where it listens', async () => {
    const run = capture();
    expect(await main(['dashboard', '--help'], run.io)).toBe(0);
    const help = run.out.join('\n');
    expect(help).toContain('--listen <host:port>');
    expect(help).toContain('127.0.0.1:8080');
    expect(help).toContain('--interval <ms>');
    expect(help).toMatch(/DOWN/);
    expect(help).toMatch(/timeline of elections, leader changes, snapshots, membership changes/);
  });

  it('refuses a --listen that is not host:port with a usage error (exit code 2)', async () => {
    const run = capture();
    expect(await main(['--endpoints', '127.0.0.1:7001', 'dashboard', '--listen', 'localhost'], run.io)).toBe(2);
    expect(run.err.join('\n')).toContain('dashboard: --listen: listen address "localhost" is not host:port');
  });

  it('serves the page with the nodes of --endpoints until interrupted, then exits 0', async () => {
    const nodes = await startFakeCluster(1);
    try {
      const run = capture();
      const exit = main(
        // The global --endpoints after the subcommand, as `raftlog dashboard --endpoints LIST --listen HOST:PORT`.
        ['--json', 'dashboard', '--endpoints', nodes.map((n) => n.endpoint).join(','), '--listen', '127.0.0.1:0', '--interval', '200'],
        run.io,
      );
      const started = await waitFor('the dashboard to print its address', () =>
        run.out.length > 0 ? (JSON.parse(run.out[0] as string) as { url: string }) : undefined,
      );
      const sample = await waitFor('a sample of the fake node', async () => {
        const message = (await (await fetch(new URL('/state', started.url))).json()) as DashboardMessage;
        return message.sample?.nodes[0]?.up === true ? message.sample : undefined;
      });
      expect(sample.nodes.map((n) => [n.id, n.status?.role])).toEqual([['n1', 'leader']]);
      expect((await fetch(started.url)).status).toBe(200);
      run.interrupt();
      expect(await exit).toBe(0);
      await expect(fetch(started.url)).rejects.toThrow();
    } finally {
      for (const node of nodes) await node.stop();
    }
  });
});
