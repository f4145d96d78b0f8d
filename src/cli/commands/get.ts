import type { CliCommand } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { jsonValue, showKey, showValue } from '../format.js';

export const getCommand: CliCommand = {
  register(program, context) {
    program
      .command('get')
      .description('read a key (linearizable unless --local); exit code 1 when it is absent')
      .argument('<key>')
      .option('--local', "read the answering node's state as it is: fast, may be stale")
      .action(async (key: string, options: { local?: boolean }) => {
        const consistency = options.local === true ? 'local' : 'linearizable';
        const result = await context.withClient((client) => client.get(key, { consistency }));
        const at = consistency === 'local' ? `local read at index ${result.readIndex} on ${result.endpoint}` : `read at index ${result.readIndex}`;
        const answer = result.value === null ? 'not found' : showValue(result.value);
        context.result(
          {
            command: 'get',
            key,
            found: result.found,
            ...jsonValue(result.value),
            readIndex: result.readIndex,
            consistency,
            leader: result.leader,
            endpoint: result.endpoint,
          },
          `get ${showKey(key)} → ${answer} (${at})`,
        );
        if (!result.found) context.exitWith(ExitCode.NOT_FOUND);
      });
  },
};
