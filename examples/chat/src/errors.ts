// Turns a failed publish into the sentence shown under the message box: the
// server's code, and for schema violations each reason with its JSON pointer.
import { HeraldError } from '@herald/client';

interface Violation {
  pointer?: unknown;
  reason?: unknown;
}

function violations(details: unknown): string[] {
  if (!Array.isArray(details)) return [];
  return details
    .filter((d): d is Violation => typeof d === 'object' && d !== null)
    .map((d) => {
      const reason = typeof d.reason === 'string' ? d.reason : 'invalid';
      return typeof d.pointer === 'string' && d.pointer ? `${d.pointer}: ${reason}` : reason;
    });
}

export function publishErrorText(err: unknown): string {
  if (!(err instanceof HeraldError)) return `Not sent: ${String(err)}`;
  switch (err.code) {
    case 'validation_failed': {
      const why = violations(err.details);
      return `Rejected by the server (validation_failed): ${why.length ? why.join('; ') : err.message}`;
    }
    case 'disconnected':
    case 'closed':
      return 'Not sent: not connected. Your message is kept; send it again once reconnected.';
    case 'queue_full':
      return 'Not sent: too many messages are waiting for the connection. Send it again once reconnected.';
    case 'timeout':
      // publishTimeoutMs passed: it may have been stored (it would then show up in the room).
      return 'Not confirmed: the server did not answer in time; the message may still appear. Check before sending it again.';
    default:
      return `Rejected by the server (${err.code}): ${err.message}`;
  }
}
