import type { CliCommand } from '../context.js';
import { showKey, showPosition } from '../format.js';
import { writeJson } from './write-json.js';

export const delCommand: CliCommand = {
  register(program, context) {
    program
      .command('del')
      .description('delete a key (exit code 0 whether or not it existed)')
      .argument('<key>')
      .action(async (key: string) => {
        const result = await context.withClient((client) => client.delete(key));
        const what = result.existed ? `deleted ${showKey(key)}` : `${showKey(key)} was not there`;
        context.result({ command: 'del', key, existed: result.existed, ...writeJson(result) }, `OK  ${what}; ${showPosition(result)}`);
      });
  },
};
