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
        // The server (LevelDB, gRPC, pino) is loaded only to run one: the rest of the CLI starts without it.
        const { NODE_USAGE, runNode } = await import('../../node/node-command.js');
        if (flags.includes('--help') || flags.includes('-h')) {
          context.io.out(NODE_USAGE);
          return;
        }
        context.exitWith((await runNode(flags)) as ExitCode);
      });
  },
};
