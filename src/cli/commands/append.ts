import type { CliCommand } from '../context.js';
import { showPosition } from '../format.js';
import { writeJson } from './write-json.js';

export const appendCommand: CliCommand = {
  register(program, context) {
    program
      .command('append')
      .description(
        'append a record (UTF-8 text) to the log, exactly once: a retry after an unknown outcome (a lost connection) ' +
          'is not applied twice, and the write is retried until --timeout',
      )
      .argument('<record>')
      .action(async (record: string) => {
        // Exactly-once only here: the other writes keep the plain client (no producer session to register per process).
        const result = await context.withClient((client) => client.append(record), { exactlyOnce: true });
        context.result({ command: 'append', ...writeJson(result), duplicate: result.duplicate }, `OK  appended at ${showPosition(result)}`);
      });
  },
};
