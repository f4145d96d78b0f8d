import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dirBytes, parseVmRss, readRssBytes } from '../../bench/soak/footprint.js';
import { withSnapshotsOff } from '../../bench/soak/node-args.js';
import { type IntervalSample, summarizeNodes } from '../../bench/soak/run.js';

describe('soak benchmark: resident memory from /proc/<pid>/status', () => {
  it('reads VmRSS in kB as bytes', () => {
    const status = 'Name:\tnode\nVmPeak:\t 1200000 kB\nVmHWM:\t  400000 kB\nVmRSS:\t  312456 kB\nRssAnon:\t  300000 kB\n';
    expect(parseVmRss(status)).toBe(312_456 * 1024);
  });

  it('has no RSS for a process without a memory map (a zombie or kernel thread has no VmRSS line)', () => {
    expect(parseVmRss('Name:\tkthreadd\nState:\tS (sleeping)\n')).toBeNull();
  });

  it('measures this very process on Linux', async () => {
    const rss = await readRssBytes(process.pid);
    expect(rss).toBeGreaterThan(1024 * 1024);
  });
});

describe('soak benchmark: data-dir size', () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir !== null) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it('adds up the lengths of every file below the directory, nested ones included', async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftlog-soak-test-'));
    await writeFile(join(dir, '000005.ldb'), Buffer.alloc(1000));
    await mkdir(join(dir, 'snapshots', 'old'), { recursive: true });
    await writeFile(join(dir, 'snapshots', 'snap-1'), Buffer.alloc(234));
    await writeFile(join(dir, 'snapshots', 'old', 'snap-0'), Buffer.alloc(66));
    expect(await dirBytes(dir)).toBe(1300);
  });

  it('counts a data dir that does not exist yet as empty', async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftlog-soak-test-'));
    expect(await dirBytes(join(dir, 'n1'))).toBe(0);
  });
});

describe('soak benchmark: the compaction-off half of an A/B run', () => {
  it('replaces --snapshot-entries in either spelling with 0 and keeps every other flag', () => {
    expect(withSnapshotsOff(['--tick-ms', '20', '--snapshot-entries', '500', '--retain-entries', '100'])).toEqual([
      '--tick-ms',
      '20',
      '--retain-entries',
      '100',
      '--snapshot-entries',
      '0',
    ]);
    expect(withSnapshotsOff(['--snapshot-entries=500'])).toEqual(['--snapshot-entries', '0']);
    expect(withSnapshotsOff([])).toEqual(['--snapshot-entries', '0']);
  });
});

describe('soak benchmark: per-node summary', () => {
  const sample = (t_s: number, rss: number | null, data: number): IntervalSample => ({
    t_s,
    writes: 0,
    writes_per_s: 0,
    errors: 0,
    lat_ms: { p50: null, p90: null, p99: null, p999: null, max: null, mean: null },
    nodes: [{ node: 'n1', role: 'follower', pid: 1, rss_mib: rss, data_mib: data, commit: 1, applied: 1, last: 1, first: null }],
  });

  it('leaves the first interval (start-up, before the first snapshot) out of the RSS range, and skips samples of a node that was down', () => {
    const summary = summarizeNodes(['n1'], [sample(10, 400, 5), sample(20, 150, 9), sample(30, null, 7), sample(40, 170, 8)]);
    expect(summary['n1']).toEqual({ rss_min_mib: 150, rss_max_mib: 170, rss_last_mib: 170, data_max_mib: 9, data_last_mib: 8 });
  });
});
