/**
 * `raftlog tail`: the committed log through a subscription, one line (or
 * one JSON object) per entry. Without -f it ends at the commit index found
 * when it began; with -f it follows until interrupted. With --consumer it
 * resumes after the consumer's committed position and commits as it goes.
 */
import { Option } from 'commander';
import type {
  LogSubscription,
  RaftLogCompactedError,
  SubscribedEntry,
  SubscribedEntryKind,
  SubscribeOptions,
  SubscribeView,
} from '../../client/index.js';
import { commaList, wholeNumber } from '../arguments.js';
import type { CliCommand, CliContext, CliIo } from '../context.js';
import { entryJson, entryLine } from '../entry-lines.js';
import { ExitCode } from '../exit-codes.js';

/**
 * A consumer's position is committed once this many indexes were taken
 * since the last commit, and on exit. Not also every so often: each commit
 * is itself an entry the subscription then covers, so a time rule would
 * have an idle follower commit once per period forever.
 */
const AUTO_COMMIT = { everyEntries: 100, everyMs: 1000 } as const;
/** How often a tail without -f looks whether it has reached its end while no entry arrives (filtered ranges, heartbeats). */
const END_CHECK_MS = 50;

const KINDS: readonly SubscribedEntryKind[] = [
  'append',
  'put',
  'delete',
  'cas',
  'no-command',
  'commit-position',
  'delete-consumer',
  'register-producer',
];

const LINE_FORMAT = `
One line per entry: INDEX  term TERM  KIND, then
  append            the record            "order 1"
  put, cas          key=value             greeting="hello", greeting="bye" if "hello" (or: if absent)
  delete            the key               greeting
  commit-position   consumer at position  billing at 41
  --view changes    key: before → after   greeting: "hello" → "bye", (absent), (deleted)
and a producer's write ends with (producer ID seq N). --json: one JSON object per entry,
bytes as in the other commands ({ value, encoding }: UTF-8 text, else base64).`;

interface TailOptions {
  readonly from?: string;
  readonly consumer?: string;
  readonly view: SubscribeView;
  readonly kinds?: string;
  readonly prefix?: string;
  readonly follow?: boolean;
  readonly node?: string;
}

export const tailCommand: CliCommand = {
  register(program, context) {
    program
      .command('tail')
      .description(
        "print committed log entries from --from (default 1), or after a consumer's position, up to the commit index " +
          'when the tail began; with -f, follow the log live until interrupted (exit code 0)',
      )
      .option('--from <index>', 'first index to print (with --consumer: where a consumer with no position starts)')
      .option(
        '--consumer <name>',
        `a durable consumer: start after its committed position, and commit its position as entries are printed ` +
          `(every ${AUTO_COMMIT.everyEntries} indexes, or every ${AUTO_COMMIT.everyMs / 1000} s while entries arrive) and on exit`,
      )
      .addOption(
        new Option('--view <view>', 'commands: every entry as written; changes: what each write did to its key (before → after)')
          .choices(['commands', 'changes'])
          .default('commands'),
      )
      .option('--kinds <list>', `only entries of these kinds, comma-separated: ${KINDS.join(', ')}`)
      .option('--prefix <key-prefix>', 'only entries (or key changes) whose key starts with this')
      .option('-f, --follow', 'keep following the log as it is committed, until Ctrl-C or SIGTERM (then exit code 0)')
      .option('--node <endpoint>', 'start on this node (host:port); the tail moves to another node if it fails')
      .addHelpText('after', LINE_FORMAT)
      .action(async (options: TailOptions) => {
        const json = context.globals().json;
        const subscribeOptions = subscribeOptionsOf(options);
        const print = (entry: SubscribedEntry) =>
          context.io.out(json ? JSON.stringify(entryJson(entry, options.view)) : entryLine(entry, options.view));
        await context.withClient(
          async (client) => {
            // First, so that bad options are reported (exit code 2) before anything is sent.
            const subscription = client.subscribe(subscribeOptions);
            try {
              // The end is the commit index after a linearizable read: every write acknowledged before the tail began is printed.
              const end = options.follow === true ? null : (await client.consumers()).commitIndex;
              await printEntries(subscription, end, print, context.io);
            } catch (error) {
              await subscription.close().catch(() => undefined);
              // Imported here (the client is loaded by now) so that the CLI starts without it.
              const { RaftLogCompactedError } = await import('../../client/index.js');
              if (!(error instanceof RaftLogCompactedError)) throw error;
              reportCompacted(context, error, options.consumer);
            }
          },
          { followMembership: options.follow === true },
        );
      });
  },
};

function subscribeOptionsOf(options: TailOptions): SubscribeOptions {
  return {
    ...(options.from === undefined ? {} : { from: wholeNumber('tail: --from', options.from, 1) }),
    ...(options.consumer === undefined ? {} : { consumer: options.consumer, autoCommit: AUTO_COMMIT }),
    view: options.view,
    // subscribe() checks each kind and names the known ones when one is not.
    ...(options.kinds === undefined ? {} : { kinds: commaList(options.kinds) as SubscribedEntryKind[] }),
    ...(options.prefix === undefined ? {} : { keyPrefix: options.prefix }),
    ...(options.node === undefined ? {} : { endpoint: options.node }),
  };
}

/**
 * Prints entries until the subscription has covered `end` (every index up
 * to it handed out or filtered away), or, with `end` null, until
 * interrupted. Closing the subscription commits a consumer's position; a
 * failure of that commit is thrown unless the iteration failed first.
 */
async function printEntries(subscription: LogSubscription, end: number | null, print: (entry: SubscribedEntry) => void, io: CliIo): Promise<void> {
  // A failed close is reported by the close() awaited below.
  const stop = () => void subscription.close().catch(() => undefined);
  const stopListening = io.onInterrupt(stop);
  // consumedThrough, not coveredThrough: the entry just printed counts once the loop asks for the next one, so a consumer commits it.
  const reachedEnd = () => end !== null && subscription.consumedThrough >= end;
  const watch =
    end === null
      ? null
      : setInterval(() => {
          if (reachedEnd()) stop();
        }, END_CHECK_MS);
  if (reachedEnd()) stop();
  let failure: unknown = null;
  try {
    for await (const entry of subscription) {
      if (end !== null && entry.index > end) break;
      print(entry);
    }
  } catch (error) {
    failure = error;
  } finally {
    stopListening();
    if (watch !== null) clearInterval(watch);
  }
  try {
    await subscription.close();
  } catch (error) {
    failure ??= error;
  }
  if (failure !== null) throw failure;
}

function reportCompacted(context: CliContext, error: RaftLogCompactedError, consumer: string | undefined): void {
  const first = error.firstIndex;
  const hint =
    consumer === undefined
      ? `to read what is left, use --from ${first}`
      : `to go on from what is left, move the consumer past the gap: raftlog consumers commit ${consumer} ${first - 1}`;
  context.fail(ExitCode.LOG_COMPACTED, 'compacted', `${error.message}; ${hint}`, {
    code: error.codeName,
    endpoint: error.endpoint,
    operation: error.operation,
    fromIndex: error.fromIndex,
    firstIndex: first,
  });
}
