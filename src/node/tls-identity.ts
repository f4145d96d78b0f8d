/**
 * Which member a certificate names. A node's certificate carries one URI in
 * its subject alternative names, `urn:raftlog:node:<id>` (NODE_URI_PREFIX and
 * the node id); that URI is what makes it a node certificate. Any other
 * certificate the cluster's CA signed is a client's: it may call the client
 * API and the Cluster service, never the peer service. The subject's common
 * name is for people and decides nothing.
 */
import type { NodeId } from '../raft/types.js';

export const NODE_URI_PREFIX = 'urn:raftlog:node:';

/** Node ids as --id and --peers accept them. */
const NODE_ID = /^[A-Za-z0-9_.-]+$/;

/** The URI a certificate of node `id` names it with. */
export function nodeIdentityUri(id: NodeId): string {
  if (!NODE_ID.test(id)) throw new RangeError(`"${id}" is not a node id (letters, digits, '_', '.', '-')`);
  return `${NODE_URI_PREFIX}${id}`;
}

/** What a certificate says about who holds it. */
export type CertificateIdentity =
  | { readonly kind: 'node'; readonly id: NodeId }
  /** No node URI: a client's certificate. */
  | { readonly kind: 'client' }
  /** More than one node URI (or a malformed one): refused wherever a member is expected. */
  | { readonly kind: 'ambiguous'; readonly uris: readonly string[] };

/**
 * The identity in a certificate's subject alternative names, in the form
 * Node.js prints them (`tls.PeerCertificate.subjectaltname`,
 * `X509Certificate.subjectAltName`): "DNS:localhost, URI:urn:raftlog:node:n1".
 */
export function certificateIdentity(subjectAltName: string | undefined): CertificateIdentity {
  const uris = sanEntries(subjectAltName ?? '')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => unquote(entry.slice('URI:'.length)))
    .filter((uri) => uri.toLowerCase().startsWith(NODE_URI_PREFIX));
  if (uris.length === 0) return { kind: 'client' };
  const id = (uris[0] as string).slice(NODE_URI_PREFIX.length);
  if (uris.length > 1 || !NODE_ID.test(id) || !(uris[0] as string).startsWith(NODE_URI_PREFIX)) return { kind: 'ambiguous', uris };
  return { kind: 'node', id };
}

/** Entries are separated by ", "; Node.js quotes (JSON-style) a value that holds a comma or a quote. */
function sanEntries(text: string): string[] {
  const entries: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (quoted && char === '\\') {
      current += char + (text[i + 1] ?? '');
      i++;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (!quoted && char === ',' && text[i + 1] === ' ') {
      entries.push(current);
      current = '';
      i++;
      continue;
    }
    current += char;
  }
  if (current !== '') entries.push(current);
  return entries;
}

function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'string' ? parsed : value;
  } catch {
    return value;
  }
}
