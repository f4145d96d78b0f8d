import type { ConsumerList, ConsumerStatus } from '../../client/index.js';
import { wholeNumber } from '../arguments.js';
import type { CliCommand, Json } from '../context.js';
import { showAgo, showOptionalIndex, showPosition, table } from '../format.js';

const HEADER = ['CONSUMER', 'POSITION', 'LAG', 'LAST COMMIT', 'COMMIT ENTRY'];
const NUMERIC = new Set([1, 2, 3, 4]);

/** `raftlog consumers [list] | delete NAME | commit NAME POSITION`: durable consumers, replicated through Raft. */
export const consumersCommand: CliCommand = {
  register(program, context) {
    const consumers = program
      .command('consumers')
      .description('durable consumers: consumers [list] [--local] | delete NAME | commit NAME POSITION [--allow-backwards]');

    consumers
      .command('list', { isDefault: true })
      .description('every consumer: its position (the last index it processed), its lag behind the commit index, when it last committed')
      .option('--local', "the answering node's state as it is: fast, may be stale")
      .action(async (options: { local?: boolean }) => {
        const consistency = options.local === true ? 'local' : 'linearizable';
        const list = await context.withClient((client) => client.consumers({ consistency }));
        const read = consistency === 'local' ? `local read at index ${list.readIndex} on ${list.endpoint}` : `read at index ${list.readIndex}`;
        const summary =
          list.consumers.length === 0
            ? `no consumers; ${list.node} has committed up to index ${list.commitIndex} (${read})`
            : `lag against commit index ${list.commitIndex} on ${list.node} (${read})`;
        context.result(listJson(list, consistency), [...(list.consumers.length === 0 ? [] : consumerTable(list.consumers)), summary]);
      });

    consumers
      .command('delete')
      .description('forget a consumer (exit code 0 whether or not it existed)')
      .argument('<name>')
      .action(async (name: string) => {
        const result = await context.withClient((client) => client.deleteConsumer(name));
        const what = result.existed ? `deleted consumer ${name}` : `consumer ${name} was not there`;
        context.result(
          { command: 'consumers delete', consumer: name, existed: result.existed, ...entryJson(result) },
          `OK  ${what}; ${showPosition({ ...result.entry, leader: result.leader })}`,
        );
      });

    consumers
      .command('commit')
      .description(
        "set a consumer's position (the last index it processed), creating it if needed; refused (exit code 7) if it would move the consumer backwards",
      )
      .argument('<name>')
      .argument('<position>', 'the last index processed: the consumer resumes after it (0: from the start)')
      .option('--allow-backwards', 'allow a position below the current one, to read entries again')
      .action(async (name: string, positionText: string, options: { allowBackwards?: boolean }) => {
        const position = wholeNumber('consumers commit: <position>', positionText, 0);
        const allowBackwards = options.allowBackwards === true;
        const result = await context.withClient((client) => client.commitPosition(name, position, { allowBackwards }));
        context.result(
          { command: 'consumers commit', consumer: name, position: result.position, ...entryJson(result) },
          `OK  ${name} at ${result.position}; committed at ${showPosition({ ...result.entry, leader: result.leader })}`,
        );
      });
  },
};

function consumerTable(consumers: readonly ConsumerStatus[]): string[] {
  return table(
    HEADER,
    consumers.map((consumer) => [
      consumer.name,
      String(consumer.position),
      String(consumer.lag),
      consumer.committedAtMs === 0 ? '-' : showAgo(consumer.msSinceCommit),
      showOptionalIndex(consumer.commitEntryIndex),
    ]),
    NUMERIC,
  );
}

function listJson(list: ConsumerList, consistency: string): { readonly [key: string]: Json } {
  return {
    command: 'consumers',
    consistency,
    consumers: list.consumers.map((consumer) => ({
      name: consumer.name,
      position: consumer.position,
      lag: consumer.lag,
      committedAtMs: consumer.committedAtMs,
      msSinceCommit: consumer.msSinceCommit,
      commitEntryIndex: consumer.commitEntryIndex,
    })),
    commitIndex: list.commitIndex,
    readIndex: list.readIndex,
    node: list.node,
    endpoint: list.endpoint,
  };
}

/** The fields of a consumer command's --json result: where it was committed. */
function entryJson(result: { entry: { index: number; term: number }; leader: string | null; endpoint: string }): {
  index: number;
  term: number;
  leader: string | null;
  endpoint: string;
} {
  return { index: result.entry.index, term: result.entry.term, leader: result.leader, endpoint: result.endpoint };
}
