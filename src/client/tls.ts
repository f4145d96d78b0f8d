/**
 * TLS for a client's connections to the nodes (RaftLogClientOptions.tls):
 * the CA that signed the nodes' certificates, and for a cluster with mutual
 * TLS (a node started with --tls-ca) the client's own certificate and key.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

/** Each one a PEM file's path, or the PEM itself as bytes. */
export interface TlsOptions {
  /** The CA certificate(s) the nodes' certificates are checked against; default: the system's trusted roots. */
  readonly ca?: string | Uint8Array;
  /** This client's certificate, for a cluster that requires one; needs `key`. */
  readonly cert?: string | Uint8Array;
  /** The private key of `cert`. */
  readonly key?: string | Uint8Array;
}

/** The channel credentials for `tls`: plaintext without it. Throws a TypeError naming the option that is missing or unreadable. */
export function channelCredentials(tls: TlsOptions | undefined): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError(
      `RaftLogClient: tls.${tls.cert === undefined ? 'key' : 'cert'} is given without tls.${tls.cert === undefined ? 'cert' : 'key'}`,
    );
  }
  return grpc.credentials.createSsl(pem('ca', tls.ca), pem('key', tls.key), pem('cert', tls.cert));
}

function pem(name: string, source: string | Uint8Array | undefined): Buffer | null {
  if (source === undefined) return null;
  if (typeof source !== 'string') return Buffer.from(source);
  try {
    return readFileSync(source);
  } catch (error) {
    throw new TypeError(`RaftLogClient: cannot read tls.${name} from ${source}: ${(error as Error).message}`);
  }
}
