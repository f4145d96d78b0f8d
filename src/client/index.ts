export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../api/client-api.js';
export type { Bytes } from './bytes.js';
export { type CommitPositionOptions, type ConsumersOptions, MAX_CONSUMER_NAME_BYTES } from './consumers.js';
export { type EndpointSpec, parseEndpoint, parseEndpoints, splitEndpointList } from './endpoints.js';
export {
  type AttemptFailure,
  FIRST_INDEX_METADATA_KEY,
  RaftLogCompactedError,
  RaftLogDeadlineExceededError,
  RaftLogError,
  RaftLogFailedPreconditionError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  type RaftLogOperation,
  RaftLogUnavailableError,
  statusCodeName,
} from './errors.js';
export type {
  CallOptions,
  GetOptions,
  MemberAddOptions,
  RaftLogClientOptions,
  ReadConsistency,
  ReadLogOptions,
  TransferLeadershipOptions,
} from './options.js';
export { RaftLogClient } from './raftlog-client.js';
export type {
  AppendResult,
  ClusterMember,
  CommitPositionResult,
  CompareAndSwapResult,
  ConsumerList,
  ConsumerStatus,
  DeleteConsumerResult,
  DeleteResult,
  EndpointStatus,
  EntryPosition,
  FollowerProgress,
  GetResult,
  KeyChange,
  LeadershipTransfer,
  LogEntryKind,
  LogPage,
  LogRecord,
  MemberChange,
  MemberList,
  NodeStatus,
  ProducerStampOfEntry,
  PutResult,
  SubscribedEntry,
  SubscribedEntryKind,
  WriteResult,
} from './results.js';
export type { AutoCommitOptions, LogSubscription, SubscribeOptions, SubscribeView } from './subscription.js';
export type { TlsOptions } from './tls.js';
