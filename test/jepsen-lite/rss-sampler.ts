/**
 * Samples each node's resident memory (VmRSS from /proc) while a run goes:
 * a long run must show memory that levels off, not one that grows with
 * history. Linux only; elsewhere the sampler records nothing and says so.
 */
import { readFile } from 'node:fs/promises';
import type { ProcessCluster } from '../support/process-cluster.js';

export interface RssFigures {
  /** MiB, per node: the first sample, the highest, the last. */
  readonly nodes: Readonly<
    Record<string, { readonly firstMiB: number; readonly maxMiB: number; readonly lastMiB: number; readonly samples: number }>
  >;
  readonly intervalMs: number;
}

async function rssMiB(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const kib = status === null ? null : /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return kib === undefined || kib === null ? null : Number(kib) / 1024;
}

export class RssSampler {
  private readonly figures = new Map<string, { firstMiB: number; maxMiB: number; lastMiB: number; samples: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly cluster: ProcessCluster,
    private readonly ids: () => readonly string[],
    private readonly intervalMs = 5_000,
  ) {}

  start(): void {
    const sample = async () => {
      for (const id of this.ids()) {
        const pid = this.cluster.pid(id);
        const mib = pid === undefined ? null : await rssMiB(pid);
        if (mib === null) continue;
        const known = this.figures.get(id);
        this.figures.set(
          id,
          known === undefined
            ? { firstMiB: mib, maxMiB: mib, lastMiB: mib, samples: 1 }
            : { ...known, maxMiB: Math.max(known.maxMiB, mib), lastMiB: mib, samples: known.samples + 1 },
        );
      }
    };
    void sample();
    this.timer = setInterval(() => void sample(), this.intervalMs);
  }

  stop(): RssFigures {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const round = (mib: number) => Math.round(mib * 10) / 10;
    return {
      intervalMs: this.intervalMs,
      nodes: Object.fromEntries(
        [...this.figures]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([id, f]) => [id, { firstMiB: round(f.firstMiB), maxMiB: round(f.maxMiB), lastMiB: round(f.lastMiB), samples: f.samples }]),
      ),
    };
  }
}

/** "n1 52→61 MiB (max 70)": first, last and highest sample of each node. */
export function formatRss(figures: RssFigures): string {
  const nodes = Object.entries(figures.nodes);
  if (nodes.length === 0) return 'not sampled (no /proc here)';
  return nodes.map(([id, f]) => `${id} ${f.firstMiB.toFixed(0)}→${f.lastMiB.toFixed(0)} MiB (max ${f.maxMiB.toFixed(0)})`).join(', ');
}
