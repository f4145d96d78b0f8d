export {
  RaftLogClient,
  type AppendResult,
  type CallOptions,
  type ClusterMember,
  type MemberAddOptions,
  type MemberChange,
  type MemberList,
  type CompareAndSwapResult,
  type DeleteResult,
  type EndpointStatus,
  type GetOptions,
  type GetResult,
  type LogEntryKind,
  type LogPage,
  type LogRecord,
  type NodeStatus,
  type PutResult,
  type RaftLogClientOptions,
  type ReadConsistency,
  type ReadLogOptions,
  type WriteResult,
} from './raftlog-client.js';
export {
  FIRST_INDEX_METADATA_KEY,
  RaftLogCompactedError,
  RaftLogDeadlineExceededError,
  RaftLogError,
  RaftLogFailedPreconditionError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
  statusCodeName,
  type AttemptFailure,
  type RaftLogOperation,
} from './errors.js';
export type { Bytes } from './bytes.js';
export { parseEndpoint, parseEndpoints, splitEndpointList, type EndpointSpec } from './endpoints.js';
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './proto.js';
