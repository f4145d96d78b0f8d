import type { CliCommand } from '../context.js';
import { showPosition } from '../format.js';
import { writeJson } from './write-json.js';

export const appendCommand: CliCommand = {
  register(program, context) {
    program
      .command('append')
      .description('append a record (UTF-8 text) to the log')
      .argument('<record>')
      .action(async (record: string) => {
        const result = await context.withClient((client) => client.append(record));
        context.result({ command: 'append', ...writeJson(result) }, `OK  appended at ${showPosition(result)}`);
      });
  },
};
