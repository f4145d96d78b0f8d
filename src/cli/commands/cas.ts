import type { CliCommand } from '../context.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { jsonValue, showKey, showPosition, showValue } from '../format.js';
import { writeJson } from './write-json.js';

export const casCommand: CliCommand = {
  register(program, context) {
    program
      .command('cas')
      .description(
        'compare-and-swap: set <key> to <new> only if it holds <expected> (or, with --absent, only if it is absent); exit code 1 when it did not swap',
      )
      .usage('[options] <key> <expected|--absent> <new>')
      .argument('<key>')
      .argument('[expected]', 'the value the key must hold (leave out with --absent)')
      .argument('[new]', 'the value to set')
      .option('--absent', 'swap only if the key is absent')
      .action(async (key: string, second: string | undefined, third: string | undefined, options: { absent?: boolean }) => {
        let expected: string | null;
        let value: string;
        if (options.absent === true) {
          if (second === undefined) throw new UsageError('cas: missing <new> (usage: cas <key> --absent <new>)');
          if (third !== undefined) throw new UsageError('cas: with --absent, give only <key> and <new>');
          expected = null;
          value = second;
        } else {
          if (second === undefined || third === undefined) {
            throw new UsageError('cas: give <key> <expected> <new>, or <key> --absent <new>');
          }
          expected = second;
          value = third;
        }
        const result = await context.withClient((client) => client.compareAndSwap(key, expected, value));
        let human: string;
        if (result.succeeded) {
          human = `OK  swapped ${showKey(key)}; ${showPosition(result)}`;
        } else {
          const holds = result.current === null ? 'is absent' : `${expected === null ? 'already holds' : 'holds'} ${showValue(result.current)}`;
          human = `cas failed: ${showKey(key)} ${holds} (at index ${result.index} term ${result.term})`;
        }
        const current = jsonValue(result.current);
        context.result(
          {
            command: 'cas',
            key,
            succeeded: result.succeeded,
            found: result.found,
            current: current.value,
            encoding: current.encoding,
            ...writeJson(result),
          },
          human,
        );
        if (!result.succeeded) context.exitWith(ExitCode.NOT_FOUND);
      });
  },
};
