import type { ClusterMember, MemberChange } from '../../client/index.js';
import type { CliCommand, Json } from '../context.js';
import { showOptionalIndex, table } from '../format.js';

const HEADER = ['ID', 'ADDRESS', 'ROLE', 'MATCH'];
const NUMERIC = new Set([3]);

/** `raftlog member list|add|promote|remove`: the cluster's membership, through the leader. */
export const memberCommand: CliCommand = {
  register(program, context) {
    const member = program.command('member').description('cluster membership: member list | add ID ADDRESS --learner | promote ID | remove ID');

    member
      .command('list')
      .description("the members as the leader sees them, with each one's match index")
      .action(async () => {
        const list = await context.withClient((client) => client.memberList());
        const state = list.committed ? 'committed' : 'not yet committed: a change is under way';
        context.result(
          {
            command: 'member list',
            members: list.members.map(memberJson),
            configIndex: list.configIndex,
            committed: list.committed,
            leader: list.leader,
            commitIndex: list.commitIndex,
            endpoint: list.endpoint,
          },
          [
            ...memberTable(list.members),
            `configuration of ${list.configIndex === 0 ? 'the cluster start' : `index ${list.configIndex}`} (${state}); ` +
              `leader ${list.leader ?? '-'}, commit index ${list.commitIndex}`,
          ],
        );
      });

    member
      .command('add')
      .description('add a member as a learner (--learner); promote it once it has caught up')
      .argument('<id>', 'node id of the new member')
      .argument('<address>', 'host:port it listens at')
      .option('--learner', 'join as a learner: receives the log, does not vote (required: voters cannot be added directly)')
      .action(async (id: string, address: string, options: { learner?: boolean }) => {
        const learner = options.learner === true;
        const change = await context.withClient((client) => client.memberAdd(id, address, { learner }));
        const added = change.members.find((entry) => entry.id === id);
        context.result({ command: 'member add', id, address: added?.address ?? address, learner, ...changeJson(change) }, [
          `OK  added ${id} (${added?.address ?? address}) as a ${added?.role ?? (learner ? 'learner' : 'voter')}; ${committedAt(change)}`,
          ...memberTable(change.members),
        ]);
      });

    member
      .command('promote')
      .description('make a learner a voter (refused, exit code 7, while it is catching up)')
      .argument('<id>', 'node id of the learner')
      .action(async (id: string) => {
        const change = await context.withClient((client) => client.memberPromote(id));
        context.result({ command: 'member promote', id, ...changeJson(change) }, [
          `OK  promoted ${id} to voter; ${committedAt(change)}`,
          ...memberTable(change.members),
        ]);
      });

    member
      .command('remove')
      .description('remove a member, voter or learner (refused, exit code 7, when it would cost the quorum)')
      .argument('<id>', 'node id of the member')
      .action(async (id: string) => {
        const change = await context.withClient((client) => client.memberRemove(id));
        context.result({ command: 'member remove', id, ...changeJson(change) }, [
          `OK  removed ${id}; ${committedAt(change)}`,
          ...memberTable(change.members),
        ]);
      });
  },
};

function memberTable(members: readonly ClusterMember[]): string[] {
  return table(
    HEADER,
    members.map((entry) => [entry.id, entry.address === '' ? '-' : entry.address, entry.role, showOptionalIndex(entry.matchIndex)]),
    NUMERIC,
  );
}

function committedAt(change: MemberChange): string {
  return `committed at index ${change.index}${change.leader === null ? '' : ` (leader ${change.leader})`}`;
}

export function memberJson(entry: ClusterMember): Json {
  return { id: entry.id, address: entry.address, role: entry.role, matchIndex: entry.matchIndex };
}

function changeJson(change: MemberChange): { index: number; leader: string | null; endpoint: string; members: Json[] } {
  return { index: change.index, leader: change.leader, endpoint: change.endpoint, members: change.members.map(memberJson) };
}
