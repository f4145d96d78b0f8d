import type { EndpointStatus, RaftLogError } from '../../client/index.js';
import type { CliCommand, Json } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { showOptionalIndex, table } from '../format.js';
import { memberJson } from './member.js';

const HEADER = ['ENDPOINT', 'NODE', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'FIRST', 'LAST', 'SNAPSHOT', 'DIGEST'];
const NUMERIC = new Set([3, 5, 6, 7, 8, 9]);
const SHORT_DIGEST = 12;

export const statusCommand: CliCommand = {
  register(program, context) {
    program
      .command('status')
      .description('ask every endpoint where it stands; exit code 3 when none answers')
      .action(async () => {
        const all = await context.withClient((client) => client.statusAll());
        // Imported here (the client is loaded by now) so that the CLI starts without it.
        const { RaftLogDeadlineExceededError, RaftLogUnavailableError } = await import('../../client/index.js');
        const unreachable = (error: RaftLogError) => error instanceof RaftLogUnavailableError || error instanceof RaftLogDeadlineExceededError;
        const members = membersLine(all);
        context.result({ command: 'status', nodes: all.map(nodeJson) }, [
          ...table(
            HEADER,
            all.map((entry) => row(entry, unreachable)),
            NUMERIC,
          ),
          ...(members === null ? [] : [members]),
        ]);
        if (all.every((entry) => !entry.ok)) {
          const what = all.length === 1 ? 'the endpoint did not answer' : `none of the ${all.length} endpoints answered`;
          context.fail(ExitCode.UNAVAILABLE, 'unavailable', `status: ${what}`);
        }
      });
  },
};

function row(entry: EndpointStatus, unreachable: (error: RaftLogError) => boolean): string[] {
  if (!entry.ok) {
    const { error } = entry;
    const reason = error.attempts.at(-1)?.reason ?? error.message;
    return [entry.endpoint, '-', unreachable(error) ? 'unreachable' : 'error', ...HEADER.slice(3, -1).map(() => '-'), reason];
  }
  const { status } = entry;
  return [
    entry.endpoint,
    status.node,
    status.role,
    String(status.term),
    status.leader ?? '-',
    String(status.commitIndex),
    String(status.appliedIndex),
    showOptionalIndex(status.firstLogIndex),
    String(status.lastLogIndex),
    showOptionalIndex(status.snapshotIndex),
    status.digest === '' ? '-' : status.digest.slice(0, SHORT_DIGEST),
  ];
}

/**
 * The configuration with roles, as the leader sees it (else the first node
 * that answered): "members (per leader n1): voters n1, n2, n3; learner n4".
 * Null when no node that answered reports roles.
 */
function membersLine(all: readonly EndpointStatus[]): string | null {
  const answered = all.flatMap((entry) => (entry.ok && entry.status.memberStatus.length > 0 ? [entry.status] : []));
  const source = answered.find((status) => status.role === 'leader') ?? answered[0];
  if (source === undefined) return null;
  const ids = (role: string) => source.memberStatus.filter((member) => member.role === role).map((member) => member.id);
  const group = (role: string, list: string[]) => (list.length === 0 ? [] : [`${role}${list.length === 1 ? '' : 's'} ${list.join(', ')}`]);
  const groups = [...group('voter', ids('voter')), ...group('learner', ids('learner'))];
  const per = source.role === 'leader' ? `per leader ${source.node}` : `per ${source.node}`;
  return `members (${per}): ${groups.join('; ')}`;
}

function nodeJson(entry: EndpointStatus): Json {
  if (!entry.ok) {
    return {
      endpoint: entry.endpoint,
      reachable: false,
      error: { code: entry.error.codeName, message: entry.error.message },
    };
  }
  const { status } = entry;
  return {
    endpoint: entry.endpoint,
    reachable: true,
    node: status.node,
    role: status.role,
    term: status.term,
    leader: status.leader,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    firstLogIndex: status.firstLogIndex,
    lastLogIndex: status.lastLogIndex,
    snapshotIndex: status.snapshotIndex,
    members: status.members,
    memberStatus: status.memberStatus.map(memberJson),
    digest: status.digest,
  };
}
