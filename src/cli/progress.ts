/**
 * Docker's JSON message streams (pull, push, load, import, build) shown as docker shows
 * them: on a terminal one line per layer id, rewritten in place as its progress moves; in a
 * pipe one line per status change, without the progress bars.
 */
import { ExitError, type CliContext } from './command.js';

export interface JsonMessage {
  id?: string;
  status?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: unknown;
}

/** Prints each message; throws (exit status 1) on an error message. Returns the aux messages. */
export async function printJsonMessages(
  messages: AsyncIterable<Record<string, unknown>>,
  ctx: CliContext,
  isTerminal = Boolean(process.stdout.isTTY),
): Promise<unknown[]> {
  const lines: string[] = [];
  const aux: unknown[] = [];
  for await (const raw of messages) {
    const m = raw as JsonMessage;
    if (m.error || m.errorDetail) throw new ExitError(m.errorDetail?.message ?? m.error ?? 'unknown error', 1);
    if (m.aux !== undefined) {
      aux.push(m.aux);
      continue;
    }
    if (m.stream !== undefined) {
      ctx.out(m.stream);
      continue;
    }
    if (m.status === undefined) continue;
    const hasProgress = Boolean(m.progress) || (m.progressDetail && Object.keys(m.progressDetail).length > 0);
    if (!isTerminal) {
      if (hasProgress) continue;
      ctx.out(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
      continue;
    }
    const text = `${m.id ? `${m.id}: ` : ''}${m.status}${m.progress ? ` ${m.progress}` : ''}`;
    if (!m.id) {
      ctx.out(`${text}\n`);
      lines.length = 0;
      continue;
    }
    const index = lines.indexOf(m.id);
    if (index < 0) {
      lines.push(m.id);
      ctx.out(`${text}\n`);
    } else {
      const up = lines.length - index;
      ctx.out(`\x1b[${up}A\x1b[2K\r${text}\x1b[${up}B\r`);
    }
  }
  return aux;
}
