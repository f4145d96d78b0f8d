/**
 * key-files: a derived view of a raftlog cluster's keys, one file per key,
 * kept exactly once across crashes (README.md).
 *
 *   npx tsx examples/key-files/main.ts --endpoints 127.0.0.1:7001,127.0.0.1:7002 --dir OUT --consumer key-files
 *
 * Runs until SIGINT or SIGTERM, then finishes the batch under way and exits
 * 0 (a second signal exits at once). Exits 1 on a failure, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { splitEndpointList } from '../../src/client/index.js';
import { type KeyFilesOptions, runKeyFiles } from './subscriber.js';

const USAGE = `usage: npx tsx examples/key-files/main.ts --endpoints HOST:PORT[,HOST:PORT...] --dir DIR --consumer NAME
  [--from INDEX]        where a consumer with no position starts (default 1)
  [--key-prefix TEXT]   only keys that start with TEXT
  [--max-batch N]       entries per batch: one journal fsync, one position commit (default 500)
environment: RAFTLOG_EXAMPLE_BUG=skip-journal-check plants a bug (entries applied before a crash are applied again)`;

const KNOWN_BUGS = new Set(['skip-journal-check']);

class UsageError extends Error {}

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value < 1) throw new UsageError(`--${name} must be a positive integer, got ${text}`);
  return value;
}

function optionsFrom(argv: readonly string[], signal: AbortSignal): KeyFilesOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      endpoints: { type: 'string' },
      dir: { type: 'string' },
      consumer: { type: 'string' },
      from: { type: 'string' },
      'key-prefix': { type: 'string' },
      'max-batch': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const endpoints = splitEndpointList(values.endpoints ?? '');
  if (endpoints.length === 0) throw new UsageError('--endpoints is required');
  if (values.dir === undefined || values.dir === '') throw new UsageError('--dir is required');
  if (values.consumer === undefined || values.consumer === '') throw new UsageError('--consumer is required');
  const bug = process.env['RAFTLOG_EXAMPLE_BUG'] ?? '';
  if (bug !== '' && !KNOWN_BUGS.has(bug)) throw new UsageError(`RAFTLOG_EXAMPLE_BUG=${bug} is no planted bug (known: ${[...KNOWN_BUGS].join(', ')})`);
  const prefix = values['key-prefix'];
  return {
    endpoints,
    dir: values.dir,
    consumer: values.consumer,
    from: positiveInteger('from', values.from, 1),
    keyPrefix: prefix === undefined || prefix === '' ? null : new TextEncoder().encode(prefix),
    maxBatchEntries: positiveInteger('max-batch', values['max-batch'], 500),
    skipJournalCheck: bug === 'skip-journal-check',
    signal,
    print: (line) => console.log(line),
  };
}

async function main(): Promise<void> {
  const stopping = new AbortController();
  let options: KeyFilesOptions;
  try {
    options = optionsFrom(process.argv.slice(2), stopping.signal);
  } catch (error) {
    console.error(`key-files: ${(error as Error).message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // once: a second signal gets the default action, and ends the process at once.
    process.once(signal, () => {
      console.log(`stopping (${signal}): finishing the batch under way`);
      stopping.abort();
    });
  }
  try {
    const summary = await runKeyFiles(options);
    console.log(
      `stopped: applied ${summary.applied} entries, skipped ${summary.skipped}; journal at ${summary.lastApplied}, ` +
        `consumer ${options.consumer} at ${summary.committed ?? 'no position'}`,
    );
  } catch (error) {
    console.error(`key-files: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

await main();
