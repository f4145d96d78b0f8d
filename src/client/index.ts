export { RaftLogClient } from './raftlog-client.js';
export type {
  CallOptions,
  GetOptions,
  MemberAddOptions,
  RaftLogClientOptions,
  ReadConsistency,
  ReadLogOptions,
  TransferLeadershipOptions,
} from './options.js';
export type { TlsOptions } from './tls.js';
export type { AutoCommitOptions, LogSubscription, SubscribeOptions, SubscribeView } from './subscription.js';
export { MAX_CONSUMER_NAME_BYTES, type CommitPositionOptions, type ConsumersOptions } from './consumers.js';
export type {
  CommitPositionResult,
  ConsumerList,
  ConsumerStatus,
  DeleteConsumerResult,
  EntryPosition,
  KeyChange,
  ProducerStampOfEntry,
  SubscribedEntry,
  SubscribedEntryKind,
} from './results.js';
export type {
  AppendResult,
  ClusterMember,
  CompareAndSwapResult,
  DeleteResult,
  EndpointStatus,
  FollowerProgress,
  GetResult,
  LeadershipTransfer,
  LogEntryKind,
  LogPage,
  LogRecord,
  MemberChange,
  MemberList,
  NodeStatus,
  PutResult,
  WriteResult,
} from './results.js';
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
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../api/client-api.js';
