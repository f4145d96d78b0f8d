import { runNode } from '../../node/node-command.js';
import type { CliCommand } from '../context.js';
import type { ExitCode } from '../exit-codes.js';

/** `raftlog node …`: runs a server in this process; its flags are its own (see `raftlog node --help`). */
export const nodeCommand: CliCommand = {
  register(program, context) {
    program
      .command('node')
      .description('run a raftlog server (raftlog node --help for its flags)')
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[flags...]')
      .action(async (flags: string[]) => {
        if (flags.includes('--help') || flags.includes('-h')) {
          const { NODE_USAGE } = await import('../../node/node-command.js');
          context.io.out(NODE_USAGE);
          return;
        }
        context.exitWith((await runNode(flags)) as ExitCode);
      });
  },
};
