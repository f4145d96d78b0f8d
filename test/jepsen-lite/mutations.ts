/**
 * The mutation suite: jepsen-lite is worth as much as its power to fail a
 * broken system, so each bug planted in the nodes through a failpoint
 * (src/node/failpoints.ts, the bug-* names) is run under the default
 * schedule for several seeds, and the table says how often the checkers
 * caught it. A run that passes with a bug planted is a miss.
 *
 *   npm run jepsen:mutations -- [--seeds 1,2,3] [--time 30] [--bugs bug-a,bug-b] [--out DIR]
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { NemesisKind } from './nemesis.js';
import { JEPSEN_DEFAULTS, type JepsenOptions, runJepsen } from './run.js';

/** Each planted bug, and the workload whose checkers should see it. */
export const MUTATIONS: readonly { readonly bug: string; readonly workload: JepsenOptions['workload']; readonly nemesis: readonly NemesisKind[] }[] =
  [
    { bug: 'bug-read-local', workload: 'register', nemesis: ['partition', 'kill'] },
    { bug: 'bug-reply-before-commit', workload: 'append', nemesis: ['partition', 'kill'] },
    { bug: 'bug-drop-forward-error', workload: 'append', nemesis: ['partition', 'kill'] },
  ];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '1,2,3' },
      time: { type: 'string', default: '30' },
      bugs: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const seeds = values.seeds.split(',').map(Number);
  const timeSeconds = Number(values.time);
  if (seeds.some((seed) => !Number.isInteger(seed) || seed < 1) || !Number.isInteger(timeSeconds) || timeSeconds < 1) {
    throw new Error('--seeds takes positive integers (1,2,3) and --time a number of seconds');
  }
  const out = values.out ?? (await mkdtemp(join(tmpdir(), 'raftlog-mutations-')));
  const rows: string[] = [];
  const chosen = values.bugs === undefined ? MUTATIONS : MUTATIONS.filter(({ bug }) => values.bugs?.split(',').includes(bug));
  if (chosen.length === 0) throw new Error(`--bugs names none of ${MUTATIONS.map(({ bug }) => bug).join(', ')}`);
  for (const { bug, workload, nemesis } of chosen) {
    const caughtBy: string[] = [];
    const missed: number[] = [];
    for (const seed of seeds) {
      const result = await runJepsen({
        ...JEPSEN_DEFAULTS,
        nemesis: [...nemesis],
        readMode: JEPSEN_DEFAULTS.readMode,
        workload,
        timeSeconds,
        seed,
        mutation: bug,
        out: join(out, `${bug}-seed${seed}`),
        log: () => undefined,
      });
      const failed = result.checkers.filter((checker) => checker.valid === false).map((checker) => checker.name);
      if (failed.length === 0) missed.push(seed);
      else caughtBy.push(...failed.filter((name) => !caughtBy.includes(name)));
      process.stdout.write(`${bug} seed ${seed}: ${failed.length === 0 ? 'MISSED (every checker passed)' : `caught by ${failed.join(', ')}`}\n`);
    }
    rows.push(
      `| \`${bug}\` | ${workload}, ${nemesis.join('+')}, ${timeSeconds} s | ${seeds.length} | ${seeds.length - missed.length} | ${caughtBy.join(', ') || '–'}${missed.length > 0 ? `; missed seeds ${missed.join(', ')}` : ''} |`,
    );
  }
  process.stdout.write(`\n| planted bug | run | runs | caught | by |\n| --- | --- | --- | --- | --- |\n${rows.join('\n')}\n\nruns kept in ${out}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`jepsen mutations: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 2;
});
