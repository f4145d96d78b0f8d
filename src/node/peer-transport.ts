/**
 * Raft traffic between node processes over gRPC (raftlog.v1.RaftPeer): the
 * settings both directions agree on. The receiving side is peer-service.ts
 * (checks each batch and hands it to the node), the sending side
 * peer-clients.ts (one PeerLink per peer: its queue, stream and backoff).
 *
 * Identity (issue 10): every batch carries the sender's cluster id and member
 * incarnation; a node's receiver refuses another cluster, a sender it does not
 * know as a member, and a second process claiming a member id that is still
 * talking (cluster-identity.ts). With TLS (issue 13) the sender's certificate
 * must also name the member its batches claim to come from (tls-peer-identity.ts).
 */
import type * as grpc from '@grpc/grpc-js';

const MiB = 1024 * 1024;

/**
 * Largest message a node's server receives, on any service: peers and clients
 * share the port, and gRPC holds a whole message in memory before anyone can
 * look at it, so the limit is the largest legitimate message and no more. One
 * append carries up to maxMessageBytes of entries (512 KiB by default) or one
 * larger entry (a proposal is at most 2 MiB + 8 KiB: a compare-and-swap's two
 * values); PeerClients keeps a batch of appends within PEER_MAX_BATCH_BYTES,
 * snapshot chunks are smaller; a client request is at most a key and two
 * values. What is left is room for framing.
 */
export const PEER_MAX_BATCH_BYTES = 4 * MiB;
export const PEER_MAX_MESSAGE_BYTES = PEER_MAX_BATCH_BYTES + 64 * 1024;

/**
 * Channel options for a LAN or loopback cluster: keepalive pings notice a dead
 * peer (no RST, e.g. a host gone or a partition) within a few seconds even
 * when no call is in flight, and reconnection is retried at least once a
 * second instead of gRPC's default backoff of up to two minutes, so a
 * restarted peer is back as soon as it listens.
 */
export const PEER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_send_message_length': PEER_MAX_MESSAGE_BYTES,
  'grpc.max_receive_message_length': PEER_MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 5_000,
  'grpc.keepalive_timeout_ms': 2_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 1_000,
  // Each PeerClients owns its connections: closing it never affects another instance.
  'grpc.use_local_subchannel_pool': 1,
  'grpc.enable_channelz': 0,
};

/** Server options of a node (peers and clients alike): message size, pings to notice dead clients, calls per connection. */
export const PEER_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_send_message_length': PEER_MAX_MESSAGE_BYTES,
  'grpc.max_receive_message_length': PEER_MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 2_000,
  'grpc.enable_channelz': 0,
  // Calls in progress per client connection. Past it the client holds further calls itself (HTTP/2
  // SETTINGS_MAX_CONCURRENT_STREAMS) instead of this node holding them all: under open-loop load far
  // above capacity, unbounded streams held 20,000 calls, 590 MiB and reset connections; 1,000 kept the
  // leader near 260 MiB and served more (npm run bench:overload). Peers use one stream each.
  'grpc.max_concurrent_streams': 1_000,
};
