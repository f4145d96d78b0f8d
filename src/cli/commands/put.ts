import type { CliCommand } from '../context.js';
import { showPosition } from '../format.js';
import { writeJson } from './write-json.js';

export const putCommand: CliCommand = {
  register(program, context) {
    program
      .command('put')
      .description('set a key to a value (both as UTF-8 text)')
      .argument('<key>')
      .argument('<value>')
      .action(async (key: string, value: string) => {
        const result = await context.withClient((client) => client.put(key, value));
        context.result({ command: 'put', key, ...writeJson(result) }, `OK  ${showPosition(result)}`);
      });
  },
};
