import type { LogPage, LogRecord } from '../../client/index.js';
import type { CliCommand, CliContext, Json } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { jsonValue, showValue, table } from '../format.js';

const HEADER = ['INDEX', 'TERM', 'KIND', 'DATA'];
const NUMERIC = new Set([0, 1]);

export const logCommand: CliCommand = {
  register(program, context) {
    program
      .command('log')
      .description('print committed log entries: appends with their records, writes with their keys')
      .option('--from <index>', 'first index to print', '1')
      .option('--limit <n>', 'most entries to print (1..1000)', '100')
      .option('--node <endpoint>', 'read this node (host:port) only; by default any node that answers')
      .action(async (options: { from: string; limit: string; node?: string }) => {
        const page = await readPage(context, options);
        if (page === null) return;
        const rows = page.entries.map((entry) => [String(entry.index), String(entry.term), entry.kind, data(entry)]);
        const last = page.entries.at(-1)?.index;
        const footer =
          last === undefined
            ? `no committed entries from index ${options.from} on ${page.node} (committed up to ${page.commitIndex})`
            : `${page.node} has committed up to index ${page.commitIndex}${last < page.commitIndex ? `; more from --from ${last + 1}` : ''}`;
        context.result(
          {
            command: 'log',
            node: page.node,
            endpoint: page.endpoint,
            commitIndex: page.commitIndex,
            entries: page.entries.map(entryJson),
          },
          [...(rows.length > 0 ? table(HEADER, rows, NUMERIC) : []), footer],
        );
      });
  },
};

/** The page asked for, or null once a compacted --from was reported. */
async function readPage(context: CliContext, options: { from: string; limit: string; node?: string }): Promise<LogPage | null> {
  try {
    return await context.withClient((client) =>
      client.readLog(Number(options.from), {
        maxEntries: Number(options.limit),
        ...(options.node === undefined ? {} : { endpoint: options.node }),
      }),
    );
  } catch (error) {
    // Imported here (the client is loaded by now) so that the CLI starts without it.
    const { RaftLogCompactedError } = await import('../../client/index.js');
    if (!(error instanceof RaftLogCompactedError)) throw error;
    context.fail(ExitCode.LOG_COMPACTED, 'compacted', `${error.message}; to read what is left, use --from ${error.firstIndex}`, {
      code: error.codeName,
      endpoint: error.endpoint,
      operation: error.operation,
      fromIndex: error.fromIndex,
      firstIndex: error.firstIndex,
    });
    return null;
  }
}

function data(entry: LogRecord): string {
  if (entry.record !== null) return showValue(entry.record);
  if (entry.key !== null) return `key ${showValue(entry.key)}`;
  return '';
}

function entryJson(entry: LogRecord): Json {
  const base = { index: entry.index, term: entry.term, kind: entry.kind };
  if (entry.record !== null) return { ...base, record: jsonValue(entry.record) };
  if (entry.key !== null) return { ...base, key: jsonValue(entry.key) };
  return base;
}
