import type { LeadershipTransfer } from '../../client/index.js';
import type { CliCommand } from '../context.js';

/** `raftlog transfer-leader [--to ID]`: a planned leadership move, answered once the new leader is known. */
export const transferLeaderCommand: CliCommand = {
  register(program, context) {
    program
      .command('transfer-leader')
      .description('hand leadership to another voter (--to ID; default: the one with the longest log) and wait until it leads')
      .option('--to <id>', 'node id of the voter to hand leadership to')
      .action(async (options: { to?: string }) => {
        const moved = await context.withClient((client) => client.transferLeadership(options.to === undefined ? {} : { to: options.to }));
        context.result(
          { command: 'transfer-leader', leader: moved.leader, term: moved.term, previousLeader: moved.previousLeader, endpoint: moved.endpoint },
          describe(moved),
        );
      });
  },
};

function describe(moved: LeadershipTransfer): string {
  if (moved.leader === moved.previousLeader) return `OK  ${moved.leader} already leads (term ${moved.term}); nothing changed`;
  return `OK  ${moved.leader} leads term ${moved.term} (was ${moved.previousLeader})`;
}
