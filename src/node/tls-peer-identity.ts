/**
 * With mutual TLS, a peer is who its certificate says (tls-identity.ts): the
 * peer service (raftlog.v1.RaftPeer: Raft messages and snapshots) takes calls
 * only from a node certificate, and every batch, snapshot offer and chunk on
 * such a call must claim to come (`from`) from the member the certificate
 * names. Anything else is refused with PERMISSION_DENIED before it reaches
 * the service, and logged once per certificate and reason. So a process
 * without a node certificate of this cluster's CA cannot send Raft messages at
 * all, and a member cannot speak for another. A request from a node
 * certificate that does not decode (it claims no `from`) goes on to the
 * service, which refuses it with INVALID_ARGUMENT saying what is wrong and
 * acts on nothing of it.
 *
 * A gRPC server interceptor, so that every method of the peer service is held
 * to it, whichever module serves it.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { NodeId } from '../raft/types.js';
import { malformedReason } from './malformed-requests.js';
import { RefusalLog } from './refusal-log.js';
import { certificateIdentity, NODE_URI_PREFIX } from './tls-identity.js';

const PEER_SERVICE_PATH = '/raftlog.v1.RaftPeer/';

/** The interceptor for a node's gRPC server with mutual TLS; calls of other services pass untouched. */
export function peerIdentityInterceptor(self: NodeId, logger: Logger): grpc.ServerInterceptor {
  const log = logger.child({ component: 'peer-identity' });
  const refusals = new RefusalLog(log);
  return (method, call) => {
    if (!method.path.startsWith(PEER_SERVICE_PATH)) return new grpc.ServerInterceptingCall(call);
    let member: NodeId | null = null;
    let refused = false;
    const refuse = (
      certificate: string,
      reason: 'not-a-node-certificate' | 'from-another-member',
      details: string,
      fields: Record<string, unknown>,
    ) => {
      refused = true;
      refusals.warn(
        certificate,
        reason,
        { event: 'peer-refused', code: 'PERMISSION_DENIED', reason, method: method.path, peerAddress: call.getPeer(), certificate, ...fields },
        'refused a peer whose certificate does not name it',
      );
      call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details });
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const certificate = call.getAuthContext().sslPeerCertificate;
            const fingerprint = certificate?.fingerprint256 ?? 'none';
            const identity = certificateIdentity(certificate?.subjectaltname);
            if (identity.kind !== 'node') {
              const subject = certificate?.subject?.CN ?? '(no common name)';
              refuse(
                fingerprint,
                'not-a-node-certificate',
                `node ${self} takes Raft messages only from cluster members: the certificate presented (CN ${subject}) ` +
                  (identity.kind === 'client'
                    ? `names no member (a node certificate carries the URI ${NODE_URI_PREFIX}<id>)`
                    : `names several members (${identity.uris.join(', ')})`),
                { subject, identity: identity.kind },
              );
              return;
            }
            member = identity.id;
            nextMetadata(metadata);
          },
          onReceiveMessage: (message, nextMessage) => {
            if (refused) return;
            // Bytes that are no message claim no one: the handler answers INVALID_ARGUMENT, the caller's mistake, not a forgery.
            if (malformedReason(message) !== null) {
              nextMessage(message);
              return;
            }
            const from = (message as { readonly from?: unknown }).from;
            if (from !== member) {
              const certificate = call.getAuthContext().sslPeerCertificate?.fingerprint256 ?? 'none';
              refuse(
                certificate,
                'from-another-member',
                `node ${self} refuses a message that claims to come from ${String(from)} on a connection whose certificate names ${member}`,
                { member, claimed: String(from) },
              );
              return;
            }
            nextMessage(message);
          },
          onReceiveHalfClose: (nextHalfClose) => {
            if (!refused) nextHalfClose();
          },
        }),
    });
  };
}
